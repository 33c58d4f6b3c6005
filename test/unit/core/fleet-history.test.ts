import { describe, expect, it } from 'vitest';
import { SloPolicy, estimate } from '../../../src/core/autoscaler/slo.js';
import type { ScaleSnapshot } from '../../../src/core/autoscaler/types.js';
import { VirtualClock, seededRandom } from '../../../src/core/clock.js';
import type { ReplicaLoad } from '../../../src/core/coordination.js';
import { FleetHistory, PUBLISHED_BUCKETS } from '../../../src/core/fleet-history.js';
import { LoadHistory, type LoadBucket } from '../../../src/core/load-history.js';
import { LoadTracker } from '../../../src/core/load-tracker.js';
import { WorkerPool } from '../../../src/core/pool.js';
import { GlobalQueue, Replica } from '../../../src/core/replica.js';
import { DrivenCoordinator } from '../../fakes/coordinator.js';
import { scaleSnapshot } from '../../fakes/scale-snapshot.js';

const S = 1000;
const BUCKET = 10 * S;

/** A finished bucket starting at `startS` seconds; the rest of its fields from `f`. */
const bucket = (startS: number, f: Partial<LoadBucket> = {}): LoadBucket => ({
  startMs: startS * S,
  peak: 0,
  mean: 0,
  peakWaiting: 0,
  meanWaiting: 0,
  ready: 2,
  arrivals: 0,
  departures: 0,
  abandoned: 0,
  firstTokens: 0,
  firstTokenMs: 0,
  late: 0,
  ...f,
});

/** This replica's own history, as the test sets it. */
const own = (buckets: LoadBucket[]) => ({ bucketMs: BUCKET, buckets: () => buckets });

describe('FleetHistory', () => {
  it('sums the replicas’ buckets by start time: counts and means add up, peaks add up, ready workers are one fleet', () => {
    const h = new FleetHistory(
      own([
        bucket(0, {
          peak: 4,
          mean: 2,
          arrivals: 10,
          departures: 8,
          abandoned: 2,
          firstTokens: 5,
          firstTokenMs: 900,
          late: 1,
        }),
        bucket(10, { peak: 3, mean: 1.5 }),
      ]),
    );
    h.setRemote([
      {
        replica: 'b',
        buckets: [
          bucket(0, {
            peak: 6,
            mean: 3,
            peakWaiting: 1,
            meanWaiting: 0.2,
            arrivals: 12,
            departures: 9,
            abandoned: 1,
            firstTokens: 2,
            firstTokenMs: 300,
            late: 3,
            ready: 1.5,
          }),
          bucket(10, { peak: 1, mean: 0.5, arrivals: 1 }),
        ],
      },
      { replica: 'c', buckets: [bucket(10, { peak: 2, mean: 1, arrivals: 3, departures: 3 })] },
    ]);
    expect(h.buckets()).toEqual([
      bucket(0, {
        peak: 10,
        mean: 5,
        peakWaiting: 1,
        meanWaiting: 0.2,
        arrivals: 22,
        departures: 17,
        abandoned: 3,
        firstTokens: 7,
        firstTokenMs: 1200,
        late: 4,
        ready: 2,
      }),
      bucket(10, { peak: 6, mean: 3, arrivals: 4, departures: 3, ready: 2 }),
    ]);
  });

  it('keeps what each replica published across writes; a replica gone drops out with its past', () => {
    const mine = [bucket(0, { arrivals: 1 }), bucket(10, { arrivals: 1 })];
    const h = new FleetHistory(own(mine));
    // Every write carries the last few buckets again: each counts once.
    h.setRemote([{ replica: 'b', buckets: [bucket(0, { arrivals: 5 })] }]);
    h.setRemote([{ replica: 'b', buckets: [bucket(0, { arrivals: 5 }), bucket(10, { arrivals: 6 })] }]);
    expect(h.buckets().map((b) => b.arrivals)).toEqual([6, 7]);
    // b's lease ran out: its load key, and its share of the history, are gone.
    h.setRemote([]);
    expect(h.buckets().map((b) => b.arrivals)).toEqual([1, 1]);
  });

  it.each([
    // [what the others published last (their newest bucket, s), the newest bucket the fleet's history shows (s)]
    ['every replica sent the newest', [20, 20], 20],
    ['one has not sent the bucket that just closed: it waits for it', [20, 10], 10],
    ['one is two buckets behind (its writes fail): it holds nothing back', [20, 0], 20],
  ])('%s', (_what, newest, shown) => {
    const upTo = (s: number) => Array.from({ length: s / 10 + 1 }, (_, i) => bucket(i * 10, { arrivals: 1 }));
    const h = new FleetHistory(own(upTo(20)));
    h.setRemote(newest.map((n, i) => ({ replica: `r${i}`, buckets: upTo(n) })));
    expect(h.buckets().at(-1)!.startMs).toBe(shown * S);
  });

  it('keeps at most `keep` buckets, the newest', () => {
    const h = new FleetHistory(own([bucket(0), bucket(10), bucket(20)]), 2);
    h.setRemote([{ replica: 'b', buckets: [bucket(0), bucket(10), bucket(20)] }]);
    expect(h.buckets().map((b) => b.startMs / S)).toEqual([10, 20]);
  });

  it('alone, it is this replica’s history itself', () => {
    const mine = [bucket(0, { arrivals: 3 })];
    expect(new FleetHistory(own(mine)).buckets()).toBe(mine);
  });
});

/** A DrivenCoordinator whose published load reaches its peer at once, as etcd's watch delivers it. */
class Linked extends DrivenCoordinator {
  peer: Linked | undefined;
  constructor(readonly id: string) {
    super();
  }

  override publishLoad(load: Omit<ReplicaLoad, 'replica'>): void {
    super.publishLoad(load);
    this.peer?.others([{ replica: this.id, ...load }]);
  }
}

/** One gateway replica on `clock`: its aligned load history, the fleet's view of it, and its Replica. */
function replica(clock: VirtualClock, c: Linked) {
  const history = new LoadHistory(clock, { aligned: true });
  const fleetHistory = new FleetHistory(history);
  const r = new Replica({
    coordinator: c,
    pool: new WorkerPool(clock),
    fleet: { target: 2, takeOver: () => Promise.resolve(), standDown() {}, launchEnded() {} },
    autoscaler: { start() {}, stop() {}, demand() {} },
    scale: { min: 1, max: 20 },
    queue: new GlobalQueue(new LoadTracker(clock, 60_000)),
    history: fleetHistory,
    waiting: () => 0,
    wake() {},
    clock,
  });
  return { history, fleetHistory, replica: r };
}

interface Visit {
  readonly atMs: number;
  readonly replica: 0 | 1;
  readonly delta: 1 | -1;
}

/**
 * Twelve minutes of requests spread by an L4 balancer over two replicas at random: 3 req/s,
 * then 14 req/s from minute 6, and a burst of 150 at minute 9; each takes 2–4 s.
 */
function traffic(seed: number): Visit[] {
  const random = seededRandom(seed);
  const visits: Visit[] = [];
  const request = (atMs: number) => {
    const r = random() < 0.5 ? 0 : 1;
    visits.push({ atMs, replica: r, delta: 1 }, { atMs: atMs + 2 * S + random() * 2 * S, replica: r, delta: -1 });
  };
  for (let t = 0; t < 12 * 60 * S;) {
    t += (-Math.log(1 - random()) * S) / (t < 6 * 60 * S ? 3 : 14);
    request(t);
  }
  for (let i = 0; i < 150; i++) request(9 * 60 * S + i * 20);
  return visits.sort((a, b) => a.atMs - b.atMs);
}

describe('the leader’s autoscaler sees the whole fleet’s load', () => {
  it('two replicas sharing the load: the leader decides as one gateway with all of it does', async () => {
    const startMs = 1_700_000_003_217; // a wall-clock start, off the bucket grid
    const clock = new VirtualClock(startMs);
    const [ca, cb] = [new Linked('a'), new Linked('b')];
    ca.peer = cb;
    cb.peer = ca;
    const a = replica(clock, ca);
    const b = replica(clock, cb);
    await Promise.all([a.replica.start(), b.replica.start()]);
    ca.lead(1);
    // The yardstick: one gateway that sees every request.
    const single = new LoadHistory(clock, { aligned: true });
    for (const h of [a.history, b.history, single]) h.setReady(2);

    const C = 30;
    const queue = [0, 0];
    const waiting = (q: number) => Math.max(0, q - C);
    const snapshot = (history: readonly LoadBucket[]): ScaleSnapshot => ({
      ...scaleSnapshot({ mean: 0, queue: queue[0]! + queue[1]!, workers: { ready: 2 }, max: 20, capacity: C }),
      history,
      historyBucketMs: BUCKET,
      waiting: waiting(queue[0]!) + waiting(queue[1]!),
    });
    const leader = new SloPolicy();
    const lone = new SloPolicy();
    const unaware = new SloPolicy();
    const decisions: [number, number, number, number, number][] = [];
    // The autoscaler evaluates mid-bucket, as its interval falls.
    let nextDecision = startMs + 15 * S;
    const decideUpTo = (t: number) => {
      for (; nextDecision <= t; nextDecision += BUCKET) {
        clock.advance(nextDecision - clock.now());
        const now = clock.now();
        const fleet = a.fleetHistory.buckets();
        const alone = single.buckets();
        expect(fleet.map((x) => x.startMs)).toEqual(alone.map((x) => x.startMs));
        // Counts and time-weighted means add up exactly; a peak sum is at least the peak of the sum.
        fleet.forEach((x, i) => {
          const y = alone[i]!;
          expect([x.arrivals, x.departures, x.ready]).toEqual([y.arrivals, y.departures, y.ready]);
          expect(x.mean).toBeCloseTo(y.mean, 9);
          expect(x.meanWaiting).toBeCloseTo(y.meanWaiting, 9);
          expect(x.peak).toBeGreaterThanOrEqual(y.peak);
        });
        decisions.push([
          leader.decide(snapshot(fleet), now).desired,
          lone.decide(snapshot(alone), now).desired,
          unaware.decide(snapshot(a.history.buckets()), now).desired,
          estimate(snapshot(alone), lone.sloS).need,
          estimate(snapshot(a.history.buckets()), unaware.sloS).need,
        ]);
      }
    };
    for (const v of traffic(7)) {
      const at = startMs + v.atMs;
      decideUpTo(at);
      clock.advance(at - clock.now());
      queue[v.replica]! += v.delta;
      const q = queue[v.replica]!;
      [a, b][v.replica]!.history.record(q, waiting(q));
      single.record(queue[0]! + queue[1]!, waiting(queue[0]!) + waiting(queue[1]!));
    }
    decideUpTo(clock.now() + BUCKET);

    expect(decisions.length).toBeGreaterThan(60);
    // The leader's decisions are the lone gateway's, but where the replicas' summed peaks (at
    // least the peak of the sum) tip a burst estimate: then never fewer workers, and rarely.
    const differ = decisions.filter(([l, s]) => l !== s);
    expect(differ.every(([l, s]) => l > s)).toBe(true);
    expect(differ.length).toBeLessThanOrEqual(decisions.length * 0.05);
    // The load changes what it needs (1 worker at first, more later)...
    expect(new Set(decisions.map(([, , , need]) => need)).size).toBeGreaterThan(1);
    // ...and a leader reading only its own share would size the fleet for half of it.
    expect(decisions.some(([, , , need, unawareNeed]) => unawareNeed < need)).toBe(true);
    // Each replica published its newest buckets with its load.
    expect(cb.loads.at(-1)!.buckets!.length).toBe(PUBLISHED_BUCKETS);
  });
});
