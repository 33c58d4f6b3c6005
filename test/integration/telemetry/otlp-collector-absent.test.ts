import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { OtlpReceiver } from '../../helpers/otlp-receiver.js';
import { parsePrometheusText } from '../../helpers/prometheus-text.js';
import { waitFor } from '../../helpers/wait.js';

// Export towards a collector that is not there, then is: the gateway is configured by
// OpenTelemetry's own variables only (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_METRIC_EXPORT_INTERVAL,
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), and a real OTLP receiver comes up on the port
// after the first exports failed.

let t: TestGateway;
let receiver: OtlpReceiver | undefined;
const logged: { level: string; msg: string }[] = [];
let port = 0;

/** A port nothing listens on (yet). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: p } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return p;
}

const exportLines = (): string[] =>
  logged.filter((l) => l.msg.startsWith('OTLP metrics export')).map((l) => `${l.level} ${l.msg}`);

async function failures(): Promise<number | undefined> {
  const e = parsePrometheusText(await (await fetch(`${t.url}/metrics`)).text());
  return e.samples.find((s) => s.name === 'flockserve_otlp_export_failures_total' && s.labels['signal'] === 'metrics')
    ?.value;
}

beforeAll(async () => {
  port = await freePort();
  vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', `http://127.0.0.1:${port}`);
  vi.stubEnv('OTEL_METRIC_EXPORT_INTERVAL', '200');
  vi.stubEnv('OTEL_SERVICE_NAME', 'gateway-eu');
  vi.stubEnv('OTEL_RESOURCE_ATTRIBUTES', 'deployment.environment=test');
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      const o = JSON.parse(chunk.toString()) as { level: number; msg: string };
      logged.push({ level: pino.levels.labels[o.level] ?? String(o.level), msg: o.msg });
      done();
    },
  });
  // metrics_id ≥ 0: export on, as by default.
  t = await startGateway({ minWorkers: 1, maxWorkers: 1, metricsId: 1 }, { logger: pino({ level: 'info' }, sink) });
});
afterAll(async () => {
  await t?.close();
  await receiver?.close();
  vi.unstubAllEnvs();
});

describe('OTLP export towards a collector that is not there, then is', () => {
  it('absent: one warning line, failures only counted; present: the exports arrive with the resource, the recovery logged at info, the count stops growing', async () => {
    // Absent: one warning line, then failures are only counted. (Refused, or on a busy machine
    // out of time before the refusal: either way the collector is not there.)
    await waitFor(async () => ((await failures()) ?? 0) >= 3, 'three failed exports counted on /metrics');
    const absent = exportLines();
    expect(absent).toHaveLength(1);
    expect(absent[0]).toMatch(
      new RegExp(
        `^warn OTLP metrics export to http://127\\.0\\.0\\.1:${port} failed \\(.*(UNAVAILABLE|DEADLINE_EXCEEDED).*\\); retrying`,
      ),
    );
    // Nothing else: no SDK error (with its stack trace) per export.
    expect(logged.filter((l) => l.msg.startsWith('opentelemetry'))).toEqual([]);

    // Present: the exports arrive and the recovery is logged at info (once the gateway hears
    // its export succeeded, which can come after the receiver counted it).
    receiver = new OtlpReceiver();
    await receiver.start(port);
    await waitFor(() => receiver!.exports.length >= 2, 'two exports at the receiver', 30_000);
    await waitFor(() => exportLines().length >= 2, 'the recovery logged');
    const lines = exportLines();
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(
      new RegExp(`^info OTLP metrics export to http://127\\.0\\.0\\.1:${port} works again, after \\d+ failed$`),
    );
    const counted = await failures();
    expect(counted).toBeGreaterThanOrEqual(3);
    const before = receiver.exports.length;
    await waitFor(() => receiver!.exports.length >= before + 2, 'two more exports');
    expect(await failures()).toBe(counted);

    // The resource: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, with this instance, version and host.
    expect(receiver.resource()).toMatchObject({
      'service.name': 'gateway-eu',
      'deployment.environment': 'test',
      'service.instance.id': expect.stringMatching(/^[0-9a-f-]{36}$/),
      'service.version': expect.stringMatching(/^\d+\.\d+\.\d+/),
      'host.name': expect.any(String),
      'process.pid': process.pid,
    });
  });
});
