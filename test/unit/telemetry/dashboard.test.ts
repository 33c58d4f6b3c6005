import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { AggregationTemporality, MeterProvider } from '@opentelemetry/sdk-metrics';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/core/clock.js';
import { WorkerPool } from '../../../src/core/pool.js';
import { GatewayMetrics } from '../../../src/telemetry/metrics.js';
import { SummedHistograms } from '../../../src/telemetry/summed-histograms.js';
import { ROOT } from '../../helpers/gateway.js';
import { parsePrometheusText } from '../../helpers/prometheus-text.js';
import { idleGatewayState } from '../../fakes/gateway-state.js';

/** Every series name the gateway exposes once each instrument has a value. */
async function exposedNames(): Promise<Set<string>> {
  const histograms = new SummedHistograms('t');
  const reader = new PrometheusExporter({
    preventServerStart: true,
    metricProducers: [histograms.producer(AggregationTemporality.CUMULATIVE)],
  });
  const clock = new VirtualClock();
  const pool = new WorkerPool(clock);
  const metrics = new GatewayMetrics(
    new MeterProvider({ readers: [reader] }).getMeter('t'),
    histograms,
    1,
    idleGatewayState({
      workers: () => pool.list(),
      requestLogStats: () => ({ written: 0, dropped: 0 }),
      exportFailures: () => [{ signal: 'metrics', failures: 0 }],
    }),
  );
  pool.onChange((c) => metrics.workerChanged(c, clock.now()));
  pool.add('w-0', 1);
  pool.setState('w-0', 'starting', 't');
  pool.setState('w-0', 'ready', 't');
  metrics.request({
    transport: 'http',
    route: '/generate',
    status: 200,
    worker: 'w-0',
    durationMs: 1,
    ttftMs: 1,
    tpotMs: 1,
    queueWaitMs: 0,
    completionTokens: 1,
    promptTokens: 1,
  });
  metrics.retry('w-0', 'x');
  metrics.ejection('w-0', 'x');
  metrics.autoscalerEvaluated('none');
  const text = new PrometheusSerializer().serialize((await reader.collect()).resourceMetrics);
  return new Set(parsePrometheusText(text).samples.map((s) => s.name));
}

describe('examples/observability/grafana-dashboard.json', () => {
  it('queries only metrics the gateway exposes', async () => {
    const dash = JSON.parse(readFileSync(join(ROOT, 'examples/observability/grafana-dashboard.json'), 'utf8')) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    const used = new Set(dash.panels.flatMap((p) => p.targets.flatMap((t) => t.expr.match(/\bflockserve_\w+/g) ?? [])));
    expect(used.size).toBeGreaterThan(15);
    const exposed = await exposedNames();
    expect([...used].filter((n) => !exposed.has(n))).toEqual([]);
  });
});
