import { describe, expect, it, vi } from 'vitest';
import { Admission, eligible, type Lease } from '../../../src/core/admission.js';
import { LeastConnection } from '../../../src/core/balancer/least-connection.js';
import { VirtualClock, seededRandom } from '../../../src/core/clock.js';
import { GatewayError } from '../../../src/core/errors.js';
import { LoadTracker } from '../../../src/core/load-tracker.js';
import { WorkerPool } from '../../../src/core/pool.js';
import type { BalancerPolicy } from '../../../src/core/balancer/types.js';
import { testAdmission } from '../../helpers/balancer.js';

const S = 1000;

function readyWorker(pool: WorkerPool, name: string, capacity: number): void {
  pool.add(name, capacity, 'provisioning');
  pool.setState(name, 'starting', 'test');
  pool.setState(name, 'ready', 'test');
}

/** A request's outcome as seen after microtasks have run. */
interface Outcome {
  lease?: Lease;
  error?: GatewayError;
}

function setup(
  opts: {
    workers?: number;
    capacity?: number;
    maxQueueLength?: number;
    onDemand?: () => void;
    coldStartTimeoutMs?: number;
    onHeldAtCapacity?: (waiting: number) => void;
  } = {},
) {
  const clock = new VirtualClock();
  const pool = new WorkerPool(clock);
  for (let i = 1; i <= (opts.workers ?? 2); i++) readyWorker(pool, `w-${i}`, opts.capacity ?? 2);
  const tracker = new LoadTracker(clock, 60 * S);
  const reported: number[] = [];
  const set = tracker.set.bind(tracker);
  // Passes on the time admission read for the change: the means below then hold it to the clock.
  vi.spyOn(tracker, 'set').mockImplementation((v, now) => {
    reported.push(v);
    set(v, now);
  });
  const admission = new Admission({
    pool,
    balancer: new LeastConnection(),
    clock,
    tracker,
    random: seededRandom(1),
    maxQueueLength: opts.maxQueueLength ?? 10,
    ...(opts.onDemand ? { onDemand: opts.onDemand } : {}),
    ...(opts.onHeldAtCapacity ? { onHeldAtCapacity: opts.onHeldAtCapacity } : {}),
    ...(opts.coldStartTimeoutMs === undefined ? {} : { coldStartTimeoutMs: opts.coldStartTimeoutMs }),
  });
  const request = (timeoutMs = 10 * S, signal?: AbortSignal, priority?: number, ctx = {}): Outcome => {
    const o: Outcome = {};
    admission
      .acquire({ ctx, timeoutMs, ...(signal ? { signal } : {}), ...(priority === undefined ? {} : { priority }) })
      .then(
        (l) => (o.lease = l),
        (e: GatewayError) => (o.error = e),
      );
    return o;
  };
  return { clock, pool, tracker, reported, admission, request };
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('Admission', () => {
  it('capacity 2 × 2 workers, 6 requests: 4 leased at once, 2 wait', async () => {
    const { pool, admission, request, tracker, reported } = setup();
    const rs = Array.from({ length: 6 }, () => request());
    await flush();
    expect(rs.map((r) => r.lease !== undefined)).toEqual([true, true, true, true, false, false]);
    expect(admission.waiting).toBe(2);
    expect(pool.list().map((w) => w.inFlight)).toEqual([2, 2]);
    expect(reported).toEqual([1, 2, 3, 4, 5, 6]);
    expect(tracker.current()).toBe(6);
  });

  it('says when requests wait because every ready worker is at its capacity, and not when none is ready', async () => {
    const told: number[] = [];
    const { pool, admission, request } = setup({ workers: 2, capacity: 1, onHeldAtCapacity: (n) => told.push(n) });
    const rs = [request(), request()];
    await flush();
    expect([admission.waiting, admission.heldAtCapacity, told]).toEqual([0, false, []]);
    request();
    request();
    await flush();
    expect([admission.waiting, admission.heldAtCapacity, told]).toEqual([2, true, [1, 2]]);
    rs[0]!.lease!.release();
    await flush();
    expect([admission.waiting, admission.heldAtCapacity]).toEqual([1, true]);
    // No worker serves: the queue waits for a worker, not for capacity.
    pool.setState('w-1', 'not_ready', 'test');
    pool.setState('w-2', 'not_ready', 'test');
    request();
    await flush();
    expect([admission.waiting, admission.heldAtCapacity, told]).toEqual([2, false, [1, 2]]);
  });

  it('resolves at once (before any timer or I/O) when a slot is free', async () => {
    const { admission } = setup();
    const lease = await admission.acquire({ ctx: {}, timeoutMs: 0 });
    expect(lease.worker.inFlight).toBe(1);
  });

  it('tryAcquire: a slot in the same turn only where acquire would give one at once', async () => {
    const { admission, request, pool } = setup({ workers: 1, capacity: 2 });
    const now = () => admission.tryAcquire({ ctx: {}, timeoutMs: 10 * S });
    // timeline: a free slot; the last free slot; full; a waiter ahead; an aborted client; closed
    const first = now();
    expect(first?.worker.name).toBe('w-1');
    expect(now()?.worker.inFlight).toBe(2);
    expect(now()).toBeUndefined(); // full: acquire() queues it
    const waiter = request();
    await flush();
    first!.release(); // the slot goes to the waiter, not to a later tryAcquire
    await flush();
    expect(waiter.lease).toBeDefined();
    expect(now()).toBeUndefined();
    waiter.lease!.release();
    const aborted = new AbortController();
    aborted.abort();
    expect(admission.tryAcquire({ ctx: {}, timeoutMs: 10 * S, signal: aborted.signal })).toBeUndefined();
    expect(pool.list()[0]!.inFlight).toBe(1);
    admission.close();
    expect(now()).toBeUndefined();
  });

  it('hands released slots to waiters in FIFO order; release is idempotent', async () => {
    const { pool, admission, request, tracker, clock } = setup();
    const rs = Array.from({ length: 7 }, () => request());
    await flush();
    const [r5, r6, r7] = [rs[4]!, rs[5]!, rs[6]!];

    const freed = rs[2]!.lease!;
    freed.release();
    await flush();
    expect(r5.lease?.worker).toBe(freed.worker);
    expect(r6.lease).toBeUndefined();

    freed.release(); // a second release frees nothing
    await flush();
    expect(r6.lease).toBeUndefined();
    expect(pool.inFlight()).toBe(4);
    expect(admission.waiting).toBe(2);

    rs[0]!.lease!.release();
    await flush();
    expect(r6.lease).toBeDefined();
    expect(r7.lease).toBeUndefined();
    expect(tracker.current()).toBe(4 + 1);
    // The handed-over waiters' timers were cancelled: only r7's is left.
    expect(clock.pendingTimers).toBe(1);
  });

  it('rejects a waiter with 503 queue_timeout when its timeout passes', async () => {
    const { admission, request, clock, tracker } = setup({ workers: 1, capacity: 1 });
    request();
    const waiter = request(5 * S);
    clock.advance(5 * S - 1);
    await flush();
    expect(waiter.error).toBeUndefined();
    expect(admission.waiting).toBe(1);

    clock.advance(1);
    await flush();
    expect(waiter.error).toBeInstanceOf(GatewayError);
    expect(waiter.error).toMatchObject({ code: 'queue_timeout', status: 503, grpcCode: 14 });
    expect(waiter.error!.retryAfterSeconds).toBeGreaterThan(0);
    expect(admission.waiting).toBe(0);
    expect(tracker.current()).toBe(1);
  });

  it('a request that may not wait gets queue_timeout at once when no slot is free', async () => {
    const { request, admission } = setup({ workers: 1, capacity: 1 });
    request();
    const r = request(0);
    await flush();
    expect(r.error?.code).toBe('queue_timeout');
    expect(admission.waiting).toBe(0);
  });

  it('an aborted request leaves the queue with client_closed and is skipped by handover', async () => {
    const { admission, request, clock } = setup({ workers: 1, capacity: 1 });
    const first = request();
    const ac = new AbortController();
    const aborted = request(10 * S, ac.signal);
    const next = request();
    await flush();
    expect(admission.waiting).toBe(2);

    ac.abort(new Error('socket closed'));
    await flush();
    expect(aborted.error).toMatchObject({ code: 'client_closed', status: 499 });
    expect((aborted.error!.cause as Error).message).toBe('socket closed');
    expect(admission.waiting).toBe(1);
    expect(clock.pendingTimers).toBe(1);

    first.lease!.release();
    await flush();
    expect(next.lease).toBeDefined();
  });

  it('an already aborted signal is rejected without queueing', async () => {
    const { admission } = setup();
    const ac = new AbortController();
    ac.abort();
    await expect(admission.acquire({ ctx: {}, timeoutMs: S, signal: ac.signal })).rejects.toMatchObject({
      code: 'client_closed',
    });
    expect(admission.waiting).toBe(0);
  });

  it('rejects with 429 queue_full when maxQueueLength wait already', async () => {
    const { request, admission } = setup({ maxQueueLength: 2 });
    const rs = Array.from({ length: 7 }, () => request());
    await flush();
    expect(rs.slice(0, 6).every((r) => r.error === undefined)).toBe(true);
    expect(rs[6]!.error).toMatchObject({ code: 'queue_full', status: 429 });
    expect(admission.waiting).toBe(2);
  });

  it('wake() hands the slots of a newly ready worker to waiters', async () => {
    const { pool, admission, request } = setup({ workers: 1, capacity: 1 });
    request();
    const a = request();
    const b = request();
    pool.add('w-9', 1, 'provisioning');
    pool.setState('w-9', 'starting', 'test');
    pool.setState('w-9', 'ready', 'test');
    await flush();
    expect(a.lease).toBeUndefined();
    admission.wake();
    await flush();
    expect(a.lease?.worker.name).toBe('w-9');
    expect(b.lease).toBeUndefined();
  });

  it('keeps FIFO when a slot is free while others wait: the oldest waiter gets it', async () => {
    const { pool, request } = setup({ workers: 1, capacity: 1 });
    request();
    const old = request();
    readyWorker(pool, 'w-9', 1); // no wake()
    const newcomer = request();
    await flush();
    expect(old.lease?.worker.name).toBe('w-9');
    expect(newcomer.lease).toBeUndefined();
  });

  it('calls onDemand when no worker is live (scale from zero), then serves once one is ready', async () => {
    const onDemand = vi.fn();
    const { pool, admission, request } = setup({ workers: 0, onDemand });
    const r = request(60 * S);
    expect(onDemand).toHaveBeenCalledTimes(1);
    pool.add('w-1', 2, 'provisioning');
    request(60 * S);
    expect(onDemand).toHaveBeenCalledTimes(1); // a provisioning worker counts as live
    pool.setState('w-1', 'starting', 'test');
    pool.setState('w-1', 'ready', 'test');
    admission.wake();
    await flush();
    expect(r.lease?.worker.name).toBe('w-1');
  });

  it('cold start: with no ready worker a request waits cold_start_timeout, not its own timeout', async () => {
    const { pool, admission, request, clock } = setup({ workers: 0, coldStartTimeoutMs: 300 * S });
    const r = request(60 * S);
    pool.add('w-1', 2, 'provisioning');
    clock.advance(200 * S); // far past the 60 s queue timeout: still waiting for the launch
    await flush();
    expect(r.error).toBeUndefined();
    pool.setState('w-1', 'starting', 'test');
    pool.setState('w-1', 'ready', 'test');
    admission.wake();
    await flush();
    expect(r.lease?.worker.name).toBe('w-1');
  });

  it('cold start: a launch that takes too long ends the wait with a message that says so', async () => {
    const { request, clock } = setup({ workers: 0, coldStartTimeoutMs: 300 * S });
    const r = request(60 * S);
    clock.advance(299 * S);
    await flush();
    expect(r.error).toBeUndefined();
    clock.advance(1 * S);
    await flush();
    expect(r.error).toMatchObject({ code: 'queue_timeout', status: 503 });
    expect(r.error?.message).toMatch(/No worker became ready within 300 s \(cold start/);
  });

  it('cold start: once a worker is ready, cold waiters fall back to min(cold deadline, now + own timeout)', async () => {
    // capacity 1: the first waiter gets the slot, the second keeps waiting after the worker is ready.
    const { pool, admission, request, clock } = setup({ workers: 0, capacity: 1, coldStartTimeoutMs: 300 * S });
    const first = request(60 * S);
    const second = request(60 * S);
    const late = request(60 * S);
    pool.add('w-1', 1, 'provisioning');
    clock.advance(100 * S); // late is 100 s into its 300 s cold start
    pool.setState('w-1', 'starting', 'test');
    pool.setState('w-1', 'ready', 'test');
    admission.wake();
    await flush();
    expect(first.lease).toBeDefined();
    clock.advance(59 * S); // 159 s: inside 100 + 60
    await flush();
    expect(second.error).toBeUndefined();
    clock.advance(1 * S); // 160 s = ready at 100 s + 60 s queue timeout
    await flush();
    expect(second.error).toMatchObject({ code: 'queue_timeout' });
    expect(second.error?.message).toMatch(/No worker slot became free within 60 s/);
    expect(late.error).toMatchObject({ code: 'queue_timeout' });
  });

  it('cold start does not apply while a worker is ready but full', async () => {
    const { request, clock } = setup({ workers: 1, capacity: 1, coldStartTimeoutMs: 300 * S });
    request(60 * S);
    const r = request(60 * S);
    clock.advance(60 * S);
    await flush();
    expect(r.error).toMatchObject({ code: 'queue_timeout' });
  });

  it('does not call onDemand while a live worker exists, even if it is full', () => {
    const onDemand = vi.fn();
    const { request } = setup({ workers: 1, capacity: 1, onDemand });
    request();
    request();
    expect(onDemand).not.toHaveBeenCalled();
  });

  it('close() rejects every waiter and later requests', async () => {
    const { admission, request, clock, tracker } = setup({ workers: 1, capacity: 1 });
    const leased = request();
    const w1 = request();
    const w2 = request();
    admission.close();
    await flush();
    expect(w1.error).toMatchObject({ code: 'shutting_down', status: 503 });
    expect(w2.error).toMatchObject({ code: 'shutting_down' });
    expect(clock.pendingTimers).toBe(0);
    expect(tracker.current()).toBe(1);
    await expect(admission.acquire({ ctx: {}, timeoutMs: S })).rejects.toMatchObject({ code: 'shutting_down' });
    leased.lease!.release(); // an in-flight request still releases its slot
    expect(tracker.current()).toBe(0);
  });

  it('reports in flight + waiting to the tracker on every change (timeline)', async () => {
    const { request, clock, tracker, reported } = setup({ workers: 1, capacity: 1 });
    const a = request(); // t=0: 1
    await flush();
    clock.advance(10 * S);
    const b = request(30 * S); // t=10: 2
    clock.advance(10 * S);
    a.lease?.release(); // t=20: handover, in flight 1 + waiting 0 = 1
    await flush();
    clock.advance(10 * S);
    b.lease!.release(); // t=30: 0
    clock.advance(30 * S);
    // Consecutive repeats are harmless (the tracker ignores them): compare the changes.
    expect(reported.filter((v, i) => v !== reported[i - 1])).toEqual([1, 2, 1, 0]);
    // 1 for 10 s, 2 for 10 s, 1 for 10 s, 0 for 30 s over 60 s.
    expect(tracker.mean()).toBeCloseTo((10 + 20 + 10) / 60, 12);
  });

  it('a lease tells how long its request waited in the queue (timeline)', async () => {
    const { clock, request } = setup({ workers: 1, capacity: 1 });
    const first = request(); //   t=0: a free slot
    const second = request(); //  t=0: waits
    await flush();
    expect(first.lease?.waitedMs).toBe(0);
    clock.advance(3 * S);
    first.lease!.release(); //    t=3 s: the slot passes to the waiter
    await flush();
    expect(second.lease?.waitedMs).toBe(3 * S);
  });

  it('the history hears how long each request that waited did: one that got a slot, one that timed out, one whose client left', async () => {
    const clock = new VirtualClock();
    const pool = new WorkerPool(clock);
    readyWorker(pool, 'a', 1);
    const waits: [ms: number, at: number][] = [];
    const history = {
      record: () => {},
      waited: (ms: number, now: number) => waits.push([ms, now]),
      refused: () => {},
      firstToken: () => {},
    };
    const admission = testAdmission(pool, clock, { history });
    const first = await admission.acquire({ ctx: {}, timeoutMs: 0 });
    const slotted = admission.acquire({ ctx: {}, timeoutMs: 10 * S });
    const timedOut = admission.acquire({ ctx: {}, timeoutMs: 2 * S }).catch((e: unknown) => e);
    const abort = new AbortController();
    const gone = admission.acquire({ ctx: {}, timeoutMs: 10 * S, signal: abort.signal }).catch((e: unknown) => e);
    clock.advance(S);
    abort.abort();
    clock.advance(2 * S);
    first.release();
    (await slotted).release();
    expect(await timedOut).toMatchObject({ code: 'queue_timeout' });
    expect(await gone).toMatchObject({ code: 'client_closed' });
    // A request that took a free slot at once did not wait: nothing for it.
    expect(waits).toEqual([
      [S, S],
      [2 * S, 2 * S],
      [3 * S, 3 * S],
    ]);
  });

  it('the history hears of each request turned away at a full queue: demand the fleet did not take', async () => {
    const clock = new VirtualClock();
    const pool = new WorkerPool(clock);
    readyWorker(pool, 'a', 1);
    const refused: number[] = [];
    const history = {
      record: () => {},
      waited: () => {},
      refused: (now: number) => refused.push(now),
      firstToken: () => {},
    };
    const admission = testAdmission(pool, clock, { history, maxQueueLength: 1 });
    const first = await admission.acquire({ ctx: {}, timeoutMs: 0 });
    const waiting = admission.acquire({ ctx: {}, timeoutMs: 10 * S });
    clock.advance(S);
    const turnedAway = await admission.acquire({ ctx: {}, timeoutMs: 10 * S }).catch((e: unknown) => e);
    expect(turnedAway).toMatchObject({ code: 'queue_full' });
    expect(refused).toEqual([S]);
    first.release();
    (await waiting).release();
    expect(refused).toEqual([S]);
  });
});

describe('eligible: retries go to another worker when one exists', () => {
  // [label, workers as [name, inFlight/capacity, ejected], exclude, candidates]
  const table: [string, [string, string, boolean?][], string[], string[]][] = [
    ['no exclusions: every candidate', [['a', '0/2'], ['b', '1/2']], [], ['a', 'b']],
    ['the failed worker is left out', [['a', '0/2'], ['b', '1/2']], ['a'], ['b']],
    ['the other is full: wait for it, not back to the failed one', [['a', '0/2'], ['b', '2/2']], ['a'], []],
    ['only one worker: back to it', [['a', '0/2']], ['a'], ['a']],
    ['every serving worker tried: all count again', [['a', '0/2'], ['b', '0/2']], ['a', 'b'], ['a', 'b']],
    ['an ejected worker is no way out', [['a', '0/2'], ['b', '0/2', true]], ['a'], ['a']],
  ]; // prettier-ignore

  it.each(table)('%s', (_label, workers, exclude, want) => {
    const clock = new VirtualClock();
    const pool = new WorkerPool(clock);
    for (const [name, load, ejected] of workers) {
      const [inFlight, capacity] = load.split('/').map(Number) as [number, number];
      readyWorker(pool, name, capacity);
      const w = pool.get(name)!;
      for (let i = 0; i < inFlight; i++) pool.acquire(w);
      if (ejected) pool.setEjected(name, true);
    }
    expect(eligible(pool, new Set(exclude)).map((w) => w.name)).toEqual(want);
  });

  it('a waiting retry is handed the other worker when it frees, not the excluded one', async () => {
    const { admission, pool } = setup({ workers: 2, capacity: 1 });
    const first = await admission.acquire({ ctx: {}, timeoutMs: 0 });
    const second = await admission.acquire({ ctx: {}, timeoutMs: 0 });
    const failed = first.worker.name;
    first.release(); // the failed worker has room again, the other is still busy
    let got: Lease | undefined;
    void admission.acquire({ ctx: { exclude: new Set([failed]) }, timeoutMs: 10 * S }).then((l) => (got = l));
    await flush();
    expect(got).toBeUndefined();
    second.release();
    await flush();
    expect(got?.worker.name).toBe(second.worker.name);
    expect(pool.get(failed)!.inFlight).toBe(0);
  });
});

describe('Admission with outlier ejection and the load index', () => {
  it('an ejected worker leaves the candidates at once and returns when readmitted', async () => {
    const clock = new VirtualClock();
    const pool = new WorkerPool(clock);
    for (const name of ['a', 'b']) {
      pool.add(name, 2);
      pool.setState(name, 'starting', 'test');
      pool.setState(name, 'ready', 'test');
    }
    const admission = testAdmission(pool, clock);
    pool.setEjected('a', true);
    const picked: string[] = [];
    for (let i = 0; i < 2; i++) picked.push((await admission.acquire({ ctx: {}, timeoutMs: 0 })).worker.name);
    expect(picked).toEqual(['b', 'b']);
    // b is full and a is ejected: nothing to take.
    await expect(admission.acquire({ ctx: {}, timeoutMs: 0 })).rejects.toMatchObject({ code: 'queue_timeout' });
    pool.setEjected('a', false);
    expect((await admission.acquire({ ctx: {}, timeoutMs: 0 })).worker.name).toBe('a');
  });
});

describe("a lease carries its pick's prefill to the worker until the first byte", () => {
  /** A policy that sends everything to the first candidate and says the prompt's length is left to prefill. */
  const prefillByLength: BalancerPolicy = {
    name: 'prefill-by-length',
    readsPrompt: true,
    pick(c, ctx) {
      ctx.prefill = ctx.promptText?.length ?? 0;
      return c.leastLoaded(ctx.random);
    },
  };

  /** One step of a request's life and the worker's prefill queue (bytes) after it; `r1`… name requests. */
  type Step = [label: string, act: string, pending: number];
  const timelines: [string, Step[]][] = [
    ['first byte, then the end: counted once', [
      ['r1 picked with 100 bytes to prefill', 'acquire r1 100', 100],
      ['r2 picked with 40', 'acquire r2 40', 140],
      ["r1's first byte", 'prefilled r1', 40],
      ["r1's first byte again (a second chunk)", 'prefilled r1', 40],
      ['r1 ends', 'release r1', 40],
      ['r2 ends without a first byte (failed, retried or cancelled)', 'release r2', 0],
      ['r2 released again', 'release r2', 0],
    ]],
    ['a retry: the failed lease clears its share, the retry carries the whole prompt', [
      ['r1 picked with 60', 'acquire r1 60', 60],
      ['r1 fails before its first byte', 'release r1', 0],
      ['its retry (past the policy, on another worker)', 'retry r1b 60', 60],
      ["the retry's first byte", 'prefilled r1b', 0],
    ]],
  ]; // prettier-ignore

  it.each(timelines)('%s', async (_label, steps) => {
    const clock = new VirtualClock();
    const pool = new WorkerPool(clock);
    readyWorker(pool, 'a', 4);
    readyWorker(pool, 'b', 4);
    const admission = testAdmission(pool, clock, { balancer: prefillByLength });
    const leases = new Map<string, Lease>();
    const pending = (): number => pool.get('a')!.prefill.bytes + pool.get('b')!.prefill.bytes;
    for (const [label, act, want] of steps) {
      const [verb, id, bytes] = act.split(' ') as [string, string, string?];
      if (verb === 'acquire' || verb === 'retry') {
        const exclude =
          verb === 'retry'
            ? new Set(
                pool
                  .list()
                  .filter((w) => w.inFlight === 0 && w.totalRequests > 0)
                  .map((w) => w.name),
              )
            : undefined;
        const ctx = { promptText: 'p'.repeat(Number(bytes)), ...(exclude ? { exclude } : {}) };
        leases.set(id, await admission.acquire({ ctx, timeoutMs: 0 }));
      } else if (verb === 'prefilled') leases.get(id)!.prefilled();
      else leases.get(id)!.release();
      expect([label, pending()]).toEqual([label, want]);
    }
  });

  it("a streamed answer's first token: prefilled, and its time since the slot was taken goes into the history once", async () => {
    const clock = new VirtualClock();
    const pool = new WorkerPool(clock);
    readyWorker(pool, 'a', 1);
    const firstTokens: [ms: number, at: number][] = [];
    const history = {
      record: () => {},
      waited: () => {},
      refused: () => {},
      firstToken: (ms: number, now: number) => firstTokens.push([ms, now]),
    };
    const admission = testAdmission(pool, clock, { balancer: prefillByLength, history });
    const first = await admission.acquire({ ctx: { promptText: 'p'.repeat(30) }, timeoutMs: 0 });
    // The second waits 5 s for the slot: its wait is the queue's, not the worker's.
    const second = admission.acquire({ ctx: {}, timeoutMs: 10 * S });
    clock.advance(S);
    first.firstToken();
    expect(pool.get('a')!.prefill.bytes).toBe(0);
    first.firstToken(); // a second chunk
    clock.advance(4 * S);
    first.release();
    const lease = await second;
    clock.advance(300);
    lease.firstToken();
    lease.release();
    lease.firstToken(); // after its end: nothing
    expect(firstTokens).toEqual([
      [1000, 1000],
      [300, 5300],
    ]);
  });

  it("a streamed first token times the worker's prefill pace; a whole answer's first byte does not", async () => {
    const clock = new VirtualClock();
    const pool = new WorkerPool(clock);
    readyWorker(pool, 'a', 4);
    const admission = testAdmission(pool, clock, { balancer: prefillByLength });
    const whole = await admission.acquire({ ctx: { promptText: 'p'.repeat(1000) }, timeoutMs: 0 });
    clock.advance(100);
    whole.prefilled();
    expect(pool.get('a')!.prefill.pace).toBe(0);
    whole.release();
    const streamed = await admission.acquire({ ctx: { promptText: 'p'.repeat(2000) }, timeoutMs: 0 });
    clock.advance(100);
    streamed.firstToken();
    expect(pool.get('a')!.prefill.pace).toBe(20);
    streamed.release();
    expect(pool.get('a')!.prefill.bytes).toBe(0);
  });

  it('a policy that estimates nothing leaves the prefill queue empty', async () => {
    const clock = new VirtualClock();
    const pool = new WorkerPool(clock);
    readyWorker(pool, 'a', 4);
    const lease = await testAdmission(pool, clock).acquire({ ctx: { promptText: 'hello' }, timeoutMs: 0 });
    expect(pool.get('a')!.prefill.bytes).toBe(0);
    lease.release();
    expect(pool.get('a')!.prefill.bytes).toBe(0);
  });
});

describe('Admission: priority', () => {
  /** One worker of one slot, taken; then the requests below wait, in the order asked for. */
  async function queued(priorities: (number | undefined)[], maxQueueLength = 10) {
    const env = setup({ workers: 1, capacity: 1, maxQueueLength });
    const holder = env.request();
    const waiting = priorities.map((p) => env.request(10 * S, undefined, p));
    await flush();
    /** Releases the slot `n` times, each time to whoever got it; the order waiters got it in. */
    const serve = async (n: number): Promise<number[]> => {
      const order: number[] = [];
      let current = holder.lease!;
      for (let i = 0; i < n; i++) {
        current.release();
        await flush();
        const next = waiting.findIndex((w) => w.lease !== undefined && !order.includes(waiting.indexOf(w)));
        order.push(next);
        current = waiting[next]!.lease!;
      }
      return order;
    };
    return { ...env, holder, waiting, serve };
  }

  it('lower goes first, and arrival order holds within one priority; none given is 0', async () => {
    const { serve } = await queued([5, undefined, -1, 5, 0, -1]);
    // -1 (#2, #5), then 0 (#1, #4), then 5 (#0, #3)
    expect(await serve(6)).toEqual([2, 5, 1, 4, 0, 3]);
  });

  it('all at one priority: first come, first served, as without priorities', async () => {
    const { serve } = await queued([undefined, 0, undefined, 0]);
    expect(await serve(4)).toEqual([0, 1, 2, 3]);
  });

  it("a full queue: a more urgent request takes the least urgent, newest waiter's place, which gets queue_full", async () => {
    const { waiting, request, admission, holder } = await queued([3, 3, 3], 3);
    const urgent = request(10 * S, undefined, 1);
    await flush();
    expect(waiting[2]!.error).toMatchObject({ code: 'queue_full', status: 429 });
    expect(waiting[0]!.error ?? waiting[1]!.error ?? urgent.error).toBeUndefined();
    expect(admission.waiting).toBe(3);
    // The newcomer gets the next free slot.
    holder.lease!.release();
    await flush();
    expect(urgent.lease).toBeDefined();
    expect(waiting[0]!.lease ?? waiting[1]!.lease).toBeUndefined();
  });

  it("a more urgent request that may not wait takes nobody's place", async () => {
    const { admission, waiting } = await queued([5, 5], 2);
    await expect(admission.acquire({ ctx: {}, timeoutMs: 0, priority: 0 })).rejects.toMatchObject({
      code: 'queue_full',
    });
    await flush();
    expect(waiting.every((w) => w.error === undefined)).toBe(true);
    expect(admission.waiting).toBe(2);
  });

  it('a full queue of requests as urgent or more: the newcomer is refused, as without priorities', async () => {
    const { request, waiting } = await queued([1, 2], 2);
    const same = request(10 * S, undefined, 2);
    const later = request(10 * S, undefined, 7);
    await flush();
    expect(same.error).toMatchObject({ code: 'queue_full' });
    expect(later.error).toMatchObject({ code: 'queue_full' });
    expect(waiting.every((w) => w.error === undefined)).toBe(true);
  });
});

describe('Admission: a request bound to its home worker (a stored answer it builds on)', () => {
  const home = (name: string) => ({ home: name });

  it('goes to its home while that is ready, however loaded it is beside the others', async () => {
    const { admission, request } = setup({ workers: 3, capacity: 4 });
    const rs = Array.from({ length: 5 }, () => request(undefined, undefined, undefined, home('w-2')));
    await flush();
    // w-1 and w-3 stay idle: only w-2 holds what these requests build on.
    expect(rs.map((r) => r.lease?.worker.name)).toEqual(['w-2', 'w-2', 'w-2', 'w-2', undefined]);
    expect(admission.waiting).toBe(1);
  });

  it('waits for a slot on its full home while requests behind it take the other workers', async () => {
    const { admission, request } = setup({ workers: 2, capacity: 1 });
    const first = request(undefined, undefined, undefined, home('w-1'));
    const second = request(); // least-connection: w-2
    await flush();
    const bound = request(undefined, undefined, undefined, home('w-1'));
    const free = request();
    await flush();
    expect([bound.lease, free.lease]).toEqual([undefined, undefined]);
    second.lease!.release(); // w-2 frees: the request behind the bound one takes it
    await flush();
    expect([bound.lease, free.lease?.worker.name]).toEqual([undefined, 'w-2']);
    first.lease!.release(); // its home frees
    await flush();
    expect(bound.lease?.worker.name).toBe('w-1');
    expect(admission.waiting).toBe(0);
  });

  it('is balanced as any other when its home is not ready, ejected, or unknown', async () => {
    const { pool, request } = setup({ workers: 2, capacity: 4 });
    const busy = request(undefined, undefined, undefined, home('w-2')); // w-2 one ahead
    await flush();
    expect(busy.lease?.worker.name).toBe('w-2');
    pool.setState('w-2', 'draining', 'test');
    const draining = request(undefined, undefined, undefined, home('w-2'));
    const unknown = request(undefined, undefined, undefined, home('w-9'));
    await flush();
    expect([draining.lease?.worker.name, unknown.lease?.worker.name]).toEqual(['w-1', 'w-1']);
    const { pool: pool2, request: request2 } = setup({ workers: 2, capacity: 4 });
    pool2.get('w-1')!.ejected = true;
    const ejected = request2(undefined, undefined, undefined, home('w-1'));
    await flush();
    expect(ejected.lease?.worker.name).toBe('w-2');
  });

  it('servesBound: a ready worker that is not ejected; not a draining, ejected or unknown one', () => {
    const { pool, admission } = setup({ workers: 3 });
    pool.setState('w-2', 'draining', 'test');
    pool.get('w-3')!.ejected = true;
    expect(['w-1', 'w-2', 'w-3', 'w-9'].map((w) => admission.servesBound(w))).toEqual([true, false, false, false]);
  });

  it('a retry after a failure on its home goes elsewhere, as any retry', async () => {
    const { admission } = setup({ workers: 2, capacity: 4 });
    const lease = await admission.acquire({ ctx: { home: 'w-1', exclude: new Set(['w-1']) }, timeoutMs: 10 * S });
    expect(lease.worker.name).toBe('w-2');
  });
});
