import { credentials } from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  ChatCompletionRequest,
  ChatCompletionResponse,
  InferenceServiceClient,
} from '../../../src/gen/flockserve/v1/inference.js';
import { simStats, startGateway, type TestGateway } from '../../helpers/gateway.js';
import { rawGrpcCall } from '../../helpers/raw-grpc.js';
import { waitFor } from '../../helpers/wait.js';

// ChatCompletion streams whose client stops reading, over the real gRPC listener and a
// simulator worker. The mechanism (the handler stops reading the worker's body while the call
// cannot take more) is shown with stand-ins in test/unit/service/grpc-backpressure.test.ts, and
// its memory in bench/stalled-streams.ts; here: a stalled stream, resumed, is complete and
// exact, and one whose client leaves while stalled frees its slot and cancels the worker.

const TOKENS = 3000;
let t: TestGateway;
let worker: string;
beforeAll(async () => {
  // A token per engine step, as fast as the simulator's timers go (about 1.6 ms).
  t = await startGateway({ minWorkers: 1, maxWorkers: 1, simArgs: '--token-interval 0' });
  worker = t.gw.workers()[0]!.url!;
});
afterAll(() => t?.close());

const request = (maxTokens: number): ChatCompletionRequest => ({
  model: 'sim',
  messages: [{ role: 'user', content: { $case: 'text', value: 'Tell me everything.' } }],
  maxTokens,
  stream: true,
  stop: [],
});
const PATH = '/flockserve.v1.InferenceService/ChatCompletion';
const stalledCall = (maxTokens: number) =>
  rawGrpcCall(t.grpcAddress, PATH, ChatCompletionRequest.encode(request(maxTokens)).finish(), (b) =>
    ChatCompletionResponse.decode(b),
  );
const deltaText = (m: ChatCompletionResponse): string => {
  const c = m.choices[0]?.delta?.content;
  return c?.$case === 'text' ? c.value : '';
};
const textOf = (messages: ChatCompletionResponse[]): string => messages.map(deltaText).join('');

/** The answer read as fast as it comes, with the generated client. */
async function readAll(maxTokens: number): Promise<ChatCompletionResponse[]> {
  const client = new InferenceServiceClient(t.grpcAddress, credentials.createInsecure());
  const out: ChatCompletionResponse[] = [];
  for await (const m of client.chatCompletion(request(maxTokens))) out.push(m as ChatCompletionResponse);
  client.close();
  return out;
}

it(
  'a client that stops reading until the worker has generated everything, resumed, gets every token',
  { timeout: 90_000 },
  async () => {
    const completedBefore = (await simStats(worker)).completed;
    // Side by side on the one worker: the same answer read as it comes, and one held up.
    const reference = readAll(TOKENS);
    const call = stalledCall(TOKENS);
    await call.first;
    call.pause();
    // The worker generates both answers meanwhile (its clock does not wait for its sockets).
    await waitFor(
      async () => (await simStats(worker)).completed === completedBefore + 2,
      'the worker done generating',
      60_000,
    );
    call.resume();
    const { messages, status } = await call.done;
    const unstalled = await reference;
    expect(status).toBe(0);
    expect(unstalled.length).toBeGreaterThan(TOKENS * 0.9);
    expect(textOf(messages)).toBe(textOf(unstalled));
    expect(t.gw.status().currentQueueLength).toBe(0);
  },
);

it('a stalled client that goes away cancels the worker request and frees the slot; others are served meanwhile', async () => {
  const before = await simStats(worker);
  const call = stalledCall(100_000);
  await call.first;
  call.pause();
  const other = await readAll(50);
  expect(textOf(other).length).toBeGreaterThan(0);
  expect(t.gw.status().currentQueueLength).toBe(1);
  call.close();
  await waitFor(() => t.gw.status().currentQueueLength === 0, 'the slot freed');
  await waitFor(async () => (await simStats(worker)).aborted === before.aborted + 1, 'the worker request aborted');
});
