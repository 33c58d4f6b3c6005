import { credentials } from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceServiceClient } from '../../../src/gen/flockserve/v1/inference.js';
import { scanTrace, traceRequests } from '../../../src/sim/cluster/trace.js';
import { parseTraceparent } from '../../../src/telemetry/tracing.js';
import { simStats, startGateway, type TestGateway } from '../../helpers/gateway.js';
import { OtlpReceiver, type OtlpMetric } from '../../helpers/otlp-receiver.js';
import { parsePrometheusText, type Exposition } from '../../helpers/prometheus-text.js';
import { waitFor } from '../../helpers/wait.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

let t: TestGateway;
let receiver: OtlpReceiver;
let logPath: string;

/**
 * The traffic every test below looks at (2 simulator workers):
 *
 *   #  transport  route                 what                         tokens
 *   a  http       /v1/chat/completions  openai, JSON                 7 (usage)
 *   b  http       /v1/chat/completions  openai, stream + usage       5 (usage)
 *   c  http       /generate             TGI, no details              3 (x-generated-tokens header)
 *   d  http       /v1/chat/completions  JSON, client traceparent     2
 *   e  grpc       /v1/chat/completions  ChatCompletion, unary-ish    4
 *   f  http       /v1/chat/completions  no messages → 400            -
 */
beforeAll(async () => {
  receiver = new OtlpReceiver();
  const endpoint = await receiver.start();
  logPath = join(mkdtempSync(join(tmpdir(), 'flockserve-obs-')), 'requests.db');
  t = await startGateway({
    metricsId: 7,
    otelCollectorEndpoint: endpoint,
    otelExportInterval: 0.2,
    otelTraces: true,
    requestLog: logPath,
    requestLogBodies: true,
    autoscaleInterval: 0.2,
  });
  const openai = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const messages = [{ role: 'user' as const, content: 'hello' }];
  await openai.chat.completions.create({ model: 'sim', messages, max_tokens: 7 });
  const stream = await openai.chat.completions.create({
    model: 'sim',
    messages,
    max_tokens: 5,
    stream: true,
    stream_options: { include_usage: true },
  });
  for await (const _ of stream);
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${t.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  expect((await post('/generate', { inputs: 'hi', parameters: { max_new_tokens: 3 } })).status).toBe(200);
  const traced = await post(
    '/v1/chat/completions',
    { model: 'sim', messages, max_tokens: 2 },
    { traceparent: `00-${TRACE}-${PARENT}-01` },
  );
  expect(traced.status).toBe(200);
  await traced.text();
  const client = new InferenceServiceClient(t.grpcAddress, credentials.createInsecure());
  const call = client.chatCompletion({
    model: 'sim',
    messages: [{ role: 'user', content: { $case: 'text', value: 'over grpc' } }],
    maxTokens: 4,
    stop: [],
    stream: false,
  });
  for await (const _ of call);
  client.close();
  expect((await post('/v1/chat/completions', { model: 'sim' })).status).toBe(400);
});

afterAll(async () => {
  await t?.close();
  await receiver?.close();
});

const sum = (e: Exposition, name: string, labels: Record<string, string> = {}): number =>
  e.samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);

const otlpValue = (m: OtlpMetric | undefined): number | undefined => m?.points[0]?.value;

describe('observability of a running gateway', () => {
  it('GET /metrics: Prometheus text from the same meters, with the values the traffic caused', async () => {
    const res = await fetch(`${t.url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const e = parsePrometheusText(await res.text());
    const table: [string, Record<string, string>, number][] = [
      ['flockserve_requests_total', { route: '/v1/chat/completions', status: '200', transport: 'http' }, 3],
      ['flockserve_requests_total', { route: '/v1/chat/completions', status: '200', transport: 'grpc' }, 1],
      ['flockserve_requests_total', { route: '/generate', status: '200' }, 1],
      ['flockserve_requests_total', { route: '/v1/chat/completions', status: '400', worker: 'none' }, 1],
      // The model label: the request's model; TGI's requests have none.
      ['flockserve_requests_total', { route: '/v1/chat/completions', status: '200', model: 'sim' }, 4],
      ['flockserve_requests_total', { route: '/generate', model: 'none' }, 1],
      ['flockserve_generated_tokens_total', {}, 7 + 5 + 3 + 2 + 4],
      ['flockserve_generated_tokens_total', { route: '/generate' }, 3],
      ['flockserve_time_to_first_token_seconds_count', {}, 1],
      ['flockserve_time_per_output_token_seconds_count', { model: 'sim' }, 1],
      // Counters with nothing to count yet read 0, not "No data".
      ['flockserve_retries_total', {}, 0],
      ['flockserve_worker_ejections_total', {}, 0],
      ['flockserve_request_duration_seconds_count', {}, 6],
      ['flockserve_queue_wait_seconds_count', {}, 5],
      ['flockserve_workers', { state: 'ready' }, 2],
      ['flockserve_queue_length', {}, 0],
      ['flockserve_request_log_dropped_rows_total', {}, 0],
      ['requestcounter7_total', {}, 5],
      ['taskqueuecounter7', {}, 0],
    ];
    for (const [name, labels, want] of table)
      expect([name, labels, sum(e, name, labels)]).toEqual([name, labels, want]);
    expect(e.types.get('flockserve_request_duration_seconds')).toBe('histogram');
    expect(e.types.get('flockserve_requests_total')).toBe('counter');
    // Every request reached one of the two workers by name.
    const workers = new Set(t.gw.workers().map((w) => w.name));
    for (const s of e.samples.filter((x) => x.name === 'flockserve_requests_total' && x.labels['status'] === '200'))
      expect(workers.has(s.labels['worker'] ?? '')).toBe(true);
  });

  it('a real OTLP receiver gets the metrics_id-suffixed metrics with those values', async () => {
    // An export taken after the traffic ended: 5 requests counted, none left in the queue, and all
    // 6 recorded (a request is recorded when its response closes, after the service counted it).
    const recorded = (m: Map<string, OtlpMetric>): number =>
      (m.get('flockserve_request_duration_seconds')?.points ?? []).reduce((a, p) => a + (p.count ?? 0), 0);
    await waitFor(() => {
      const m = receiver.latest();
      return (
        otlpValue(m.get('requestcounter7')) === 5 &&
        otlpValue(m.get('taskqueuecounter7')) === 0 &&
        m.has('allworkers7') &&
        recorded(m) === 6
      );
    }, 'an OTLP export with requestcounter7 = 5, taskqueuecounter7 = 0 and 6 requests recorded');
    const m = receiver.latest();
    expect(m.get('requestcounter7')).toMatchObject({ kind: 'sum', monotonic: true });
    expect(m.get('taskqueuecounter7')).toMatchObject({ kind: 'sum', monotonic: false, points: [{ value: 0 }] });
    // FlockServe's periodic histograms: each autoscaler evaluation records the 2 workers;
    // the live ones only once ready (the first evaluations may come while they start).
    const all = m.get('allworkers7')!;
    const live = m.get('liveworkers7')!;
    expect([all.kind, live.kind]).toEqual(['histogram', 'histogram']);
    expect(all.points[0]?.count).toBeGreaterThan(0);
    expect(all.points[0]?.sum).toBe(2 * all.points[0]!.count!);
    expect(live.points[0]?.sum).toBeGreaterThan(0);
    expect(live.points[0]?.sum).toBeLessThanOrEqual(all.points[0]!.sum!);
    expect(m.get('readinessstatus7')?.kind).toBe('histogram');
    expect(m.get('queuelengthrunningmean7')?.kind).toBe('histogram');
    expect(m.get('workerload7')?.kind).toBe('histogram');
    const tokens = m.get('flockserve_generated_tokens')!.points.reduce((a, p) => a + (p.value ?? 0), 0);
    expect(tokens).toBe(21);
    // The per-request histograms, summed by the gateway and handed over at collection time.
    const duration = m.get('flockserve_request_duration_seconds')!;
    expect([duration.kind, duration.temporality]).toEqual(['histogram', 'cumulative']);
    expect(recorded(m)).toBe(6);
    expect(duration.points[0]?.explicitBounds?.[0]).toBe(0.05);
    expect(m.get('flockserve_queue_wait_seconds')?.points[0]?.count).toBe(5);
    expect(receiver.resource()['service.name']).toBe('flockserve');
  });

  it('the worker received a traceparent that continues the client’s trace with the gateway’s span', async () => {
    const seen = [];
    for (const w of t.gw.workers()) seen.push(...(await simStats(w.url ?? '')).lastRequests);
    const headers = seen.map((r) => r.headers['traceparent']).filter((h): h is string => h !== undefined);
    // Every request was traced (tracing is on); the one with a client trace continues it.
    expect(headers.length).toBeGreaterThanOrEqual(5);
    const continued = headers.filter((h) => h.startsWith(`00-${TRACE}-`));
    expect(continued).toHaveLength(1);
    expect(continued[0]).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
    expect(continued[0]).not.toContain(PARENT);
  });

  it('after shutdown the OTLP receiver holds a span per request, the traced one in the client’s trace', async () => {
    // What the workers saw, read before shutdown stops them.
    const workers = new Set(t.gw.workers().map((w) => w.name));
    const seen = [];
    for (const w of t.gw.workers()) seen.push(...(await simStats(w.url ?? '')).lastRequests);
    const workerParents = seen
      .map((r) => parseTraceparent(r.headers['traceparent']))
      .filter((sc) => sc !== undefined)
      .map((sc) => sc.spanId);
    // The batch span processor sends what it holds on shutdown.
    await t.close();
    const spans = receiver.spans();
    expect(receiver.spanResource()['service.name']).toBe('flockserve');
    const table = spans
      .map((s) => [
        s.name,
        s.attributes['http.route'],
        s.attributes['flockserve.transport'],
        s.attributes['http.response.status_code'],
        s.attributes['gen_ai.usage.output_tokens'],
        s.kind,
      ])
      .sort((x, y) => String(x).localeCompare(String(y)));
    expect(table).toEqual([
      ['POST /generate', '/generate', 'http', 200, 3, 'SPAN_KIND_SERVER'],
      ['POST /v1/chat/completions', '/v1/chat/completions', 'grpc', 200, 4, 'SPAN_KIND_SERVER'],
      ['POST /v1/chat/completions', '/v1/chat/completions', 'http', 200, 2, 'SPAN_KIND_SERVER'],
      ['POST /v1/chat/completions', '/v1/chat/completions', 'http', 200, 5, 'SPAN_KIND_SERVER'],
      ['POST /v1/chat/completions', '/v1/chat/completions', 'http', 200, 7, 'SPAN_KIND_SERVER'],
      ['POST /v1/chat/completions', '/v1/chat/completions', 'http', 400, undefined, 'SPAN_KIND_SERVER'],
    ]);
    // Each worker's parent is the gateway span that proxied it, by the worker's name.
    const proxied = spans.filter((s) => s.attributes['http.response.status_code'] === 200);
    expect(proxied.map((s) => s.spanId).sort()).toEqual([...workerParents].sort());
    for (const s of proxied) expect(workers.has(String(s.attributes['flockserve.worker']))).toBe(true);
    // The client's trace: same trace id, the client's span as parent, the gateway span
    // (not the client's) as the worker's parent.
    const traced = spans.filter((s) => s.traceId === TRACE);
    expect(traced).toHaveLength(1);
    expect(traced[0]).toMatchObject({ parentSpanId: PARENT, status: 'STATUS_CODE_UNSET' });
    expect(seen.find((r) => r.headers['traceparent']?.startsWith(`00-${TRACE}-`))?.headers['traceparent']).toBe(
      `00-${TRACE}-${traced[0]!.spanId}-01`,
    );
    // The others start their own traces.
    expect(spans.filter((s) => s.parentSpanId === '')).toHaveLength(5);
  });

  it('after shutdown the request log holds a row per request', async () => {
    await t.close();
    const db = new Database(logPath, { readonly: true });
    const rows = db
      .prepare(
        'SELECT route, transport, worker, status, completion_tokens, stream, trace_id, request, response FROM requests',
      )
      .all() as {
      route: string;
      transport: string;
      worker: string | null;
      status: number;
      completion_tokens: number | null;
      stream: number;
      trace_id: string | null;
      request: string | null;
      response: string | null;
    }[];
    db.close();
    expect(rows).toHaveLength(6);
    expect(rows.map((r) => r.completion_tokens).sort()).toEqual([2, 3, 4, 5, 7, null]);
    const bad = rows.find((r) => r.status === 400)!;
    expect(bad).toMatchObject({ worker: null, route: '/v1/chat/completions' });
    const generate = rows.find((r) => r.route === '/generate')!;
    expect(generate.request).toContain('max_new_tokens');
    expect(generate.response).toContain('generated_text');
    expect(rows.filter((r) => r.stream === 1)).toHaveLength(1);
    expect(rows.find((r) => r.trace_id === TRACE)).toBeDefined();
    expect(rows.filter((r) => r.transport === 'grpc')).toHaveLength(1);
  });

  it('the request log plans as a trace: its requests with both token counts, in arrival order', async () => {
    await t.close();
    const db = new Database(logPath, { readonly: true });
    const counted = db
      .prepare(
        'SELECT prompt_tokens AS p, completion_tokens AS c FROM requests WHERE prompt_tokens IS NOT NULL AND completion_tokens IS NOT NULL ORDER BY timestamp',
      )
      .all() as { p: number; c: number }[];
    db.close();
    // The 400 reached no worker: it has no counts and is left out.
    expect(counted.length).toBeGreaterThanOrEqual(3);
    expect(scanTrace(logPath)).toMatchObject({
      format: 'request-log',
      requests: counted.length,
      leftOut: 6 - counted.length,
    });
    const trace = [...traceRequests(logPath)];
    expect(trace.map((r) => [r.promptTokens, r.outputTokens])).toEqual(counted.map((r) => [r.p, r.c]));
    expect(trace.every((r, i) => i === 0 || r.arrivalMs >= trace[i - 1]!.arrivalMs)).toBe(true);
  });
});

describe('a request log that cannot be written', () => {
  it('requests still succeed; the dropped rows are counted on /metrics', async () => {
    const g = await startGateway({
      minWorkers: 1,
      maxWorkers: 1,
      requestLog: join(mkdtempSync(join(tmpdir(), 'flockserve-obs-')), 'no', 'such', 'dir', 'r.db'),
    });
    try {
      const res = await fetch(`${g.url}/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs: 'x', parameters: { max_new_tokens: 2 } }),
      });
      expect(res.status).toBe(200);
      await res.text();
      await waitFor(async () => {
        const e = parsePrometheusText(await (await fetch(`${g.url}/metrics`)).text());
        return e.value('flockserve_request_log_dropped_rows_total') === 1;
      }, 'the dropped row on /metrics');
    } finally {
      await g.close();
    }
  });
});
