import { describe, expect, it } from 'vitest';
import { otlpSettings } from '../../../src/telemetry/otel-env.js';
import { OPTIONS } from '../../../src/config/options.js';
import { ConfigError, helpText, resolveArgs, resolveOptions } from '../../../src/config/resolve.js';

const TASK = ['--skypilot_task', 't.yaml'];

describe('resolveArgs', () => {
  it("keeps the original FlockServe's names and defaults", () => {
    const c = resolveArgs(TASK);
    expect(c).toMatchObject({
      skypilotTask: 't.yaml',
      workerCapacity: 30,
      workerNamePrefix: 'skypilot-worker',
      host: '0.0.0.0',
      port: -1,
      workerReadyPath: '/health',
      minWorkers: 1,
      maxWorkers: 2,
      autoscaleUp: 7,
      autoscaleDown: 4,
      queueTrackingWindow: 600,
      nodeControlKey: undefined,
      metricsId: 1,
      verbosity: 1,
      // Unset, so that OpenTelemetry's OTEL_EXPORTER_OTLP_* variables can name it; unset there
      // too, it is FlockServe's localhost:4317, every 120 s.
      otelCollectorEndpoint: undefined,
      otelMetricsExporterSettings: {},
    });
    expect(otlpSettings(c, {})).toMatchObject({ metricsEndpoint: 'http://localhost:4317', exportInterval: 120 });
  });

  it.each([
    ['snake_case flag', ['--worker_capacity', '5'], 5],
    ['kebab-case alias', ['--worker-capacity', '6'], 6],
    ['flag=value', ['--worker_capacity=7'], 7],
  ])('%s', (_label, argv, want) => {
    expect(resolveArgs([...TASK, ...argv]).workerCapacity).toBe(want);
  });

  it('precedence: flag over env over default', () => {
    const env = { FLOCKSERVE_MAX_WORKERS: '9', FLOCKSERVE_SKYPILOT_TASK: 'env.yaml' };
    expect(resolveArgs([], env)).toMatchObject({ maxWorkers: 9, skypilotTask: 'env.yaml' });
    expect(resolveArgs(['--max_workers', '3'], env).maxWorkers).toBe(3);
  });

  it('parses lists and JSON', () => {
    const c = resolveArgs([
      ...TASK,
      '--workers',
      'http://a:1, http://b:2',
      '--otel_metrics_exporter_settings',
      '{"timeoutMillis": 1000}',
    ]);
    expect(c.workers).toEqual(['http://a:1', 'http://b:2']);
    expect(
      resolveArgs([...TASK, '--cors_allow_origins', 'https://a.example, http://localhost:3000']).corsAllowOrigins,
    ).toEqual(['https://a.example', 'http://localhost:3000']);
    expect(resolveArgs([...TASK, '--cors_allow_origins', '*']).corsAllowOrigins).toEqual(['*']);
    expect(c.otelMetricsExporterSettings).toEqual({ timeoutMillis: 1000 });
  });

  it.each([
    ['an unknown flag', ['--nope', '1'], /unknown option --nope/],
    ['a stray argument', ['stray'], /unexpected argument "stray"/],
    ['a missing value', ['--port'], /--port needs a value/],
    ['a non-integer', ['--worker_capacity', '2.5'], /--worker_capacity: expected an integer/],
    ['a non-number', ['--autoscale_up', 'lots'], /--autoscale_up: expected a number/],
    ['below the minimum', ['--worker_capacity', '0'], /--worker_capacity: expected a value >= 1/],
    ['not a choice', ['--provisioner', 'kubernetes'], /--provisioner: expected one of .*local/],
    ['bad JSON', ['--otel_metrics_exporter_settings', '{'], /expected a JSON object/],
    [
      'an origin with a path',
      ['--cors_allow_origins', 'https://a.example, https://b.example/app'],
      /--cors_allow_origins: expected origins like https:\/\/app.example.com \(no path\), or \*/,
    ],
  ])('%s is an error that names it', (_label, argv, message) => {
    expect(() => resolveArgs([...TASK, ...argv])).toThrow(ConfigError);
    expect(() => resolveArgs([...TASK, ...argv])).toThrow(message);
  });

  it('the task is required', () => {
    expect(() => resolveArgs([])).toThrow(/--skypilot_task is required/);
  });
});

describe('resolveOptions (programmatic API)', () => {
  it('validates camelCase options as the flags are', () => {
    expect(resolveOptions({ skypilotTask: 't', minWorkers: 0 }).minWorkers).toBe(0);
    expect(() => resolveOptions({ skypilotTask: 't', minWorkers: -1 })).toThrow(/minWorkers: expected a value >= 0/);
    expect(() => resolveOptions({ skypilotTask: 't', workerCapacty: 3 })).toThrow(/unknown option workerCapacty/);
  });

  it('a resolved config resolves to itself', () => {
    const c = resolveArgs(TASK);
    expect(resolveOptions(c as unknown as Record<string, unknown>)).toEqual(c);
  });
});

describe('static provisioner: the listed engines are the fleet', () => {
  const urls = '--workers=http://a:1,http://b:1,http://c:1,http://d:1';
  it.each([
    { label: 'bounds unset: every listed engine is used', args: [], min: 4, max: 4 },
    { label: 'an explicit min is kept', args: ['--min_workers', '1'], min: 1, max: 4 },
    { label: 'an explicit max at or above the list is kept', args: ['--max_workers', '6'], min: 4, max: 6 },
  ])('$label', ({ args, min, max }) => {
    const c = resolveArgs([...TASK, '--provisioner', 'static', urls, ...args]);
    expect([c.minWorkers, c.maxWorkers]).toEqual([min, max]);
  });

  it('a list longer than an explicit max_workers is an error that says so', () => {
    expect(() => resolveArgs([...TASK, '--provisioner', 'static', urls, '--max_workers', '2'])).toThrow(
      /--workers lists 4 engines but --max_workers is 2, so 2 would never be used/,
    );
  });

  it('other provisioners keep the defaults', () => {
    const c = resolveArgs([...TASK, '--provisioner', 'local', urls]);
    expect([c.minWorkers, c.maxWorkers]).toEqual([1, 2]);
  });
});

describe('--help', () => {
  it('lists every option with its default and env var', () => {
    const help = helpText('flockserve', '');
    for (const name of Object.keys(OPTIONS)) expect(help).toContain(`--${name} `);
    expect(help).toContain('(default: 30; env FLOCKSERVE_WORKER_CAPACITY)');
  });
});
