import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChatCompletionRequest,
  InferenceServiceClient,
  type ChatCompletionResponse,
} from '../../../src/gen/flockserve/v1/inference.js';
import { simStats } from '../../helpers/gateway.js';
import { collect } from '../../helpers/grpc.js';
import { waitFor } from '../../helpers/wait.js';
import { startScenario, type ScenarioEnv } from '../../faults/harness.js';

// The gRPC methods hold to the HTTP routes' rules (src/routes): the same checks and messages,
// the same session key, a request id, and statuses that say whose fault a failure is.
let env: ScenarioEnv;
let client: InferenceServiceClient;
beforeAll(async () => {
  env = await startScenario({
    name: 'grpc rules',
    workers: ['--token-interval 1', '--token-interval 1'],
    gateway: { loadBalancer: 'session-affinity', maxBodySize: 64 * 1024 },
    shot: { stream: false, maxTokens: 1 },
    concurrency: 1,
  });
  client = new InferenceServiceClient(env.grpcAddress, credentials.createInsecure());
});
afterAll(async () => {
  client?.close();
  await env?.close();
});

const hi = (over: Partial<ChatCompletionRequest> = {}): ChatCompletionRequest =>
  ChatCompletionRequest.fromPartial({
    model: 'sim',
    messages: [{ role: 'user', content: { $case: 'text', value: 'hi' } }],
    maxTokens: 1,
    ...over,
  });

/** Streams one chat completion; the messages, the response headers and the final error, if any. */
async function chat(req: ChatCompletionRequest, md = new Metadata()) {
  const call = client.chatCompletion(req, md);
  // A call refused before it began has no response headers, only trailers.
  const headers = new Promise<Metadata>((resolve) => {
    call.once('metadata', resolve);
    call.once('status', () => resolve(new Metadata()));
  });
  const { got, error } = await collect<ChatCompletionResponse>(call);
  return { got, error, headers: await headers };
}

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${env.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as { error: { message: string; code: string } } };
}

describe('one set of checks and messages on both transports', () => {
  // [what, gRPC request, the same request as HTTP JSON]
  const table: [string, ChatCompletionRequest, unknown][] = [
    [
      'a message without a role',
      hi({ messages: [{ role: '', content: { $case: 'text', value: 'x' } }] }),
      { messages: [{ content: 'x' }] },
    ],
    ['no messages', hi({ messages: [] }), {}],
    ['a user of the wrong type (in extra)', hi({ extra: { user: 5 } }), { messages: [{ role: 'user' }], user: 5 }],
  ];

  it.each(table)('%s: INVALID_ARGUMENT and 400 with the same words', async (_what, grpcReq, httpBody) => {
    const { error } = await chat(grpcReq);
    const http = await post('/v1/chat/completions', httpBody);
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(http.status).toBe(400);
    expect(error?.details).toBe(http.json.error.message);
    expect(error?.metadata.get('flockserve-error-code')).toEqual([http.json.error.code]);
  });

  it("a worker's own 400 is INVALID_ARGUMENT with the worker's message, as HTTP's 400 carries it", async () => {
    const { error } = await chat(hi({ maxTokens: undefined, extra: { max_tokens: 'x' } }));
    const http = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], max_tokens: 'x' });
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toMatch(/Input should be a valid integer/);
    expect(error?.details).toBe(http.json.error.message);
    expect(error?.metadata.get('flockserve-error-code')).toEqual(['upstream_bad_request']);
  });

  it('a number JSON cannot carry (NaN, infinity) is INVALID_ARGUMENT naming the field, not a null the worker reads as unset', async () => {
    for (const temperature of [NaN, Infinity]) {
      const { error } = await chat(hi({ temperature }));
      expect(error?.code).toBe(status.INVALID_ARGUMENT);
      expect(error?.details).toBe(`temperature must be a finite number, got ${temperature}.`);
      expect(error?.metadata.get('flockserve-error-code')).toEqual(['bad_request']);
    }
  });

  it('the `stream: 1` metadata streams as the header does on HTTP', async () => {
    const md = new Metadata();
    md.set('stream', '1');
    const { got, error } = await chat(hi({ maxTokens: 3 }), md);
    expect(error).toBeUndefined();
    expect(got.map((m) => m.object)).toEqual(Array(got.length).fill('chat.completion.chunk'));
    expect(got.length).toBeGreaterThan(1);
  });
});

describe('the session key', () => {
  it('x-session-id metadata pins a session to one worker, the same one HTTP calls with that key reach', async () => {
    const workerOf = async (marker: string): Promise<string> => {
      for (const url of env.workerUrls()) {
        const s = await simStats(url);
        if (s.lastRequests.some((r) => r.headers['x-marker'] === marker)) return url;
      }
      throw new Error(`no worker saw ${marker}`);
    };
    const reached = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const md = new Metadata();
      md.set('x-session-id', 'session-blue');
      md.set('x-marker', `grpc-${i}`);
      expect((await chat(hi(), md)).error).toBeUndefined();
      reached.add(await workerOf(`grpc-${i}`));
      const http = await post(
        '/v1/chat/completions',
        { model: 'sim', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 },
        { 'x-session-id': 'session-blue', 'x-marker': `http-${i}` },
      );
      expect(http.status).toBe(200);
      reached.add(await workerOf(`http-${i}`));
    }
    expect(reached.size).toBe(1);
  });
});

describe('the request id', () => {
  it("comes back in the response headers (the client's when it sent one) and reaches the worker", async () => {
    const md = new Metadata();
    md.set('x-request-id', 'grpc-client-id-1');
    const mine = await chat(hi(), md);
    expect(mine.headers.get('x-request-id')).toEqual(['grpc-client-id-1']);
    const seen = (await Promise.all(env.workerUrls().map(simStats))).flatMap((s) => s.lastRequests);
    expect(seen.some((r) => r.headers['x-request-id'] === 'grpc-client-id-1')).toBe(true);
    const fresh = await chat(hi());
    expect(String(fresh.headers.get('x-request-id')[0])).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('statuses that say whose fault it is', () => {
  const rawChat = (payload: Buffer, md = new Metadata()): Promise<ServiceError | undefined> => {
    const c = new Client(env.grpcAddress, credentials.createInsecure());
    return new Promise((resolve) => {
      const call = c.makeServerStreamRequest(
        '/flockserve.v1.InferenceService/ChatCompletion',
        (b: Buffer) => b,
        (b: Buffer) => b,
        payload,
        md,
      );
      call.on('data', () => {});
      call.on('error', (e: ServiceError) => {
        c.close();
        resolve(e);
      });
      call.on('end', () => {
        c.close();
        resolve(undefined);
      });
    });
  };

  it('metadata over max_header_size: RESOURCE_EXHAUSTED headers_too_large, as HTTP answers 431, and no worker sees it', async () => {
    const before = (await Promise.all(env.workerUrls().map((u) => simStats(u)))).reduce((n, s) => n + s.received, 0);
    const md = new Metadata();
    md.set('x-big', 'x'.repeat(20_000));
    const { error } = await chat(hi(), md);
    expect(error?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(error?.metadata.get('flockserve-error-code')).toEqual(['headers_too_large']);
    expect(error?.metadata.get('x-request-id')).toHaveLength(1);
    expect(error?.details).toMatch(/at most 16384 \(max_header_size\)/);
    const after = (await Promise.all(env.workerUrls().map((u) => simStats(u)))).reduce((n, s) => n + s.received, 0);
    expect(after).toBe(before);
    // Under the limit, the same call goes through.
    md.set('x-big', 'x'.repeat(10_000));
    expect((await chat(hi(), md)).error).toBeUndefined();
  });

  it("a message that does not decode: INVALID_ARGUMENT with the decoder's reason", async () => {
    // Field 2 (messages) as length-delimited, claiming 100 bytes where 2 follow.
    const e = await rawChat(Buffer.from([0x12, 0x64, 0x0a, 0x00]));
    expect(e?.code).toBe(status.INVALID_ARGUMENT);
    expect(e?.details).toMatch(
      /^The request to \/flockserve\.v1\.InferenceService\/ChatCompletion is not a valid message: premature EOF$/,
    );
    expect(e?.metadata.get('flockserve-error-code')).toEqual(['undecodable']);
    // Refused before the service saw it, it still carries a request id: a new one, or the client's.
    expect(e?.metadata.get('x-request-id')[0]).toMatch(/^[0-9a-f-]{36}$/);
    const md = new Metadata();
    md.set('x-request-id', 'mine-1');
    const mine = await rawChat(Buffer.from([0x12, 0x64, 0x0a, 0x00]), md);
    expect(mine?.metadata.get('x-request-id')).toEqual(['mine-1']);
  });

  it('a message over max_body_size: RESOURCE_EXHAUSTED', async () => {
    const { error } = await chat(
      hi({ messages: [{ role: 'user', content: { $case: 'text', value: 'x'.repeat(70_000) } }] }),
    );
    expect(error?.code).toBe(status.RESOURCE_EXHAUSTED);
  });

  it('a well-formed request still works after them', async () => {
    const { got, error } = await chat(hi({ maxTokens: 2 }));
    expect(error).toBeUndefined();
    expect(got).toHaveLength(1);
  });
});

describe("the client's deadline", () => {
  it('100 calls with a 100 ms deadline against a slow worker: DEADLINE_EXCEEDED, then nothing left in flight anywhere', async () => {
    const slow = await startScenario({
      name: 'slow worker',
      workers: ['--token-interval 1000'],
      gateway: { workerCapacity: 8, maxQueueLength: 1000 },
      shot: { stream: true, maxTokens: 1 },
      concurrency: 1,
    });
    const c = new InferenceServiceClient(slow.grpcAddress, credentials.createInsecure());
    try {
      const codes = await Promise.all(
        Array.from(
          { length: 100 },
          () =>
            new Promise<number>((resolve) => {
              const call = c.chatCompletion(hi({ maxTokens: 50, stream: true }), new Metadata(), {
                deadline: Date.now() + 100,
              });
              call.on('data', () => {});
              call.on('error', (e: ServiceError) => resolve(e.code));
              call.on('end', () => resolve(status.OK));
            }),
        ),
      );
      expect(codes).toEqual(Array(100).fill(status.DEADLINE_EXCEEDED));
      // Every slot freed, every queue wait ended, and the worker stopped generating for all of them.
      await waitFor(() => slow.gw.status().currentQueueLength === 0, 'no request in flight at the gateway', 5_000);
      expect(slow.gw.gateway?.service.inFlight).toBe(0);
      await waitFor(async () => (await simStats(slow.sims[0]!.url)).running === 0, 'the worker to stop', 5_000);
      const s = await simStats(slow.sims[0]!.url);
      expect(s.completed).toBe(0);
      expect(s.aborted).toBe(s.received);
    } finally {
      c.close();
      await slow.close();
    }
  });
});
