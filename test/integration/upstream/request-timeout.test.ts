import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cancellation } from '../../../src/core/cancellation.js';
import { VirtualClock } from '../../../src/core/clock.js';
import type { GatewayError } from '../../../src/core/errors.js';
import { WorkerPool } from '../../../src/core/pool.js';
import { InferenceService } from '../../../src/service/inference.js';
import { startEngineSimulator, type EngineSimulator } from '../../../src/sim/server.js';
import { UpstreamClient } from '../../../src/upstream/client.js';
import { testAdmission } from '../../helpers/balancer.js';
import { waitFor } from '../../helpers/wait.js';

// request_timeout on a virtual clock, against a real worker that never answers: one timer,
// armed for the oldest request's deadline, cuts each request at its own deadline.
let sim: EngineSimulator;
beforeAll(async () => {
  sim = await startEngineSimulator({ hang: 'generation' });
});
afterAll(async () => {
  await sim.close();
});

function setup(requestTimeoutMs: number, capacity = 16, worker: EngineSimulator = sim) {
  const clock = new VirtualClock();
  const pool = new WorkerPool(clock);
  const w = pool.add('w-1', capacity, 'provisioning');
  w.url = worker.url;
  pool.setState('w-1', 'starting', 'test');
  pool.setState('w-1', 'ready', 'test');
  const admission = testAdmission(pool, clock);
  const upstream = new UpstreamClient({ connections: 16 });
  const service = new InferenceService({
    admission,
    upstream,
    queueTimeoutMs: 10_000,
    maxRetries: 0,
    requestTimeoutMs,
    clock,
  });
  /** Starts a request (with the client's deadline as ms left, if any); its outcome lands in the returned object. */
  const request = (timeoutMs?: number): { error?: GatewayError; status?: number } => {
    const o: { error?: GatewayError; status?: number } = {};
    service
      .dispatch({
        method: 'POST',
        path: '/v1/completions',
        headers: { 'content-type': 'application/json' },
        body: Buffer.from('{"model":"sim","prompt":"x","max_tokens":1}'),
        signal: new Cancellation(),
        timeoutMs,
      })
      .then(
        (r) => (o.status = r.status),
        (e: GatewayError) => (o.error = e),
      );
    return o;
  };
  return { clock, service, upstream, request };
}

describe('request_timeout', () => {
  it('cuts each request at its own deadline with one timer for all of them', async () => {
    const { clock, service, upstream, request } = setup(1000);
    const a = request();
    clock.advance(600);
    const b = request();
    expect(service.inFlight).toBe(2);
    expect(clock.pendingTimers).toBe(1); // not one per request

    clock.advance(399); // 999 ms: nobody is due yet
    await new Promise((r) => setImmediate(r));
    expect(a.error).toBeUndefined();
    clock.advance(1); // a's deadline
    await waitFor(() => a.error !== undefined, 'a to time out');
    expect(a.error?.code).toBe('upstream_timeout');
    expect(a.error?.message).toMatch(/request timeout \(1 s\)/);
    expect(b.error).toBeUndefined();
    expect(clock.pendingTimers).toBe(1); // re-armed for b

    clock.advance(599); // 1599 ms
    await new Promise((r) => setImmediate(r));
    expect(b.error).toBeUndefined();
    clock.advance(1); // b's deadline: 600 + 1000
    await waitFor(() => b.error !== undefined, 'b to time out');
    expect(b.error?.code).toBe('upstream_timeout');
    await waitFor(() => service.inFlight === 0, 'the requests to be forgotten');
    expect(clock.pendingTimers).toBe(0); // nothing left to time

    // A request after an idle spell gets its full timeout again.
    const c = request();
    clock.advance(999);
    await new Promise((r) => setImmediate(r));
    expect(c.error).toBeUndefined();
    clock.advance(1);
    await waitFor(() => c.error !== undefined, 'c to time out');
    expect(c.error?.code).toBe('upstream_timeout');
    await upstream.close();
  });

  it('0 means no limit: no timer at all', async () => {
    const { clock, service, upstream, request } = setup(0);
    const a = request();
    await waitFor(() => service.inFlight === 1, 'the request to start');
    expect(clock.pendingTimers).toBe(0);
    clock.advance(3_600_000);
    await new Promise((r) => setImmediate(r));
    expect(a.error).toBeUndefined();
    await upstream.close();
  });
});

describe("the client's deadline (gRPC's grpc-timeout)", () => {
  // A worker that generates one token a minute (on its own, real clock).
  let slow: EngineSimulator;
  beforeAll(async () => {
    slow = await startEngineSimulator({ tokenIntervalMs: 60_000 });
  });
  afterAll(async () => {
    await slow.close();
  });

  it('bounds the upstream request and the wait for a slot; the slot is freed and the worker stops', async () => {
    const { clock, service, upstream, request } = setup(0, 1, slow); // no request_timeout: its timer aside
    const running = request(300); //                        t=0: takes the one slot, the worker is slow
    await waitFor(() => slow.stats().running === 1, 'the worker to run it');
    const waiting = request(100); //                        t=0: no slot; waits (queue_timeout is 10 s)
    clock.advance(99);
    await new Promise((r) => setImmediate(r));
    expect([running.error, waiting.error]).toEqual([undefined, undefined]);
    clock.advance(1); //                                    t=100 ms: the waiter's deadline
    await waitFor(() => waiting.error !== undefined, 'the wait to end');
    expect(waiting.error?.code).toBe('deadline_exceeded');
    expect(running.error).toBeUndefined();
    clock.advance(200); //                                  t=300 ms: the running one's deadline
    await waitFor(() => running.error !== undefined, 'the request to end');
    expect(running.error).toMatchObject({ code: 'deadline_exceeded', status: 504, grpcCode: 4 });
    await waitFor(() => service.inFlight === 0, 'the slot to be freed');
    await waitFor(() => slow.stats().running === 0, 'the worker to stop generating');
    expect(slow.stats().aborted).toBe(1);
    expect(clock.pendingTimers).toBe(0); // the deadlines' timers are gone

    // A request that ends before its deadline leaves no timer behind.
    const quick = request(5_000);
    await waitFor(() => service.inFlight === 1, 'the request to start');
    expect(clock.pendingTimers).toBe(1); // this deadline's
    await upstream.close();
    await waitFor(() => quick.error !== undefined, 'the request to end');
    expect(clock.pendingTimers).toBe(0);
  });
});
