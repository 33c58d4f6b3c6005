import { credentials, Metadata } from '@grpc/grpc-js';
import type { IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChatCompletionRequest,
  InferenceServiceClient,
  type ChatCompletionResponse,
} from '../../../src/gen/flockserve/v1/inference.js';
import type { TestGateway } from '../../helpers/gateway.js';
import { collect } from '../../helpers/grpc.js';
import { CHAT_ANSWER, gatewayOver, startHttpWorker, type HttpWorker } from '../../helpers/http-worker.js';
import { waitFor } from '../../helpers/wait.js';

// x-priority on the real listeners: one worker with one slot, taken by a request the worker
// holds; the requests that wait meanwhile reach the worker, once it is freed, lower priority
// first, whichever transport they came by. The worker records what it received, in order.

const received: { content: string; headers: IncomingHttpHeaders }[] = [];
let release: () => void = () => {};
let worker: HttpWorker;
let t: TestGateway;
let grpc: InferenceServiceClient;

beforeAll(async () => {
  worker = await startHttpWorker((req, res, body) => {
    if (req.method !== 'POST') return void res.end('ok');
    const content = (JSON.parse(body.toString()) as { messages: { content: string }[] }).messages[0]!.content;
    received.push({ content, headers: req.headers });
    const answer = (): void => void res.writeHead(200, { 'content-type': 'application/json' }).end(CHAT_ANSWER);
    if (content === 'hold') release = answer;
    else answer();
  });
  t = await gatewayOver(worker, { workerCapacity: 1 });
  grpc = new InferenceServiceClient(t.grpcAddress, credentials.createInsecure());
});

afterAll(async () => {
  grpc?.close();
  await t?.close();
  await worker?.close();
});

const chat = (content: string, priority?: string): Promise<Response> =>
  fetch(`${t.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(priority === undefined ? {} : { 'x-priority': priority }) },
    body: JSON.stringify({ model: 'sim', messages: [{ role: 'user', content }] }),
  });

describe('x-priority', () => {
  it('waiting requests reach the worker lower priority first, on HTTP and gRPC alike; the header stays at the gateway', async () => {
    const held = chat('hold');
    await waitFor(() => received.length === 1, 'the held request at the worker');
    const waiting = [chat('five', '5'), chat('none'), chat('minus one', '-1')];
    const md = new Metadata();
    md.set('x-priority', '-5');
    const overGrpc = collect<ChatCompletionResponse>(
      grpc.chatCompletion(
        ChatCompletionRequest.fromPartial({
          model: 'sim',
          messages: [{ role: 'user', content: { $case: 'text', value: 'grpc minus five' } }],
        }),
        md,
      ),
    );
    await waitFor(() => t.gw.status().gatewayQueueLength === 4, 'four requests waiting');
    release();
    expect((await held).status).toBe(200);
    expect((await Promise.all(waiting)).map((r) => r.status)).toEqual([200, 200, 200]);
    expect((await overGrpc).error).toBeUndefined();
    expect(received.map((r) => r.content)).toEqual(['hold', 'grpc minus five', 'minus one', 'none', 'five']);
    expect(received.every((r) => r.headers['x-priority'] === undefined)).toBe(true);
  });

  it('a priority that is not an integer is a 400 that names the header, and nothing waits', async () => {
    const before = received.length;
    const res = await chat('bad', 'urgent');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe(
      'The x-priority header must be an integer of at most 15 digits (lower is served first), got "urgent".',
    );
    expect(received.length).toBe(before);
  });
});
