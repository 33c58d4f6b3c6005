import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { answer } from '../../../src/http/answer.js';
import { NOOP_OBSERVER } from '../../../src/service/observer.js';
import type { InferenceService } from '../../../src/service/inference.js';
import { BodyStream } from '../../../src/upstream/body-stream.js';

describe('answer: a response answered before its worker replied', () => {
  it.each([
    ['a stream', 'text/event-stream'],
    ['a whole answer', 'application/json'],
  ])('%s: the worker is stopped, and its slot given back', async (_, type) => {
    const res = new ServerResponse(new IncomingMessage(new Socket()));
    let aborted = 0;
    let closed = 0;
    const body = new BodyStream({ pause() {}, resume() {}, abort: () => aborted++ });
    body.onClose(() => closed++);
    let reply!: () => void;
    const service = {
      dispatch: () =>
        new Promise((resolve) => {
          reply = () =>
            resolve({ status: 200, headers: { 'content-type': type }, body, worker: 'w-1', queueWaitMs: 0 });
        }),
    } as unknown as InferenceService;
    const record = NOOP_OBSERVER.begin({ transport: 'http', method: 'POST', route: 'x', headers: {}, requestId: 'r' });
    const done = answer(service, res, {
      method: 'POST',
      url: '/v1/chat/completions',
      headers: {},
      body: Buffer.from('{}'),
      record,
      requestId: 'r',
      errorShape: 'openai',
    });
    // Node's HTTP layer answered it meanwhile (as it answers a connection's next, broken request).
    res.end();
    reply();
    await done;
    await new Promise((r) => setImmediate(r));
    expect([aborted, closed]).toEqual([1, 1]);
  });
});
