import { request as httpRequest } from 'node:http';
import { credentials, status } from '@grpc/grpc-js';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChatCompletionRequest,
  ForwardRequest,
  InferenceServiceClient,
  type ChatCompletionResponse,
  type ForwardResponse,
} from '../../../src/gen/flockserve/v1/inference.js';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { bearer, collect } from '../../helpers/grpc.js';

// api_key on the real listeners: the workers' routes (inference and engine, HTTP and gRPC) need
// one of the keys; the gateway's own routes stay open; the official client passes with its key.

let t: TestGateway;
let grpc: InferenceServiceClient;

beforeAll(async () => {
  t = await startGateway({ minWorkers: 1, maxWorkers: 1, apiKey: ['key-one', 'key-two'] });
  grpc = new InferenceServiceClient(t.grpcAddress, credentials.createInsecure());
});

afterAll(async () => {
  grpc?.close();
  await t?.close();
});

const chat = (authorization?: string): Promise<Response> =>
  fetch(`${t.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
    body: JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
  });

describe('HTTP', () => {
  it.each([
    ['no key', undefined],
    ['a wrong key', 'Bearer key-three'],
    ['a key that is a prefix of one', 'Bearer key-'],
  ])('%s: 401 before the body is read, and no worker sees the request', async (_label, authorization) => {
    const before = t.gw.status().totalRequests;
    const res = await chat(authorization);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: unknown }).error).toEqual({
      message: 'A valid API key is required (Authorization: Bearer KEY).',
      type: 'authentication_error',
      param: null,
      code: 'unauthorized',
    });
    expect(t.gw.status().totalRequests).toBe(before);
  });

  it('either key opens the inference routes', async () => {
    expect((await chat('Bearer key-one')).status).toBe(200);
    expect((await chat('bearer key-two')).status).toBe(200);
  });

  it.each(['/v1/chat/completions', '/tokenize'])(
    '%s: the 401 comes while the body is still on its way (it is never read)',
    async (path) => {
      // Headers and the first bytes of a body announced as 1 MiB, the rest never sent.
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(`${t.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': 1024 * 1024 },
        });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
          req.destroy();
        });
        req.on('error', reject);
        req.write('{"prompt": "');
      });
      expect(status).toBe(401);
    },
  );

  it("an engine's own routes need a key too; the gateway's own do not", async () => {
    expect((await fetch(`${t.url}/v1/models`)).status).toBe(401);
    expect((await fetch(`${t.url}/v1/models`, { headers: { authorization: 'Bearer key-two' } })).status).toBe(200);
    for (const path of ['/', '/health', '/metrics']) expect((await fetch(`${t.url}${path}`)).status).toBe(200);
  });

  it('the official openai client passes with its apiKey, and is refused without the right one', async () => {
    const ok = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'key-one', maxRetries: 0 });
    const answer = await ok.chat.completions.create({ model: 'sim', messages: [{ role: 'user', content: 'hi' }] });
    expect(answer.choices[0]?.message.content).toBeTruthy();
    const wrong = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'nope', maxRetries: 0 });
    await expect(wrong.models.list()).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
  });
});

describe('gRPC', () => {
  const hi = ChatCompletionRequest.fromPartial({
    model: 'sim',
    messages: [{ role: 'user', content: { $case: 'text', value: 'hi' } }],
    maxTokens: 1,
  });

  it('a call without a key is UNAUTHENTICATED; with one it is answered', async () => {
    const refused = await collect<ChatCompletionResponse>(grpc.chatCompletion(hi, bearer()));
    expect(refused.error?.code).toBe(status.UNAUTHENTICATED);
    expect(refused.error?.details).toBe('A valid API key is required (Authorization: Bearer KEY).');
    const answered = await collect<ChatCompletionResponse>(grpc.chatCompletion(hi, bearer('key-two')));
    expect(answered.error).toBeUndefined();
    expect(answered.got.length).toBeGreaterThan(0);
  });

  it('Forward needs a key in the call metadata, not in the forwarded headers', async () => {
    const models = (headers: Record<string, string>): ForwardRequest =>
      ForwardRequest.fromPartial({ method: 'GET', path: '/v1/models', headers });
    const refused = await collect<ForwardResponse>(grpc.forward(models({ authorization: 'Bearer key-one' }), bearer()));
    expect(refused.error?.code).toBe(status.UNAUTHENTICATED);
    const answered = await collect<ForwardResponse>(grpc.forward(models({}), bearer('key-one')));
    expect(answered.error).toBeUndefined();
    expect(answered.got[0]?.part?.$case).toBe('head');
  });
});
