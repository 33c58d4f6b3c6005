import { credentials, Metadata } from '@grpc/grpc-js';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceServiceClient, type ChatCompletionResponse } from '../../../src/gen/flockserve/v1/inference.js';
import { NodeControlServiceClient, WorkerState } from '../../../src/gen/flockserve/v1/node_control.js';
import { simStats, startGateway, type TestGateway } from '../../helpers/gateway.js';

let t: TestGateway;
let openai: OpenAI;

beforeAll(async () => {
  t = await startGateway({ nodeControlKey: 'sekret' });
  openai = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(() => t?.close());

const workerUrls = (): string[] => t.gw.workers().map((w) => w.url ?? '');

describe('the official openai client through the gateway (local provisioner, 2 simulator workers)', () => {
  it('chat completion, non-streaming', async () => {
    const res = await openai.chat.completions.create({
      model: 'sim',
      messages: [{ role: 'user', content: 'hello there' }],
      max_tokens: 7,
    });
    expect(res.object).toBe('chat.completion');
    expect(res.choices[0]?.message.role).toBe('assistant');
    expect(res.choices[0]?.message.content?.length).toBeGreaterThan(0);
    expect(res.usage?.completion_tokens).toBe(7);
  });

  it('chat completion, streaming with usage', async () => {
    const stream = await openai.chat.completions.create({
      model: 'sim',
      messages: [{ role: 'user', content: 'stream please' }],
      max_tokens: 5,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined | null;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    expect(text.trim().split(/\s+/).length).toBe(5);
    expect(finish).toBe('length');
    expect(usage?.completion_tokens).toBe(5);
  });

  it('completions', async () => {
    const res = await openai.completions.create({ model: 'sim', prompt: 'Once upon a time', max_tokens: 4 });
    expect(res.object).toBe('text_completion');
    expect(res.choices[0]?.text.length).toBeGreaterThan(0);
    expect(res.usage?.completion_tokens).toBe(4);
  });

  it('models are forwarded from a worker', async () => {
    const models = await openai.models.list();
    expect(models.data.map((m) => m.id)).toContain('sim');
  });

  it('the FlockServe `stream: 1` header streams too', async () => {
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', stream: '1' },
      body: JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 }),
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const body = await res.text();
    expect(body.trim().endsWith('data: [DONE]')).toBe(true);
  });
});

describe("a worker's own errors reach the openai client in OpenAI's shape", () => {
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

  it('max_tokens: "x": the worker\'s 400 and its message, with a request id', async () => {
    const err = await openai.chat.completions
      .create({ model: 'sim', messages: [{ role: 'user', content: 'x' }], max_tokens: 'x' as unknown as number })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    const e = err as InstanceType<typeof OpenAI.BadRequestError>;
    expect(e.status).toBe(400);
    // The worker (the simulator, answering as vLLM) said why; the client shows it.
    expect(e.message).toMatch(/^400 .*Input should be a valid integer, unable to parse string as an integer/);
    expect([e.type, e.code]).toEqual(['invalid_request_error', 'upstream_bad_request']);
    expect(e.requestID).toMatch(UUID);
  });

  it('an unknown path under /v1/: the worker\'s 404 "Not Found", OpenAI-shaped', async () => {
    const res = await fetch(`${t.url}/v1/no-such-route`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: { message: 'Not Found', type: 'invalid_request_error', param: null, code: 'upstream_not_found' },
    });
    expect(res.headers.get('x-request-id')).toMatch(UUID);
  });

  it('an inference route asked with GET: 405 from the gateway, Allow: POST, no worker asked', async () => {
    for (const path of ['/v1/chat/completions', '/generate']) {
      const res = await fetch(`${t.url}${path}?x=1`);
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
      expect(res.headers.get('x-request-id')).toMatch(UUID);
      expect(await res.json()).toEqual({
        error: {
          message: `Invalid method for URL (GET ${path}): it takes POST.`,
          type: 'invalid_request_error',
          param: null,
          code: 'method_not_allowed',
        },
      });
    }
    // Other paths still go to the worker, whatever their method.
    expect((await fetch(`${t.url}/v1/models`)).status).toBe(200);
  });

  it("a TGI route keeps TGI's error shape", async () => {
    const res = await fetch(`${t.url}/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: 'x', parameters: { max_new_tokens: 0 } }),
    });
    expect(res.status).toBe(422);
    expect(await res.json()).toEqual({ error: '`max_new_tokens` must be strictly positive', error_type: 'validation' });
    // The gateway's own refusal on a TGI route is in TGI's shape too, which TGI's clients raise on.
    const refused = await fetch(`${t.url}/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: 123 }),
    });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({
      error: 'Invalid request: body/inputs must be string',
      error_type: 'validation',
    });
  });

  it("the client's x-request-id goes to the worker and comes back; the gateway's own answers carry one too", async () => {
    const { response } = await openai.chat.completions
      .create(
        { model: 'sim', messages: [{ role: 'user', content: 'id please' }], max_tokens: 1 },
        { headers: { 'x-request-id': 'client-id-7' } },
      )
      .withResponse();
    expect(response.headers.get('x-request-id')).toBe('client-id-7');
    const seen = (await Promise.all(workerUrls().map(simStats))).flatMap((s) => s.lastRequests);
    expect(seen.some((r) => r.headers['x-request-id'] === 'client-id-7')).toBe(true);

    const bad = await fetch(`${t.url}/v1/chat/completions`, { method: 'POST', body: '{' });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('x-request-id')).toMatch(UUID);
    const status = await fetch(`${t.url}/health`);
    expect(status.headers.get('x-request-id')).toMatch(UUID);
  });
});

describe('TGI routes', () => {
  it('/generate answers generated_text and details', async () => {
    const res = await fetch(`${t.url}/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: 'What is deep learning?', parameters: { max_new_tokens: 6, details: true } }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { generated_text: string; details: { generated_tokens: number } };
    expect(body.generated_text.length).toBeGreaterThan(0);
    expect(body.details.generated_tokens).toBe(6);
  });

  it('/generate_stream sends one token event per token, the last with generated_text', async () => {
    const res = await fetch(`${t.url}/generate_stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: 'Hi', parameters: { max_new_tokens: 4 } }),
    });
    const events = (await res.text())
      .split('\n\n')
      .filter((e) => e.startsWith('data:'))
      .map((e) => JSON.parse(e.slice(5)) as { token: { text: string }; generated_text: string | null });
    expect(events).toHaveLength(4);
    expect(events.slice(0, 3).every((e) => e.generated_text === null)).toBe(true);
    expect(events[3]?.generated_text).toBe(events.map((e) => e.token.text).join(''));
  });
});

describe('no parameter is lost in translation', () => {
  it('unknown request fields reach the worker byte for byte', async () => {
    const body = {
      model: 'sim',
      messages: [{ role: 'user', content: 'x', vendor_note: { a: [1, 2] } }],
      max_tokens: 2,
      top_k: 20,
      guided_json: { type: 'object' },
    };
    const raw = JSON.stringify(body);
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-trace-me': 'yes' },
      body: raw,
    });
    expect(res.status).toBe(200);
    const seen = (await Promise.all(workerUrls().map(simStats))).flatMap((s) => s.lastRequests);
    const mine = seen.find((r) => r.headers['x-trace-me'] === 'yes');
    expect(mine?.body).toMatchObject({ top_k: 20, guided_json: { type: 'object' } });
    expect((mine?.body as { messages: unknown[] }).messages[0]).toEqual({
      role: 'user',
      content: 'x',
      vendor_note: { a: [1, 2] },
    });
  });

  it('a whole JSON answer goes out with its content-length, not chunked', async () => {
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'x' }], max_tokens: 3 }),
    });
    const body = Buffer.from(await res.arrayBuffer());
    expect(JSON.parse(body.toString('utf8'))).toHaveProperty('object', 'chat.completion');
    expect([res.headers.get('content-length'), res.headers.get('transfer-encoding')]).toEqual([
      String(body.length),
      null,
    ]);
  });

  it("unknown fields of the worker's answer reach the client, JSON and every SSE chunk", async () => {
    const json = (await (
      await fetch(`${t.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'x' }], max_tokens: 2 }),
      })
    ).json()) as Record<string, unknown> & { choices: Record<string, unknown>[] };
    // vLLM's own fields, not OpenAI's.
    expect(json).toHaveProperty('prompt_logprobs', null);
    expect(json).toHaveProperty('kv_transfer_params', null);
    expect(json.choices[0]).toHaveProperty('stop_reason', null);

    const sse = await (
      await fetch(`${t.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'x' }], max_tokens: 3, stream: true }),
      })
    ).text();
    const chunks = sse
      .split('\n\n')
      .filter((e) => e.startsWith('data: {'))
      .map((e) => JSON.parse(e.slice(6)) as { choices: Record<string, unknown>[] });
    const last = chunks.at(-1);
    expect(last?.choices[0]).toHaveProperty('stop_reason', null);
  });
});

describe('gRPC', () => {
  it('a generated client streams a chat completion, with extra fields both ways', async () => {
    const client = new InferenceServiceClient(t.grpcAddress, credentials.createInsecure());
    const call = client.chatCompletion({
      model: 'sim',
      messages: [{ role: 'user', content: { $case: 'text', value: 'hello over grpc' } }],
      maxTokens: 4,
      stop: [],
      stream: true,
      extra: { top_k: 5 },
    });
    const got: ChatCompletionResponse[] = [];
    for await (const m of call) got.push(m as ChatCompletionResponse);
    client.close();
    expect(got.length).toBeGreaterThanOrEqual(5); // role chunk + 4 tokens
    const text = got.map((m) => m.choices[0]?.delta?.content).map((c) => (c?.$case === 'text' ? c.value : ''));
    expect(text.join('').trim().split(/\s+/)).toHaveLength(4);
    expect(got.at(-1)?.choices[0]?.finishReason).toBe('length');
    // stop_reason is vLLM's, not in the proto: it arrives in extra.
    expect(got.at(-1)?.choices[0]?.extra).toHaveProperty('stop_reason');
    const seen = (await Promise.all(workerUrls().map(simStats))).flatMap((s) => s.lastRequests);
    expect(seen.some((r) => (r.body as { top_k?: number } | null)?.top_k === 5)).toBe(true);
  });

  it('node control GetStatus and ListWorkers need the key', async () => {
    const client = new NodeControlServiceClient(t.grpcAddress, credentials.createInsecure());
    const md = new Metadata();
    md.set('authorization', 'Bearer sekret');
    const workers = await new Promise<unknown>((res, rej) =>
      client.listWorkers({}, md, (err, r) => (err ? rej(err) : res(r))),
    );
    expect((workers as { workers: { state: WorkerState }[] }).workers.map((w) => w.state)).toEqual([
      WorkerState.WORKER_STATE_READY,
      WorkerState.WORKER_STATE_READY,
    ]);
    const wrong = new Metadata();
    wrong.set('authorization', 'Bearer nope');
    const err = await new Promise<{ code: number }>((res) => client.getStatus({}, wrong, (e) => res(e as never)));
    expect(err.code).toBe(16); // UNAUTHENTICATED
    client.close();
  });
});
