import { afterEach, describe, expect, it } from 'vitest';
import { simStats, startGateway, type TestGateway } from '../../helpers/gateway.js';
import { waitFor } from '../../helpers/wait.js';

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const chat = (url: string, maxTokens: number, init: RequestInit = {}): Promise<Response> =>
  fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'hi' }], max_tokens: maxTokens }),
    ...init,
  });

describe('least connection with worker_capacity', () => {
  it('capacity 2, 6 concurrent requests: no worker ever has more than 2, the rest wait, all succeed', async () => {
    t = await startGateway({ workerCapacity: 2, simArgs: '--token-interval 20' });
    const { gw, url } = t;
    // ~100 tokens at 20 ms: each request holds its slot for about 2 s.
    const requests = Array.from({ length: 6 }, () => chat(url, 100));
    await waitFor(() => gw.status().currentQueueLength === 6, 'all six requests counted');
    const workers = gw.workers();
    expect(workers.map((w) => w.inFlight)).toEqual([2, 2]);
    expect(gw.status().gatewayQueueLength).toBe(2);
    // The status JSON says why they wait: both workers hold worker_capacity requests.
    expect(await (await fetch(`${url}/`)).json()).toMatchObject({
      gateway_queue_length: 2,
      worker_capacity: 2,
      held_at_worker_capacity: true,
    });
    // The engines agree: each runs exactly two sequences.
    const running = async (): Promise<number[]> =>
      (await Promise.all(workers.map((w) => simStats(w.url ?? '')))).map((s) => s.running);
    await waitFor(async () => (await running()).reduce((a, b) => a + b) === 4, 'four sequences on the engines');
    expect(await running()).toEqual([2, 2]);
    const answers = await Promise.all(requests);
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(workers.reduce((n, w) => n + w.totalRequests, 0)).toBe(6);
    expect(await (await fetch(`${url}/`)).json()).toMatchObject({
      gateway_queue_length: 0,
      held_at_worker_capacity: false,
      // Seconds of history, not the five minutes a p99 verdict needs.
      queue_wait_slo: { seconds: 1, verdict: 'unknown', late: 0, allowed: 0 },
    });
  });

  it('N concurrent requests spread evenly over the workers', async () => {
    t = await startGateway({ workerCapacity: 30, simArgs: '--token-interval 20' });
    const { gw, url } = t;
    const requests = Array.from({ length: 10 }, () => chat(url, 50));
    await waitFor(() => gw.status().currentQueueLength === 10, 'ten in flight');
    expect(gw.workers().map((w) => w.inFlight)).toEqual([5, 5]);
    await Promise.all(requests);
  });
});

describe('errors are OpenAI-shaped and the gateway keeps serving', () => {
  it('queue timeout → 503 with Retry-After', async () => {
    t = await startGateway({
      minWorkers: 1,
      maxWorkers: 1,
      workerCapacity: 1,
      queueTimeout: 0.2,
      simArgs: '--token-interval 20',
    });
    const busy = chat(t.url, 100);
    await waitFor(() => t!.gw.status().currentQueueLength === 1, 'the slot taken');
    const res = await chat(t.url, 1);
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await res.json()).toEqual({
      error: { message: expect.any(String), type: 'server_error', param: null, code: 'queue_timeout' },
    });
    expect((await busy).status).toBe(200);
    expect((await chat(t.url, 1)).status).toBe(200);
  });

  it.each([
    ['malformed JSON', '{"model": "sim", "messages": [', 'invalid_json', null],
    ['messages missing', '{"model": "sim"}', 'bad_request', 'messages'],
    ['messages of the wrong type', '{"messages": "hi"}', 'bad_request', 'messages'],
    [
      'stream of the wrong type',
      '{"messages": [{"role":"user","content":"x"}], "stream": "yes"}',
      'bad_request',
      'stream',
    ],
    ['empty body', '', 'invalid_json', null],
  ])('%s → 400', async (_label, body, code, param) => {
    t ??= await startGateway({ minWorkers: 1, maxWorkers: 1 });
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(res.status).toBe(400);
    const json = (await res.json()) as { error: { code: string; type: string; param: string | null } };
    expect(json.error).toMatchObject({ code, type: 'invalid_request_error', param });
    expect((await chat(t.url, 1)).status).toBe(200);
  });

  it('a body over max_body_size → 413', async () => {
    t = await startGateway({ minWorkers: 1, maxWorkers: 1, maxBodySize: 4096 });
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(10_000) }] }),
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('body_too_large');
  });

  it('a chunked body (no content-length) that grows past max_body_size → 413, and the gateway serves on', async () => {
    t = await startGateway({ minWorkers: 1, maxWorkers: 1, maxBodySize: 4096 });
    const part = new TextEncoder().encode(' '.repeat(1024));
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 8; i++) c.enqueue(part);
        c.close();
      },
    });
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('body_too_large');
    expect((await chat(t.url, 1)).status).toBe(200);
  });

  it("a body that fails the route's schema is named in fastify's words, with the field as param", async () => {
    t = await startGateway({ minWorkers: 1, maxWorkers: 1 });
    const res = await fetch(`${t.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model": "sim", "prompt": 7}',
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: unknown }).error).toEqual({
      message:
        'Invalid request: body/prompt must be string, body/prompt must be array, body/prompt must be null, body/prompt must match a schema in anyOf',
      type: 'invalid_request_error',
      param: 'prompt',
      code: 'bad_request',
    });
  });

  it('a client that disconnects cancels its upstream request', async () => {
    t = await startGateway({ minWorkers: 1, maxWorkers: 1, simArgs: '--token-interval 20' });
    const ac = new AbortController();
    const req = chat(t.url, 200, { signal: ac.signal }).catch(() => undefined);
    await waitFor(() => t!.gw.status().currentQueueLength === 1, 'request in flight');
    ac.abort();
    await req;
    const worker = t.gw.workers()[0]!;
    await waitFor(async () => (await simStats(worker.url ?? '')).aborted === 1, 'the engine saw the abort');
    await waitFor(() => worker.inFlight === 0, 'slot released');
  });
});
