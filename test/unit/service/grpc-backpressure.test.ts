import { EventEmitter } from 'node:events';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../../src/core/errors.js';
import { ChatCompletionResponse, type ChatCompletionRequest } from '../../../src/gen/flockserve/v1/inference.js';
import { createInferenceHandlers } from '../../../src/service/grpc-inference.js';
import type { InferenceCall, InferenceService } from '../../../src/service/inference.js';
import { BodyStream } from '../../../src/upstream/body-stream.js';
import { checkedAnswer } from '../../../src/upstream/checked-answer.js';

// The ChatCompletion handler between a worker that sends as fast as it is let and a client that
// reads nothing, then everything: the real BodyStreams and SSE check in between, the worker's
// socket and the grpc-js call played by stand-ins that behave as theirs do (the worker sends
// while it is not paused; the call's write() returns false once 16 messages wait unread, and it
// emits 'drain' when the client has read them).

const EVENTS = 1000;
/** One OpenAI chunk of about 200 bytes, as a worker sends a token. */
const event = (i: number): Buffer =>
  Buffer.from(
    `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', model: 'sim', choices: [{ index: 0, delta: { content: `tok${i} ` }, logprobs: null, finish_reason: null }], pad: 'x'.repeat(80) })}\n\n`,
  );

const deltaText = (m: ChatCompletionResponse): string => {
  const c = m.choices[0]?.delta?.content;
  return c?.$case === 'text' ? c.value : '';
};

/** The worker's socket as undici reads it: one event per push, none while paused. */
class Worker {
  sent = 0;
  pauses = 0;
  aborted = false;
  #paused = false;
  readonly body = new BodyStream({
    pause: () => {
      this.#paused = true;
      this.pauses++;
    },
    resume: () => {
      this.#paused = false;
      queueMicrotask(() => this.send());
    },
    abort: () => (this.aborted = true),
  });
  send(): void {
    while (!this.#paused && this.sent < EVENTS) this.body.push(event(this.sent++));
    if (this.sent === EVENTS && !this.#paused) this.body.finish();
  }
}

/** grpc-js's server stream as the handler sees it: 16 messages of room, 'drain' once read. */
class Call extends EventEmitter {
  readonly request: ChatCompletionRequest = {
    model: 'sim',
    messages: [{ role: 'user', content: { $case: 'text', value: 'hi' } }],
    stream: true,
    stop: [],
  };
  readonly metadata = { getMap: () => ({}) };
  getDeadline(): number {
    return Infinity;
  }
  sendMetadata(): void {}
  /** What the handler wrote: each message's protobuf bytes. */
  readonly written: Buffer[] = [];
  read = 0;
  ended = false;
  #needDrain = false;
  write(m: Buffer): boolean {
    this.written.push(m);
    const full = this.written.length - this.read >= 16;
    if (full) this.#needDrain = true;
    return !full;
  }
  end(): void {
    this.ended = true;
  }
  /** The client reads every message written so far. */
  readEverything(): void {
    this.read = this.written.length;
    if (this.#needDrain) {
      this.#needDrain = false;
      this.emit('drain');
    }
  }
}

function serviceFor(worker: Worker): InferenceService {
  return {
    dispatch: async (call: InferenceCall) => ({
      status: 200,
      headers: { 'content-type': 'text/event-stream' },
      worker: 'w',
      queueWaitMs: 0,
      body: checkedAnswer(worker.body, {
        kind: 'sse',
        worker: 'w',
        repetitionLimit: 0,
        openaiStream: true,
        mapError: (err) => new GatewayError('upstream_interrupted', { cause: err }),
        onEvents: call.onSseEvents,
      }),
    }),
  } as unknown as InferenceService;
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await tick();
}

describe('gRPC ChatCompletion: backpressure from the client to the worker', () => {
  it('a client that reads nothing stops the worker once the call is full (16 messages); reading, it gets every token in order', async () => {
    const worker = new Worker();
    const call = new Call();
    createInferenceHandlers(serviceFor(worker)).chatCompletion(call as never);
    await settle();
    worker.send();
    await settle();

    // Nothing read: the worker was paused as soon as the call was full (16 messages), not
    // after the bodies between them had filled their high-water marks: every event it sent
    // became a message, and the gateway holds none of its bytes.
    expect(worker.pauses).toBeGreaterThan(0);
    expect(worker.sent).toBe(16);
    expect(call.written.length).toBe(worker.sent);
    expect(call.ended).toBe(false);

    // The client reads as the messages come: the worker goes on to the end.
    for (let rounds = 0; !call.ended && rounds < 10_000; rounds++) {
      call.readEverything();
      await tick();
    }
    expect(call.ended).toBe(true);
    expect(worker.sent).toBe(EVENTS);
    expect(call.written.map((b) => deltaText(ChatCompletionResponse.decode(b)))).toEqual(
      Array.from({ length: EVENTS }, (_, i) => `tok${i} `),
    );
  });

  it('a client that cancels while the handler waits for it drops the body (aborting the worker request), with no end and no error', async () => {
    const worker = new Worker();
    const call = new Call();
    const errors: unknown[] = [];
    call.on('error', (e) => errors.push(e));
    createInferenceHandlers(serviceFor(worker)).chatCompletion(call as never);
    await settle();
    worker.send();
    await settle();
    expect(worker.pauses).toBeGreaterThan(0);
    const written = call.written.length;
    call.emit('cancelled');
    await settle();
    expect(worker.aborted).toBe(true);
    // Nothing more was read from the worker's body for a client that is gone.
    expect(call.written.length).toBe(written);
    // A cancelled call gets neither an end nor an error: grpc-js has ended it already.
    expect(call.ended).toBe(false);
    expect(errors).toEqual([]);
  });
});
