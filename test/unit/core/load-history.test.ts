import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/core/clock.js';
import { LoadHistory } from '../../../src/core/load-history.js';
import { LaunchTimes } from '../../../src/core/autoscaler/snapshot.js';
import type { Worker } from '../../../src/core/types.js';

const S = 1000;

describe('LoadHistory', () => {
  it('keeps each 10 s bucket: peak, time-weighted means, arrivals and departures, ready workers', () => {
    const clock = new VirtualClock();
    const h = new LoadHistory(clock);
    h.setReady(2);
    // Timeline of (in flight + waiting, waiting): 3 arrivals at 0 s, 2 more at 4 s (one waits), 3 leave at 6 s
    // (the one waiting among them: it gave up, abandoned).
    h.record(3, 0);
    clock.advance(4 * S);
    h.record(5, 1);
    clock.advance(2 * S);
    h.record(2, 0);
    clock.advance(4 * S); // t = 10 s: the first bucket closes
    expect(h.buckets()).toEqual([
      {
        startMs: 0,
        peak: 5,
        mean: (3 * 4 + 5 * 2 + 2 * 4) / 10,
        peakWaiting: 1,
        meanWaiting: (1 * 2) / 10,
        ready: 2,
        arrivals: 5,
        departures: 3,
        abandoned: 1,
        firstTokens: 0,
        firstTokenMs: 0,
        late: 0,
      },
    ]);
  });

  it('first tokens: counted and their times summed in the bucket they came back in', () => {
    const clock = new VirtualClock();
    const h = new LoadHistory(clock);
    clock.advance(2 * S);
    h.firstToken(150);
    clock.advance(7 * S);
    h.firstToken(250);
    clock.advance(2 * S); // t = 11 s: the second one's bucket has not closed
    h.firstToken(400);
    clock.advance(10 * S);
    expect(h.buckets().map((b) => [b.firstTokens, b.firstTokenMs])).toEqual([
      [2, 400],
      [1, 400],
    ]);
  });

  it('late: requests that left the wait queue after waiting longer than lateAfterMs (the SLO), in the bucket they left in', () => {
    const clock = new VirtualClock();
    const h = new LoadHistory(clock, { lateAfterMs: 1000 });
    clock.advance(2 * S);
    h.waited(1000); // exactly the SLO: on time
    h.waited(1001);
    clock.advance(9 * S);
    h.waited(4000);
    h.waited(20);
    clock.advance(10 * S);
    expect(h.buckets().map((b) => b.late)).toEqual([1, 1]);
    expect(() => new LoadHistory(clock, { lateAfterMs: -1 })).toThrow(/lateAfterMs/);
  });

  it('refused: a request turned away at a full queue arrived, and is late; it never departs', () => {
    const clock = new VirtualClock();
    const h = new LoadHistory(clock);
    h.record(1, 0);
    clock.advance(3 * S);
    h.refused();
    h.refused();
    clock.advance(7 * S);
    h.record(0, 0);
    clock.advance(10 * S);
    expect(h.buckets().map((b) => [b.arrivals, b.late, b.departures, b.peak])).toEqual([
      [3, 2, 0, 1],
      [0, 0, 1, 1],
    ]);
  });

  it('abandoned: a request that leaves the wait queue, not one that leaves its slot (a waiter taking it is reported apart)', () => {
    const clock = new VirtualClock();
    const h = new LoadHistory(clock);
    // (queue, waiting) as the gateway reports each change: 2 slots, 3 arrive (one waits).
    const reports: [number, number][] = [
      [1, 0],
      [2, 0],
      [3, 1],
      [2, 1], // a request finishes: its slot frees...
      [2, 0], // ...and the waiter takes it
      [3, 1], // another arrives and waits
      [2, 0], // it times out in the queue: abandoned
      [1, 0], // a request finishes
    ];
    for (const [q, w] of reports) h.record(q, w);
    clock.advance(10 * S);
    expect(h.buckets()[0]).toMatchObject({ arrivals: 4, departures: 3, abandoned: 1 });
  });

  it('a bucket starts from the value carried into it; idle stretches close as buckets of that value', () => {
    const clock = new VirtualClock();
    const h = new LoadHistory(clock);
    h.record(4, 0);
    clock.advance(35 * S);
    h.setReady(1);
    const b = h.buckets();
    expect(b.map((x) => [x.startMs / S, x.peak, x.mean, x.arrivals])).toEqual([
      [0, 4, 4, 4],
      [10, 4, 4, 0],
      [20, 4, 4, 0],
    ]);
    // The ready worker joined at 35 s: the bucket under way is not among the finished ones.
    clock.advance(5 * S);
    expect(h.buckets().at(-1)).toMatchObject({ startMs: 30 * S, ready: 0.5 });
  });

  it('keeps at most `keep` buckets, oldest dropped, also across a long idle stretch', () => {
    const clock = new VirtualClock();
    const h = new LoadHistory(clock, { bucketMs: 10 * S, keep: 3 });
    h.record(1, 0);
    clock.advance(55 * S);
    expect(h.buckets().map((x) => x.startMs / S)).toEqual([20, 30, 40]);
    clock.advance(10 * 3600 * S);
    const b = h.buckets();
    expect(b).toHaveLength(3);
    expect(b.at(-1)!.startMs + 10 * S).toBeLessThanOrEqual(clock.now());
    expect(b.at(-1)!.startMs + 20 * S).toBeGreaterThan(clock.now());
  });

  it('aligned: buckets start on the clock’s multiples of the bucket, so replicas close them together', () => {
    const clock = new VirtualClock(1_000_004 * S);
    const h = new LoadHistory(clock, { aligned: true });
    // Started 4 s into the bucket [1_000_000 s, 1_000_010 s): the 4 s before count as no load.
    h.record(2, 0);
    clock.advance(6 * S);
    h.record(0, 0);
    clock.advance(10 * S);
    expect(h.buckets().map((b) => [b.startMs / S, b.mean, b.arrivals])).toEqual([
      [1_000_000, (2 * 6) / 10, 2],
      [1_000_010, 0, 0],
    ]);
  });

  it('refuses a bucket or a keep that makes no sense', () => {
    expect(() => new LoadHistory(new VirtualClock(), { bucketMs: 0 })).toThrow(/bucket/);
    expect(() => new LoadHistory(new VirtualClock(), { keep: 0 })).toThrow(/keep/);
  });
});

describe('LaunchTimes', () => {
  const worker = (createdAt: number, state: Worker['state'] = 'ready'): Worker =>
    ({ name: 'w', createdAt, state }) as Worker;
  it('records launch → first readiness, leaves out workers that were up already, keeps the last 3', () => {
    const t = new LaunchTimes(3);
    t.change({ worker: worker(0), previous: 'starting', reason: 'probe' }, 300 * S);
    t.change({ worker: worker(1000 * S), previous: 'starting', reason: 'adopted' }, 1000.2 * S); // adopted
    t.change({ worker: worker(0), previous: 'not_ready', reason: 'probe' }, 900 * S); // back, not a launch
    t.change({ worker: worker(0, 'starting'), previous: 'provisioning', reason: 'launched' }, 200 * S);
    expect(t.durations()).toEqual([300 * S]);
    for (const d of [60, 70, 80]) t.change({ worker: worker(0), previous: 'starting', reason: 'probe' }, d * S);
    expect(t.durations()).toEqual([60 * S, 70 * S, 80 * S]);
  });
});
