import { afterAll, beforeAll, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { OtlpReceiver, type OtlpMetric } from '../../helpers/otlp-receiver.js';
import { waitFor } from '../../helpers/wait.js';

let t: TestGateway;
let receiver: OtlpReceiver;

beforeAll(async () => {
  receiver = new OtlpReceiver();
  t = await startGateway({
    metricsId: 3,
    otelCollectorEndpoint: await receiver.start(),
    otelExportInterval: 0.1,
    otelMetricsExporterSettings: { temporalityPreference: 'delta' },
  });
});

afterAll(async () => {
  await t?.close();
  await receiver?.close();
});

/** Over every export: each holds what changed since the one before. */
const total = (ms: OtlpMetric[], read: (p: OtlpMetric['points'][number]) => number | undefined): number =>
  ms.reduce((a, m) => a + m.points.reduce((b, p) => b + (read(p) ?? 0), 0), 0);

it('with delta temporality, the per-request histograms and counters arrive as deltas that add up to the traffic', async () => {
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${t.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'sim', prompt: 'hi', max_tokens: 2 }),
    });
    expect(res.status).toBe(200);
    await res.text();
    // Spread over exports, so the sums cross more than one.
    const exports = receiver.exports.length;
    await waitFor(() => receiver.exports.length > exports, 'the next export');
  }
  await waitFor(
    () => total(receiver.every('flockserve_request_duration_seconds'), (p) => p.count) === 3,
    'request durations adding up to 3',
  );
  const durations = receiver.every('flockserve_request_duration_seconds');
  expect(durations.length).toBeGreaterThan(1);
  expect(durations.every((m) => m.temporality === 'delta')).toBe(true);
  const requests = receiver.every('flockserve_requests');
  expect(requests.every((m) => m.temporality === 'delta')).toBe(true);
  expect(total(requests, (p) => p.value)).toBe(3);
  expect(total(receiver.every('flockserve_queue_wait_seconds'), (p) => p.count)).toBe(3);
});
