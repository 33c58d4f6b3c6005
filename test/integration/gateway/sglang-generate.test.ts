import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TestGateway } from '../../helpers/gateway.js';
import { gatewayOver, startHttpWorker, type HttpWorker } from '../../helpers/http-worker.js';

// SGLang serves its native API on /generate, TGI's path: `text` (or token ids) and
// `sampling_params` in, `{text, meta_info}` out, or with `"stream": true` in the body a stream of
// such objects ending in `data: [DONE]` (sglang/srt/entrypoints/http_server.py). The worker here
// answers as SGLang does and records what it received.

const received: unknown[] = [];
let worker: HttpWorker;
let t: TestGateway;

const META = { id: 'r1', finish_reason: { type: 'length', length: 3 }, prompt_tokens: 2, completion_tokens: 3 };
const WHOLE = JSON.stringify({ text: ' one two three', meta_info: META });
const STREAM = [' one', ' one two', ' one two three']
  .map((text, i) => `data: ${JSON.stringify({ text, meta_info: { ...META, completion_tokens: i + 1 }, index: 0 })}\n\n`)
  .join('')
  .concat('data: [DONE]\n\n');

beforeAll(async () => {
  worker = await startHttpWorker((req, res, body) => {
    if (req.method !== 'POST') return void res.end('ok');
    const json = JSON.parse(body.toString('utf8')) as { stream?: boolean };
    received.push(json);
    if (json.stream) res.writeHead(200, { 'content-type': 'text/event-stream' }).end(STREAM);
    else res.writeHead(200, { 'content-type': 'application/json' }).end(WHOLE);
  });
  t = await gatewayOver(worker);
});

afterAll(async () => {
  await t?.close();
  await worker?.close();
});

beforeEach(() => {
  received.length = 0;
});

const generate = (body: object): Promise<Response> =>
  fetch(`${t.url}/generate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

describe("SGLang's native /generate through the gateway", () => {
  it('a whole answer: the body reaches the worker as sent, the answer the client as sent', async () => {
    const body = { text: 'Hello', sampling_params: { max_new_tokens: 3, temperature: 0 } };
    const res = await generate(body);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(WHOLE);
    expect(received).toEqual([body]);
  });

  it('"stream": true in the body: the stream passes event by event, to its [DONE]', async () => {
    const body = { input_ids: [1, 2], sampling_params: [{ max_new_tokens: 3 }], stream: true };
    const res = await generate(body);
    expect([res.status, res.headers.get('content-type')]).toEqual([200, 'text/event-stream']);
    expect(await res.text()).toBe(STREAM);
    expect(received).toEqual([body]);
  });

  it('a body with no prompt of either kind is refused before any worker sees it', async () => {
    const res = await generate({ sampling_params: {} });
    expect(res.status).toBe(400);
    // SGLang's body (sampling_params, no inputs): the refusal in SGLang's shape, {"error": {"message"}}.
    const { error } = (await res.json()) as { error: { message: string; code: string } };
    expect(error.code).toBe('bad_request');
    expect(error.message).toContain("must have required property 'text'");
    expect(received).toEqual([]);
  });
});
