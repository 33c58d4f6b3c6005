import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatCompletionRequest, ChatCompletionResponse } from '../../../src/gen/flockserve/v1/inference.js';
import type { TestGateway } from '../../helpers/gateway.js';
import { gatewayOver, startHttpWorker, type HttpWorker } from '../../helpers/http-worker.js';
import { parsePrometheusText } from '../../helpers/prometheus-text.js';
import { rawGrpcCall } from '../../helpers/raw-grpc.js';
import { waitFor } from '../../helpers/wait.js';

// client_send_timeout on the real listeners: a client that takes none of its answer has it cut
// and its worker's request cancelled, on HTTP and on gRPC. The worker is a firehose (an SSE
// answer of 60 KB events, written as fast as its socket takes them, until it is closed), so the
// kernel's buffers between the gateway and a client that stopped reading fill in milliseconds
// and the gateway's write is refused. Every assertion waits for an event; the lower bound of
// the timeout is asserted, the upper one is the test's timeout.

const SEND_TIMEOUT_S = 0.4;
const EVENT = `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: 'x'.repeat(60_000) } }] })}\n\n`;

/** The firehose's answers: begun, and cut before their end (the gateway cancelled them). */
const answers = { begun: 0, cut: 0 };
let worker: HttpWorker;
let t: TestGateway;

beforeAll(async () => {
  worker = await startHttpWorker((req, res) => {
    if (req.method !== 'POST') return void res.end('ok');
    answers.begun++;
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const pump = (): void => {
      while (!res.destroyed && res.write(EVENT));
    };
    res.on('drain', pump);
    res.on('close', () => answers.cut++);
    pump();
  });
  t = await gatewayOver(worker, { clientSendTimeout: SEND_TIMEOUT_S });
});

afterAll(async () => {
  await t?.close();
  await worker?.close();
});

const cutAnswers = async (): Promise<number> =>
  parsePrometheusText(await (await fetch(`${t.url}/metrics`)).text()).value('flockserve_client_timeouts_total', {
    late: 'answer',
  }) ?? 0;

/** The gateway holds no request: none queued, none at a worker. */
const idle = (): boolean => t.gw.status().currentQueueLength === 0;

/** A raw HTTP/1.1 client that has asked for a streamed chat completion. */
async function streamOverHttp(): Promise<Socket> {
  const socket = connect(Number(new URL(t.url).port), '127.0.0.1');
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve));
  const body = JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'hi' }], stream: true });
  socket.write(
    `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
  );
  return socket;
}

/**
 * From now, the client reading nothing: its worker request is cancelled no sooner than the
 * timeout, the gateway holds no request after it, and the metric counts one more cut answer.
 */
async function cutAfterTimeout(before: { cut: number; counted: number }): Promise<void> {
  const start = performance.now();
  await waitFor(() => answers.cut === before.cut + 1, "the worker's request cancelled", 20_000);
  expect(performance.now() - start).toBeGreaterThanOrEqual(SEND_TIMEOUT_S * 1000);
  await waitFor(idle, 'no request held');
  expect(await cutAnswers()).toBe(before.counted + 1);
}

describe('client_send_timeout', () => {
  it('HTTP: a client that stops reading a stream has its connection cut and the worker request cancelled', async () => {
    const before = { cut: answers.cut, counted: await cutAnswers() };
    const socket = await streamOverHttp();
    // It reads nothing: its receive buffer, then the gateway's send buffer, fill.
    socket.pause();
    await cutAfterTimeout(before);
    // The connection was cut: reading on, the client finds its end.
    const ended = new Promise((resolve) => socket.once('close', resolve));
    socket.resume();
    await ended;
  });

  it('gRPC: a client that stops reading a stream has its call ended with DEADLINE_EXCEEDED and the worker request cancelled', async () => {
    const before = { cut: answers.cut, counted: await cutAnswers() };
    const call = rawGrpcCall(
      t.grpcAddress,
      '/flockserve.v1.InferenceService/ChatCompletion',
      ChatCompletionRequest.encode({
        model: 'sim',
        messages: [{ role: 'user', content: { $case: 'text', value: 'hi' } }],
        stream: true,
        stop: [],
      }).finish(),
      (b) => ChatCompletionResponse.decode(b),
    );
    await call.first;
    call.pause();
    await cutAfterTimeout(before);
    // Reading on, the client gets what was on its way, then the status that says why.
    call.resume();
    const { status, details } = await call.done;
    expect(status).toBe(4);
    expect(details).toContain('client_send_timeout');
  });

  it('a client that reads slowly, never stopping for the timeout, is not cut', async () => {
    const before = { cut: answers.cut, counted: await cutAnswers() };
    const socket = await streamOverHttp();
    // It reads in turns: 150 ms stopped, then on until a little more has come, for 4 send
    // timeouts in all. Each stop blocks the answer for less than the timeout.
    let received = 0;
    socket.on('data', (d: Buffer) => (received += d.length));
    const start = performance.now();
    let turns = 0;
    while (performance.now() - start < 4 * SEND_TIMEOUT_S * 1000) {
      socket.pause();
      await new Promise((resolve) => setTimeout(resolve, 150));
      const at = received;
      socket.resume();
      await waitFor(() => received > at + 2 ** 20, 'another MiB');
      turns++;
    }
    expect(turns).toBeGreaterThanOrEqual(4);
    expect(answers.cut).toBe(before.cut);
    socket.destroy();
    await waitFor(() => answers.cut === before.cut + 1 && idle(), 'the worker request cancelled by the leaving client');
    expect(await cutAnswers()).toBe(before.counted);
  });
});
