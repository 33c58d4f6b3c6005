import { afterEach, describe, expect, it, vi } from 'vitest';
import { gatewayResource, otlpSettings } from '../../../src/telemetry/otel-env.js';

const UNSET: { otelCollectorEndpoint: string | undefined; otelExportInterval: number | undefined } = {
  otelCollectorEndpoint: undefined,
  otelExportInterval: undefined,
};

describe('otlpSettings: FlockServe’s options first, then OTEL_*, then FlockServe’s defaults', () => {
  // [what, options, environment, metrics endpoint, traces endpoint, interval s, disabled]
  const cases: [string, Partial<typeof UNSET>, NodeJS.ProcessEnv, string, string, number, boolean][] = [
    ['nothing set', {}, {}, 'http://localhost:4317', 'http://localhost:4317', 120, false],
    [
      'OTEL_EXPORTER_OTLP_ENDPOINT, both signals',
      {},
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4317' },
      'http://otel:4317',
      'http://otel:4317',
      120,
      false,
    ],
    [
      'per-signal endpoints over the common one',
      {},
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4317',
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://metrics:4317',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces:4317',
      },
      'http://metrics:4317',
      'http://traces:4317',
      120,
      false,
    ],
    [
      'the flag over every variable',
      { otelCollectorEndpoint: 'http://flag:4317', otelExportInterval: 5 },
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4317',
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://metrics:4317',
        OTEL_METRIC_EXPORT_INTERVAL: '15000',
      },
      'http://flag:4317',
      'http://flag:4317',
      5,
      false,
    ],
    [
      'OTEL_METRIC_EXPORT_INTERVAL is milliseconds',
      {},
      { OTEL_METRIC_EXPORT_INTERVAL: '15000' },
      'http://localhost:4317',
      'http://localhost:4317',
      15,
      false,
    ],
    [
      'empty variables count as unset',
      {},
      { OTEL_EXPORTER_OTLP_ENDPOINT: ' ' },
      'http://localhost:4317',
      'http://localhost:4317',
      120,
      false,
    ],
    [
      'OTEL_SDK_DISABLED=true',
      {},
      { OTEL_SDK_DISABLED: 'TRUE' },
      'http://localhost:4317',
      'http://localhost:4317',
      120,
      true,
    ],
    [
      'OTEL_SDK_DISABLED=false',
      {},
      { OTEL_SDK_DISABLED: 'false' },
      'http://localhost:4317',
      'http://localhost:4317',
      120,
      false,
    ],
  ];
  it.each(cases)('%s', (_what, options, env, metrics, traces, interval, disabled) => {
    expect(otlpSettings({ ...UNSET, ...options }, env)).toMatchObject({
      metricsEndpoint: metrics,
      tracesEndpoint: traces,
      exportInterval: interval,
      disabled,
      ignored: [],
    });
  });

  // [interval s, environment, the reader's wait, the exporter's wait] (ms)
  const timeouts: [number, NodeJS.ProcessEnv, number, number][] = [
    [120, {}, 30_000, 10_000], // the SDK's defaults
    [5, {}, 5000, 4500], // within the reader's wait
    [120, { OTEL_EXPORTER_OTLP_TIMEOUT: '20000' }, 30_000, 20_000],
    [120, { OTEL_EXPORTER_OTLP_TIMEOUT: '20000', OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: '2000' }, 30_000, 2000],
    [120, { OTEL_EXPORTER_OTLP_TIMEOUT: '60000' }, 30_000, 27_000],
  ];
  it.each(timeouts)('interval %i s, %j → reader %i ms, exporter %i ms', (interval, env, reader, exporter) => {
    expect(otlpSettings({ ...UNSET, otelExportInterval: interval }, env)).toMatchObject({
      readerTimeoutMs: reader,
      exporterTimeoutMs: exporter,
    });
  });

  it('says which settings it cannot follow', () => {
    const s = otlpSettings(UNSET, {
      OTEL_METRIC_EXPORT_INTERVAL: 'soon',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    });
    expect(s.exportInterval).toBe(120);
    expect(s.ignored).toEqual([
      'OTEL_METRIC_EXPORT_INTERVAL=soon: not a number of milliseconds >= 100',
      'OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf: FlockServe exports OTLP over gRPC only',
    ]);
  });
});

describe('gatewayResource', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('names the service, its version, this instance, the host and the process', async () => {
    const a = gatewayResource();
    await a.waitForAsyncAttributes?.();
    const attrs = a.attributes;
    expect(attrs['service.name']).toBe('flockserve');
    expect(attrs['service.version']).toMatch(/^\d+\.\d+\.\d+/);
    expect(attrs['service.instance.id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(attrs['host.name']).toEqual(expect.any(String));
    expect(attrs['process.pid']).toBe(process.pid);
    expect(attrs['process.runtime.name']).toBe('nodejs');
    // The command line can hold --node_control_key: it stays out.
    expect(Object.keys(attrs).filter((k) => k.startsWith('process.command'))).toEqual([]);
    // Each start is its own instance: two gateways' streams stay apart.
    expect(gatewayResource().attributes['service.instance.id']).not.toBe(attrs['service.instance.id']);
  });

  it('OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over FlockServe’s values', () => {
    vi.stubEnv('OTEL_RESOURCE_ATTRIBUTES', 'deployment.environment=prod,service.name=from-attrs,team=ml%20infra');
    vi.stubEnv('OTEL_SERVICE_NAME', 'gateway-eu');
    const attrs = gatewayResource().attributes;
    expect(attrs).toMatchObject({
      'service.name': 'gateway-eu',
      'deployment.environment': 'prod',
      team: 'ml infra',
      'service.version': expect.any(String),
    });
  });
});
