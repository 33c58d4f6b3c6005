import { credentials, status } from '@grpc/grpc-js';
import OpenAI from 'openai';
import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { InferenceServiceClient, type ChatCompletionResponse } from '../../src/gen/flockserve/v1/inference.js';
import type { FlockServeOptions } from '../../src/index.js';
import { collect } from '../helpers/grpc.js';
import { waitFor } from '../helpers/wait.js';
import { abortedOnWorkers, shoot, startScenario, type ScenarioEnv } from './harness.js';

let env: ScenarioEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

/** One simulator worker with `simArgs` behind a gateway with `gateway` options. */
const oneWorker = (simArgs: string, gateway: Partial<FlockServeOptions> = {}): Promise<ScenarioEnv> =>
  startScenario({
    name: 'one worker',
    workers: [simArgs],
    gateway,
    shot: { stream: true, maxTokens: 1 },
    concurrency: 1,
  });

/** Streams a chat completion over gRPC; the messages received and the call's final status. */
async function grpcChat(address: string, maxTokens: number) {
  const client = new InferenceServiceClient(address, credentials.createInsecure());
  const call = client.chatCompletion({
    model: 'sim',
    messages: [{ role: 'user', content: { $case: 'text', value: 'hi' } }],
    maxTokens,
    stop: [],
    stream: true,
  });
  const answer = await collect<ChatCompletionResponse>(call);
  client.close();
  return answer;
}

describe('a failure after the answer began', () => {
  // [label, simulator flags, gateway options, gRPC message contains]
  const table: [string, string, Partial<FlockServeOptions>, RegExp][] = [
    ['the worker process dies', '--token-interval 5 --crash-after 0', {}, /failed while sending/],
    ['the worker goes silent', '--token-interval 5 --hang-mid-stream', { idleTimeout: 0.5 }, /sent nothing for longer/],
    ['the worker sends a cut event', '--token-interval 5 --malformed', {}, /malformed/],
    [
      "the engine's error event (vLLM's, as some versions send it)",
      '--token-interval 5 --error-mid-stream',
      {},
      /worker stream error: EngineCore/,
    ],
  ];

  it.each(table)('%s: the gRPC stream ends with UNAVAILABLE and a message', async (_l, sim, gateway, message) => {
    env = await oneWorker(sim, { ...gateway, maxRetries: 0 });
    const { got, error } = await grpcChat(env.grpcAddress, 50);
    expect(got.length).toBeGreaterThan(0); // bytes had flowed
    expect(error?.code).toBe(status.UNAVAILABLE);
    expect(error?.details).toMatch(message);
  });

  it.each(table)('%s: the SSE stream ends with an OpenAI-shaped error event', async (_l, sim, gateway) => {
    env = await oneWorker(sim, { ...gateway, maxRetries: 0 });
    const r = await shoot(env.url, { stream: true, maxTokens: 50 });
    expect(r.outcome).toBe('error');
    expect(r.detail).toMatch(/^upstream_(interrupted|stalled|malformed)$/);
  });
});

describe("an engine's own error event", () => {
  it('fails the request, not the worker: outlier detection does not eject a worker that answered', async () => {
    env = await startScenario(
      {
        name: 'two workers whose engines report errors mid-stream',
        workers: ['--token-interval 2 --error-mid-stream', '--token-interval 2 --error-mid-stream'],
        shot: { stream: true, maxTokens: 20 },
        concurrency: 1,
      },
      { maxRetries: 0, outlierConsecutiveFailures: 1 },
    );
    for (let i = 0; i < 6; i++) {
      const r = await shoot(env.url, { stream: true, maxTokens: 20 });
      expect(r).toMatchObject({ outcome: 'error', detail: 'upstream_interrupted' });
    }
    expect(env.gw.workers().filter((w) => w.ejected)).toEqual([]);
  });
});

describe("a failure after the answer began, on TGI's /generate_stream", () => {
  it("ends with TGI's error event, which TGI's clients raise on", async () => {
    env = await oneWorker('--token-interval 5 --crash-after 0', { maxRetries: 0 });
    const res = await fetch(`${env.url}/generate_stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: 'hi', parameters: { max_new_tokens: 50 } }),
    });
    expect(res.status).toBe(200);
    const events = (await res.text()).split('\n\n').filter((e) => e.startsWith('data:'));
    expect(JSON.parse(events.at(-1)!.slice(5))).toEqual({
      error: expect.stringMatching(/failed while sending its answer/),
      error_type: 'incomplete_generation',
    });
  });
});

describe('repetition guard', () => {
  it('ends a looping stream normally, stops the worker, and counts it', async () => {
    env = await oneWorker('--token-interval 2 --repetitive', { repetitionGuard: 2 });
    const openai = new OpenAI({ baseURL: `${env.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const stream = await openai.chat.completions.create({
      model: 'sim',
      messages: [{ role: 'user', content: 'go' }],
      max_tokens: 500,
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    const lines = text.split('\n').filter((l) => l.trim() === 'All work and no play makes Jack a dull boy.');
    expect(lines.length).toBe(2); // the third repetition tripped the guard and was not sent
    await waitFor(async () => (await abortedOnWorkers(env!)) === 1, 'the worker to stop generating');
    expect(env.gw.reliabilityStats().repetitionGuardTrips).toBe(1);
  });

  it('off by default: the loop runs to max_tokens', async () => {
    env = await oneWorker('--token-interval 1 --repetitive');
    const r = await shoot(env.url, { stream: true, maxTokens: 60 });
    expect(r.outcome).toBe('ok');
    expect(env.gw.reliabilityStats().repetitionGuardTrips).toBe(0);
  });
});

describe('timeouts', () => {
  it('request_timeout ends a long stream with an error event, and a long whole answer with 504', async () => {
    env = await oneWorker('--token-interval 20', { requestTimeout: 0.5 });
    expect(await shoot(env.url, { stream: true, maxTokens: 200 })).toEqual({
      outcome: 'error',
      detail: 'upstream_stalled',
    });
    expect(await shoot(env.url, { stream: false, maxTokens: 200 })).toEqual({
      outcome: 'error',
      detail: 'upstream_timeout',
    });
    expect((await shoot(env.url, { stream: true, maxTokens: 3 })).outcome).toBe('ok');
  });
});

describe('graceful shutdown', () => {
  it('a stream still running at drain_timeout ends with a shutting_down error event, not a cut', async () => {
    env = await oneWorker('--token-interval 10', { drainTimeout: 0.5 });
    const running = shoot(env.url, { stream: true, maxTokens: 1000 }); // ~10 s
    await waitFor(() => env!.gw.status().currentQueueLength === 1, 'the stream in flight');
    await env.gw.close();
    expect(await running).toEqual({ outcome: 'error', detail: 'shutting_down' });
  });
});

describe('limits on the request', () => {
  const post = (url: string, body: Buffer, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; json: { error: { code: string; message: string; type: string } } }>(
      (resolve, reject) => {
        const req = httpRequest(`${url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': body.length, ...headers },
        });
        req.on('error', reject);
        req.on('response', (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as never }));
        });
        req.end(body);
      },
    );
  const ok = Buffer.from(JSON.stringify({ messages: [{ role: 'user', content: 'x' }], max_tokens: 1 }));

  it('headers over max_header_size → 431, OpenAI-shaped', async () => {
    env = await oneWorker('', { maxHeaderSize: 4096 });
    const r = await post(env.url, ok, { 'x-big': 'y'.repeat(8000) });
    expect(r.status).toBe(431);
    expect(r.json.error).toMatchObject({ code: 'headers_too_large', type: 'invalid_request_error' });
    expect((await post(env.url, ok)).status).toBe(200);
  });

  it('JSON nested deeper than max_json_depth → 400 json_too_deep; at the limit it passes the check', async () => {
    env = await oneWorker('', { maxJsonDepth: 8 });
    const nest = (d: number): string => '['.repeat(d) + ']'.repeat(d);
    const deep = Buffer.from(`{"messages":[{"role":"user","content":"x"}],"x":${nest(7)}}`);
    const tooDeep = Buffer.from(`{"messages":[{"role":"user","content":"x"}],"x":${nest(8)}}`);
    expect((await post(env.url, deep)).status).toBe(200);
    const r = await post(env.url, tooDeep);
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('json_too_deep');
  });

  it('Expect: 100-continue (curl sends it for bodies over 1 MiB) is answered here, not sent on: every request served', async () => {
    env = await oneWorker('', { workerCapacity: 2 });
    const withExpect = (): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = httpRequest(`${env!.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': ok.length, expect: '100-continue' },
        });
        req.on('continue', () => req.end(ok));
        req.on('error', reject);
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
      });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push(await withExpect());
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
  });

  it('a body that is not UTF-8 → 400 that says so', async () => {
    env = await oneWorker('');
    const r = await post(env.url, Buffer.concat([ok.subarray(0, 20), Buffer.from([0xc3, 0x28]), ok.subarray(20)]));
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ code: 'invalid_json', message: expect.stringMatching(/UTF-8/) });
  });
});
