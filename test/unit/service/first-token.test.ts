import { describe, expect, it } from 'vitest';
import { Cancellation } from '../../../src/core/cancellation.js';
import { VirtualClock } from '../../../src/core/clock.js';
import { WorkerPool } from '../../../src/core/pool.js';
import { InferenceService } from '../../../src/service/inference.js';
import { BodyStream } from '../../../src/upstream/body-stream.js';
import type { Upstream } from '../../../src/upstream/types.js';
import { testAdmission } from '../../helpers/balancer.js';

const NO_CONTROL = { pause() {}, resume() {}, abort() {} };

/**
 * The service tells the autoscaler's history how long a streamed answer took to its first token
 * (from the slot taken): the prefill a worker spends on a request. A whole answer's first byte
 * is its end, which says nothing of the prefill.
 */
describe('InferenceService: first tokens into the history', () => {
  it.each([
    {
      label: 'a streamed answer: its first chunk, 400 ms after the slot was taken',
      type: 'text/event-stream',
      want: [400],
    },
    { label: 'a whole JSON answer: nothing', type: 'application/json', want: [] },
  ])('$label', async ({ type, want }) => {
    const clock = new VirtualClock();
    const pool = new WorkerPool(clock);
    pool.add('w-1', 4, 'provisioning');
    pool.setState('w-1', 'starting', 'test');
    pool.setState('w-1', 'ready', 'test');
    const firstTokens: number[] = [];
    const admission = testAdmission(pool, clock, {
      history: { record: () => {}, waited: () => {}, refused: () => {}, firstToken: (ms) => firstTokens.push(ms) },
    });
    const body = new BodyStream(NO_CONTROL);
    const upstream: Upstream = {
      send: () => Promise.resolve({ status: 200, headers: { 'content-type': type }, body }),
      forget: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };
    const service = new InferenceService({ admission, upstream, queueTimeoutMs: 1000, maxRetries: 0, clock });
    const reply = await service.dispatch({
      method: 'POST',
      path: '/v1/completions',
      headers: {},
      signal: new Cancellation(),
    });
    const got: Buffer[] = [];
    let ended = false;
    reply.body
      .read({ data: (c) => got.push(c), end: () => (ended = true), error: (e) => expect.fail(e.message) })
      .resume();
    clock.advance(400);
    body.push(Buffer.from(type === 'application/json' ? '{"choices":[]' : 'data: {"choices":[]}\n\n'));
    clock.advance(600);
    body.push(Buffer.from(type === 'application/json' ? '}' : 'data: [DONE]\n\n'));
    body.finish();
    await new Promise((r) => setImmediate(r));
    expect(ended).toBe(true);
    expect(got.length).toBeGreaterThan(0);
    expect(firstTokens).toEqual(want);
    expect(pool.get('w-1')!.inFlight).toBe(0);
  });
});
