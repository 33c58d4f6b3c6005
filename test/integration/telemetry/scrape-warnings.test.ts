import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';

// Prometheus scraping a gateway whose OTLP export is off (OTEL_SDK_DISABLED): nothing else ever
// waits for the resource's late attribute (the host's id), so a scrape must, or the SDK's
// diagnostics warn on every scrape for as long as the gateway runs.

let t: TestGateway;
const warnings: string[] = [];

beforeAll(async () => {
  vi.stubEnv('OTEL_SDK_DISABLED', 'true');
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      const o = JSON.parse(chunk.toString()) as { level: number; msg: string };
      if (o.level >= pino.levels.values['warn']!) warnings.push(o.msg);
      done();
    },
  });
  t = await startGateway({ minWorkers: 1, maxWorkers: 1, metricsId: 1 }, { logger: pino({ level: 'info' }, sink) });
});
afterAll(async () => {
  await t?.close();
  vi.unstubAllEnvs();
});

it('GET /metrics answers the meters, and logs nothing', async () => {
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${t.url}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('flockserve_requests_total');
  }
  expect(warnings).toEqual([]);
});
