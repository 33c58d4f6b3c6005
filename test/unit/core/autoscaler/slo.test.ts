import { describe, expect, it } from 'vitest';
import { burstExcess, sustainedRise, weightedQuantile } from '../../../../src/core/autoscaler/history-readings.js';
import { fitServiceModel } from '../../../../src/core/autoscaler/service-model.js';
import { SloPolicy, estimate } from '../../../../src/core/autoscaler/slo.js';
import type { ScaleSnapshot } from '../../../../src/core/autoscaler/types.js';
import type { LoadBucket } from '../../../../src/core/load-history.js';
import { scaleSnapshot } from '../../../fakes/scale-snapshot.js';

const S = 1000;
const BUCKET = 10 * S;

/**
 * `minutes` of 10 s buckets of a steady load on `workers` workers whose service time follows
 * S(b) = a0 + a1·b (b in flight per worker): the mean in flight per worker is the fixed point
 * b = (λ/r)·S(b), as an engine under that load would settle at. `peakOver` lifts each peak.
 */
function regime(o: {
  startMs?: number;
  minutes: number;
  rate: number;
  workers: number;
  a0?: number;
  a1?: number;
  peakOver?: number;
  /** Every answer is streamed, its first token this long (s) after it took a slot; unset: none streamed. */
  firstTokenS?: number;
}): LoadBucket[] {
  const { rate, workers: r, a0 = 2.6, a1 = 0.13, peakOver = 0, firstTokenS } = o;
  const perWorker = rate / r;
  const b = (perWorker * a0) / (1 - perWorker * a1);
  const start = o.startMs ?? 0;
  return Array.from({ length: o.minutes * 6 }, (_, i) => ({
    startMs: start + i * BUCKET,
    peak: r * b + peakOver,
    mean: r * b,
    peakWaiting: 0,
    meanWaiting: 0,
    ready: r,
    arrivals: rate * 10,
    departures: rate * 10,
    abandoned: 0,
    firstTokens: firstTokenS === undefined ? 0 : rate * 10,
    firstTokenMs: firstTokenS === undefined ? 0 : rate * 10 * firstTokenS * S,
    late: 0,
  }));
}

/** A snapshot with `history`, `workers` ready, capacity 30, launches of `launchS` if given. */
function snap(history: LoadBucket[], workers: number, extra: Partial<ScaleSnapshot> & { launchS?: number } = {}) {
  const { launchS, ...rest } = extra;
  return {
    ...scaleSnapshot({ mean: 0, workers: { ready: workers }, max: 20, delayS: 300 }),
    history,
    historyBucketMs: BUCKET,
    waiting: 0,
    ...(launchS === undefined ? {} : { launchDurationsMs: [launchS * S] }),
    ...rest,
  } satisfies ScaleSnapshot;
}

describe('weightedQuantile', () => {
  it.each([
    {
      label: 'equal weights: the 99th of 100 values',
      pairs: [...Array(100).keys()].map((v) => [v + 1, 1]),
      q: 0.99,
      want: 99,
    },
    {
      label: 'a heavy value dominates',
      pairs: [
        [1, 1],
        [5, 98],
        [9, 1],
      ],
      q: 0.99,
      want: 5,
    },
    {
      label: 'the tail holds 2% of the weight',
      pairs: [
        [1, 98],
        [9, 2],
      ],
      q: 0.99,
      want: 9,
    },
    {
      label: 'no weight: the largest value',
      pairs: [
        [3, 0],
        [7, 0],
      ],
      q: 0.5,
      want: 7,
    },
  ] as { label: string; pairs: [number, number][]; q: number; want: number }[])('$label', ({ pairs, q, want }) => {
    expect(weightedQuantile(pairs, q)).toBe(want);
  });
});

describe('burstExcess: the load 99% of requests arrived into, above the load just before', () => {
  it('bursts of 200 every 5 minutes over a quiet base: ≈ 200 (they are half the requests)', () => {
    const h = regime({ minutes: 60, rate: 0.5, workers: 5, peakOver: 0 });
    for (let i = 20; i < h.length; i += 30) h[i] = { ...h[i]!, peak: h[i]!.mean + 200, arrivals: 200 };
    expect(burstExcess(h, 30)).toBeCloseTo(200, 0);
  });

  it('one such burst in an hour of 5 req/s (under 1% of the requests): not counted', () => {
    const h = regime({ minutes: 60, rate: 5, workers: 2, peakOver: 10 });
    h[100] = { ...h[100]!, peak: h[100]!.mean + 200, arrivals: 150 };
    expect(burstExcess(h, 30)).toBeCloseTo(10, 0);
  });

  it.each([
    // Three 10 s spikes in 150 flat buckets of 50 arrivals. The highest is set aside (a burst
    // counts over the history when it recurs); the other two's 100 arrivals are 1.4% of the
    // rest, spread between the spike's mean (+10) and its peak (+40) in quarters of 12.5.
    { label: 'a spike’s arrivals saw loads between its mean and its peak, not all the peak', over: 10, want: 25 },
    { label: 'a spike whose mean is its peak (a level shift): the peak', over: 40, want: 40 },
  ])('$label', ({ over, want }) => {
    const h: LoadBucket[] = Array.from({ length: 151 }, (_, i) => ({
      startMs: i * BUCKET,
      peak: 20,
      mean: 20,
      peakWaiting: 0,
      meanWaiting: 0,
      ready: 2,
      arrivals: 50,
      departures: 50,
      abandoned: 0,
      firstTokens: 0,
      firstTokenMs: 0,
      late: 0,
    }));
    for (const i of [40, 80, 120]) h[i] = { ...h[i]!, mean: 20 + over, peak: 60 };
    expect(burstExcess(h, 30)).toBeCloseTo(want, 6);
  });

  it.each([
    // One 10 s spike of 400 arrivals, +200 at its peak, in 20 minutes of 5 req/s on 2 workers.
    { label: 'a lone spike, while it lasts (in the last minute): counted', at: 115, want: 200 },
    { label: 'the same spike once it has passed (over a minute ago): not counted', at: 100, want: 10 },
    { label: 'a second spike like it later: recurring, counted after it has passed', at: [40, 100], want: 200 },
  ])('$label', ({ at, want }) => {
    const h = regime({ minutes: 20, rate: 5, workers: 2, peakOver: 10 });
    for (const i of [at].flat()) h[i] = { ...h[i]!, peak: h[i]!.mean + 200, arrivals: 400 };
    expect(burstExcess(h, 30)).toBeCloseTo(want, 0);
  });

  it('a backlog carried from bucket to bucket is not new load; a peak counts at most ready·C + arrivals', () => {
    const h = regime({ minutes: 10, rate: 5, workers: 1, peakOver: 5 });
    // A minute of waiting requests piling up: each bucket opens on the previous one's backlog.
    for (let i = 30; i < 36; i++) h[i] = { ...h[i]!, peak: 300 + 20 * i, meanWaiting: 100 };
    // The first of them is new load, but no more than the slots and what arrived in it.
    expect(burstExcess(h, 30)).toBeLessThanOrEqual(30 + 50);
  });
});

describe('sustainedRise: the steepest rise of the rate within a launch delay that held', () => {
  /** 20 minutes at 10 req/s, 10 at `to`, 20 at 10 again, on 3 workers (4 while at `to`). */
  const step = (to: number): LoadBucket[] => [
    ...regime({ minutes: 20, rate: 10, workers: 3 }),
    ...regime({ startMs: 20 * 60 * S, minutes: 10, rate: to, workers: 4 }),
    ...regime({ startMs: 30 * 60 * S, minutes: 20, rate: 10, workers: 3 }),
  ];

  const stepRise = (4800 - 3000 - 4 * Math.sqrt(7800)) / 300;

  it('a step from 10 to 16 req/s, still within a window of it: 1,800 more requests in 300 s, less 4 deviations of noise', () => {
    // The steepest window ends 5 minutes into the step (bucket 150); 30 buckets later it has passed.
    expect(sustainedRise(step(16).slice(0, 180), BUCKET, 300 * S)).toBeCloseTo(stepRise, 9);
  });

  it('a lone step, a window after it: nothing (the rate window shows what stayed; nothing else rose)', () => {
    expect(sustainedRise(step(16).slice(0, 181), BUCKET, 300 * S)).toBe(0);
    expect(sustainedRise(step(16), BUCKET, 300 * S)).toBe(0);
  });

  it('a ramp (10 to 40 req/s over 40 minutes) rises in every window along it: never lone while it climbs', () => {
    const ramp = Array.from({ length: 40 }, (_, m) =>
      regime({ startMs: m * 60 * S, minutes: 1, rate: 10 + (30 * m) / 40, workers: 8 }),
    ).flat();
    const flat = regime({ startMs: 40 * 60 * S, minutes: 20, rate: 40, workers: 8 });
    const h = [
      ...regime({ minutes: 10, rate: 10, workers: 3 }).map((b) => ({ ...b, startMs: b.startMs - 10 * 60 * S })),
      ...ramp,
      ...flat,
    ];
    for (let minutes = 20; minutes <= 50; minutes++) {
      expect(sustainedRise(h.slice(0, minutes * 6), BUCKET, 300 * S), `after ${minutes} minutes`).toBeGreaterThan(0);
    }
  });

  it('a step that is not alone (another rise, 10 to 14 req/s, later in the hour): the steepest, for the whole history', () => {
    const h = [
      ...step(16),
      ...regime({ startMs: 50 * 60 * S, minutes: 10, rate: 14, workers: 4 }),
      ...regime({ startMs: 60 * 60 * S, minutes: 20, rate: 10, workers: 3 }),
    ];
    expect(sustainedRise(h, BUCKET, 300 * S)).toBeCloseTo(stepRise, 9);
    // The later rise alone, once passed, would count for nothing: it is the other that keeps it.
    expect(sustainedRise(h.slice(120 + 60 + 60), BUCKET, 300 * S)).toBe(0);
  });

  it.each([
    { label: 'flat arrivals of 1 req/s', h: () => regime({ minutes: 60, rate: 1, workers: 1 }) },
    { label: 'flat arrivals of 20 req/s', h: () => regime({ minutes: 60, rate: 20, workers: 6 }) },
    { label: 'a step within the noise (10 to 10.5 req/s)', h: () => step(10.5) },
    { label: 'the step, in a history shorter than two windows', h: () => step(16).slice(-59) },
    {
      label: 'a batch of 600 requests in 10 s: within half a window, the burst excess’s',
      h: () => regime({ minutes: 60, rate: 1, workers: 1 }).map((b, i) => (i === 200 ? { ...b, arrivals: 600 } : b)),
    },
  ])('nothing rises: $label', ({ h }) => {
    expect(sustainedRise(h(), BUCKET, 300 * S)).toBe(0);
  });
});

describe('fitServiceModel: S(b) = a0 + a1·b from the buckets', () => {
  it('two regimes of a known line (3 workers, then 2): recovers it', () => {
    const h = [
      ...regime({ minutes: 20, rate: 5.3, workers: 3 }),
      ...regime({ startMs: 20 * 60 * S, minutes: 20, rate: 5.3, workers: 2 }),
    ];
    const m = fitServiceModel(h, BUCKET)!;
    // Within 1%: the history's first minute counts its requests in flight as risen from none.
    expect(m.a1).toBeCloseTo(0.13, 2);
    expect(m.a0).toBeCloseTo(2.6, 1);
  });

  it('one regime (b never moved): the slope is the prior, a third of the service time', () => {
    const h = regime({ minutes: 20, rate: 5.3, workers: 3 });
    const m = fitServiceModel(h, BUCKET)!;
    const b = h[0]!.mean / 3;
    const s = m.a0 + m.a1 * b;
    expect(m.a1 * b).toBeCloseTo(s * 0.3, 6);
  });

  it('a minute whose requests have not turned over (a backlog building) is left out; none at all → undefined', () => {
    expect(fitServiceModel([], BUCKET)).toBeUndefined();
    const stuck = regime({ minutes: 1, rate: 5, workers: 1 }).map((b) => ({
      ...b,
      mean: 30,
      departures: 1,
      arrivals: 1,
    }));
    expect(fitServiceModel(stuck, BUCKET)).toBeUndefined();
  });
});

describe('fitServiceModel on a cold start’s backlog: what a worker serves, not what the queue sheds', () => {
  // One worker, every slot taken, a backlog it cannot drain: a request's true time on it is
  // S(30) = 40 s, so it serves 0.75 req/s; 3.6 req/s arrive, and past the 60 s queue timeout
  // about 2.85 req/s give up waiting. Six minutes of 10 s buckets.
  const backlog = (minutes: number): LoadBucket[] =>
    Array.from({ length: minutes * 6 }, (_, i) => ({
      startMs: i * BUCKET,
      peak: 230,
      mean: 230,
      peakWaiting: 200,
      meanWaiting: 200,
      ready: 1,
      arrivals: 36,
      departures: 7.5 + 28.5,
      abandoned: 28.5,
      firstTokens: 0,
      firstTokenMs: 0,
      late: 0,
    }));

  it('the requests that timed out are no throughput: S(30) is the 40 s a request spends on the worker', () => {
    const m = fitServiceModel(backlog(6), BUCKET)!;
    // Within 6%: the history's first minute counts its requests in flight as risen from none.
    expect(m.a0 + m.a1 * 30).toBeGreaterThan(37.5);
    expect(m.a0 + m.a1 * 30).toBeLessThanOrEqual(40);
    // Counted as served, they would make it 30 / 3.6 = 8.3 s and one worker look like 3.6 req/s.
    const asServed = backlog(6).map((b) => ({ ...b, abandoned: 0 }));
    const wrong = fitServiceModel(asServed, BUCKET)!;
    expect(wrong.a0 + wrong.a1 * 30).toBeLessThan(9);
  });

  it('sized on it: the workers 3.6 req/s need at 40 s a request over 30 slots (4.8 at full load), not 2', () => {
    const need = (h: LoadBucket[]) => estimate(snap(h, 1, { waiting: 200, queueLength: 230 }), 1).need;
    expect(need(backlog(6))).toBeGreaterThanOrEqual(5);
    expect(need(backlog(6).map((b) => ({ ...b, abandoned: 0 })))).toBeLessThanOrEqual(2);
  });

  it('a worker landing on the backlog fills its slots at once: that minute counts them half started, not as a service time twice too long', () => {
    // Minute 0: one worker at 30 in flight (as above); minute 1: a second lands at its start and
    // takes 30 more at once; each serves 7.5 per 10 s once its first 40 s have passed.
    const h = backlog(2).map((b, i) =>
      i < 6 ? b : { ...b, mean: 260, ready: 2, departures: 28.5 + (i >= 10 ? 15 : 7.5), abandoned: 28.5 },
    );
    const m = fitServiceModel(h.slice(0, 12), BUCKET)!;
    expect(m.a0 + m.a1 * 30).toBeGreaterThan(30);
    expect(m.a0 + m.a1 * 30).toBeLessThan(50);
  });
});

describe('fitServiceModel after a saturated start: minutes at the cap are one load, not two halves', () => {
  // 8 workers, every slot taken for 7 minutes (b = 30, 100 waiting) while a request's time on a
  // worker reads 37 or 44 s by the minute; then the backlog is gone and 3.8 req/s run on the
  // line S(b) = 2 + 1.45·b (b = 3.05). The minute after the drain counts the backlog's last
  // departures against its fall in flight, so it reads S = 12.2 s: the line through it and the
  // saturated minutes has a slope of about 1.
  const saturated = (minute: number, s: number): LoadBucket[] =>
    Array.from({ length: 6 }, (_, k) => ({
      startMs: (minute * 6 + k) * BUCKET,
      peak: 340,
      mean: 340,
      peakWaiting: 100,
      meanWaiting: 100,
      ready: 8,
      arrivals: 38,
      departures: (240 * 10) / s,
      abandoned: 0,
      firstTokens: 0,
      firstTokenMs: 0,
      late: 0,
    }));
  const history = [
    ...[37, 44, 37, 44, 37, 44, 37].flatMap((s, minute) => saturated(minute, s)),
    ...regime({ startMs: 7 * 60 * S, minutes: 1, rate: 3.8, workers: 8, a0: 2, a1: 1.45 }),
  ];

  it('the slope runs from the light minute to the saturated ones (split by weight inside the tie at b = 30, it read their 37-to-44 s noise: a1 = 0.41, a0 = 25 s)', () => {
    const m = fitServiceModel(history, BUCKET)!;
    expect(m.a1).toBeGreaterThan(0.9);
    expect(m.a1).toBeLessThan(1.2);
    expect(m.a0).toBeLessThan(10);
  });
});

describe('estimate: the fewest workers that hold the load and its peaks within the SLO', () => {
  // The conv trace's shape: S(b) = 2.6 + 0.13·b s, capacity 30, 1 s SLO.
  const cases: {
    label: string;
    rate: number;
    over: number;
    workers: number;
    want: number;
    a0?: number;
    a1?: number;
  }[] = [
    { label: '5.3 req/s: one worker would carry 44 (> 30 slots) → 2', rate: 5.3, over: 0, workers: 3, want: 2 },
    { label: '2 req/s → 1', rate: 2, over: 0, workers: 2, want: 1 },
    {
      label: '5.3 req/s with peaks 60 above the mean → 3 (on 2: 81 > 60 slots, which drain 15 more within 1 s)',
      rate: 5.3,
      over: 60,
      workers: 3,
      want: 3,
    },
    {
      label:
        '5.3 req/s with peaks 90 above the mean → 4: the slots over the mean drain at the full-load pace S(30), not the mean load’s S(b) (by which 3 would do)',
      rate: 5.3,
      over: 90,
      workers: 4,
      want: 4,
    },
    { label: '16 req/s → 4 (on 3 each would carry 45 > 30 slots)', rate: 16, over: 0, workers: 8, want: 4 },
    {
      label: 'a prefill-heavy load (S = 1.5 + 1.7·b) of 3.8 req/s → 7, held under 95% utilisation (6.5 workers)',
      rate: 3.8,
      over: 0,
      workers: 8,
      want: 7,
      a0: 1.5,
      a1: 1.7,
    },
    { label: 'no requests at all → 0', rate: 0, over: 0, workers: 2, want: 0 },
  ];
  it.each(cases)('$label', ({ rate, over, workers, want, a0, a1 }) => {
    const line = { ...(a0 === undefined ? {} : { a0 }), ...(a1 === undefined ? {} : { a1 }) };
    const h = [
      ...regime({ minutes: 20, rate, workers, peakOver: over, ...line }),
      // A second regime pins the slope.
      ...regime({ startMs: 20 * 60 * S, minutes: 20, rate, workers: workers + 1, peakOver: over, ...line }),
    ];
    expect(estimate(snap(h, workers + 1), 1).need).toBe(want);
  });

  it('a flat history on 8 workers of a prefill-heavy load (S = 1.1 + 1.75·b, 4 req/s): the scale-down takes the slope at its most and keeps 8 (7 would be all prefills); a third of S from the load would shed', () => {
    const h = regime({ minutes: 5, rate: 4, workers: 8, a0: 1.1, a1: 1.75 });
    const e = estimate(snap(h, 8), 1);
    expect(e.needDown).toBeGreaterThanOrEqual(8);
    expect(new SloPolicy().decide(snap(h, 8), 300 * S).desired).toBe(8);
    // The central guess alone (what the scale-down used to read) fits the load on far fewer.
    expect(e.need).toBeLessThanOrEqual(6);
  });

  it('sparse traffic: a worker is needed while a request came within the last launch delay, none after (ski rental)', () => {
    // 20 minutes at 0.05 req/s, then quiet buckets: the 5-minute rate stays above 0 throughout.
    const busy = regime({ minutes: 20, rate: 0.05, workers: 1 });
    const quiet = (n: number): LoadBucket[] =>
      Array.from({ length: n }, (_, i) => ({
        ...busy.at(-1)!,
        startMs: (120 + i) * BUCKET,
        arrivals: 0,
        departures: 0,
      }));
    // Launches take 60 s: 3 quiet buckets (30 s) still need the worker, 6 (60 s) do not.
    expect(estimate(snap([...busy, ...quiet(3)], 1, { launchS: 60 }), 1).need).toBe(1);
    expect(estimate(snap([...busy, ...quiet(6)], 1, { launchS: 60 }), 1)).toMatchObject({
      need: 0,
      why: 'no requests in the last 60 s',
    });
    // Launches take 5 minutes: the same 60 s quiet keeps it.
    expect(estimate(snap([...busy, ...quiet(6)], 1, { launchS: 300 }), 1).need).toBe(1);
  });
});

describe('estimate: ready for a step of the rate as steep as the hour has shown', () => {
  /** 10 req/s for 20 minutes, then each step of `steps` for 10 minutes and 10 req/s for 10 after it. */
  const stepping = (...steps: number[]): LoadBucket[] => [
    ...regime({ minutes: 20, rate: 10, workers: 3 }),
    ...steps.flatMap((rate, i) => [
      ...regime({ startMs: (20 + 20 * i) * 60 * S, minutes: 10, rate, workers: 4 }),
      ...regime({ startMs: (30 + 20 * i) * 60 * S, minutes: 10, rate: 10, workers: 3 }),
    ]),
  ];

  it('10 req/s on 3 workers (2 hold it, 3 with room to spare), after steps to 16 and to 14: sized for 10 + 4.8 req/s (3, and 4)', () => {
    const flat = regime({ minutes: 50, rate: 10, workers: 3 });
    expect(estimate(snap(flat, 3, { launchS: 300 }), 1)).toMatchObject({ need: 2, needDown: 3 });
    const e = estimate(snap(stepping(16, 14), 3, { launchS: 300 }), 1);
    expect(e).toMatchObject({ need: 3, needDown: 4 });
    expect(e.why).toMatch(/^10\.00 req\/s \+ a rise of 4\.82,/);
  });

  it('after a lone step to 16, passed (a flash crowd): no rise planned for, so 3 with room to spare where the steps above keep 4', () => {
    const e = estimate(snap(stepping(16), 3, { launchS: 300 }), 1);
    expect(e).toMatchObject({ need: 3, needDown: 3 });
    expect(e.why).toMatch(/^10\.00 req\/s, S/);
  });
});

describe('SloPolicy on a virtual clock', () => {
  /** Decisions every 30 s from `from` for `minutes`, the history growing by a steady regime. */
  function timeline(o: {
    policy: SloPolicy;
    workers: number;
    rate: number;
    minutes: number;
    launchS?: number;
    max?: number;
    waiting?: (t: number) => number;
    /** The arrival rate of the bucket starting at `t` (ms), if not `rate`. */
    rateAt?: (t: number) => number | undefined;
    /** How far the peak of the bucket starting at `t` (ms) stands above its mean. */
    peakOver?: (t: number) => number;
    /** Requests that waited past the SLO in the bucket starting at `t` (ms). */
    lateAt?: (t: number) => number;
    /** Every answer streamed, its first token this long (s) after it took a slot. */
    firstTokenS?: number;
  }): [number, number][] {
    const changes: [number, number][] = [];
    let workers = o.workers;
    const h: LoadBucket[] = [];
    for (let t = 30 * S; t <= o.minutes * 60 * S; t += 30 * S) {
      while (h.length * BUCKET < t) {
        const startMs = h.length * BUCKET;
        const peakOver = o.peakOver?.(startMs) ?? 0;
        const rate = o.rateAt?.(startMs) ?? o.rate;
        const bucket = regime({
          startMs,
          minutes: 1,
          rate,
          workers,
          peakOver,
          ...(o.firstTokenS === undefined ? {} : { firstTokenS: o.firstTokenS }),
        })[0]!;
        const late = o.lateAt?.(startMs) ?? 0;
        h.push(late > 0 ? { ...bucket, peakWaiting: late, meanWaiting: late / 10, late } : bucket);
      }
      const d = o.policy.decide(
        snap(h, workers, {
          waiting: o.waiting?.(t) ?? 0,
          maxWorkers: o.max ?? 20,
          ...(o.launchS === undefined ? {} : { launchDurationsMs: [o.launchS * S] }),
        }),
        t,
      );
      if (d.desired !== workers) changes.push([t / S, (workers = d.desired)]);
    }
    return changes;
  }

  it('a lull of two launch delays between spikes sheds at the pace of any scale-down, not a worker a decision: the next spike meets 3 workers, not 1', () => {
    // 15 req/s on 4 workers for 10 minutes, silence from 600 to 780 s, 15 req/s again.
    const rateAt = (t: number): number => (t >= 600 * S && t < 780 * S ? 0 : 15);
    const changes = timeline({ policy: new SloPolicy(), workers: 4, rate: 15, minutes: 15, launchS: 60, rateAt });
    // A launch delay after the last arrival the lull needs no worker: one goes, and the next
    // would wait for the pace (scale-downs two minutes apart), which the lull does not last.
    expect(changes.filter(([at]) => at <= 780)).toEqual([[720, 3]]);
  });

  it('a fleet idle for the whole rate window sheds a worker at each decision', () => {
    const rateAt = (t: number): number => (t >= 600 * S ? 0 : 15);
    const changes = timeline({ policy: new SloPolicy(), workers: 8, rate: 15, minutes: 20, launchS: 60, rateAt });
    // Paced while the last 5 minutes still hold arrivals, then a worker at each decision.
    expect(changes).toEqual([
      [720, 7],
      [840, 6],
      [900, 5],
      [930, 4],
      [960, 3],
      [990, 2],
      [1020, 1],
    ]);
  });

  it('warm at 5 with a load 2 hold, b never moved: kept while the history is young (the data cannot tell a decode-bound engine, which 2 hold, from a prefill-bound one, each request in flight adding its own work: 4 would not); from 30 minutes, a launch delay after the last cautious need, one at a time to 2', () => {
    expect(timeline({ policy: new SloPolicy(), workers: 5, rate: 5.3, minutes: 45 })).toEqual([
      [2100, 4],
      [2220, 3],
      [2340, 2],
    ]);
  });

  it.each([
    {
      label:
        'first tokens at 0.15 s (a batching engine whose load is its prefills, which 2 hold): down from 5 minutes, one at a time to 2',
      firstTokenS: 0.15,
      want: [
        [300, 4],
        [420, 3],
        [540, 2],
      ],
    },
    {
      label:
        'first tokens at 2.5 s (most of a request’s time is prefill): kept while the history is young, as without them',
      firstTokenS: 2.5,
      want: [
        [2100, 4],
        [2220, 3],
        [2340, 2],
      ],
    },
  ])('warm at 5 with a load 2 hold, b never moved, every answer streamed, $label', ({ firstTokenS, want }) => {
    expect(timeline({ policy: new SloPolicy(), workers: 5, rate: 5.3, minutes: 45, firstTokenS })).toEqual(want);
  });

  it('the reason says what a young history’s scale-down reads the slope as, and the streams’ first token it read it from', () => {
    const flat = (minutes: number, firstTokenS?: number) =>
      regime({ minutes, rate: 5.3, workers: 5, ...(firstTokenS === undefined ? {} : { firstTokenS }) });
    const a1Read = (why: string): number => Number(/a scale-down reads a1 as ([0-9.]+)/.exec(why)?.[1]);
    // Streams at 0.15 s: the ordinary prior (0.282 here), which is more than their first token.
    const streamed = estimate(snap(flat(10, 0.15), 5), 1).why;
    expect(streamed).toMatch(/; history under 30 min: a scale-down reads a1 as 0\.282, streams' first token 0\.15 s$/);
    // Whole answers: processor sharing, S̄/(1 + b̄), and no first token to name.
    const whole = estimate(snap(flat(10), 5), 1).why;
    expect(whole).toMatch(/; history under 30 min: a scale-down reads a1 as [0-9.]+$/);
    expect(a1Read(whole)).toBeGreaterThan(2 * a1Read(streamed));
    expect(estimate(snap(flat(31, 0.15), 5), 1).why).not.toContain('history under');
  });

  /** 10 req/s for the first 2 minutes, then 5.3: b moved, so the history pins the slope. */
  const fell = (t: number) => (t < 120 * S ? 10 : undefined);

  it('warm at 5 with a load 2 hold after a fall from 10 req/s: no scale-down within a launch delay (prior 300 s) of the last decision that needed 5, then one worker at a time, 2 minutes apart, down to 2', () => {
    const changes = timeline({ policy: new SloPolicy(), workers: 5, rate: 5.3, minutes: 30, rateAt: fell });
    expect(changes).toEqual([
      [510, 4],
      [630, 3],
      [750, 2],
    ]);
  });

  describe('a lone spike over a 5.3 req/s load on 2 workers, then the same load: the spike buys nothing it would keep', () => {
    // Decisions every 30 s; 40 requests wait over the slots at the decisions in `waitAt` (s), the
    // spike's bucket peaks 80 above its mean; launches have been seen to take `launchS`. By
    // 1260 s about 6,600 requests have arrived: a p99 allows 66 late. `lateBefore` requests
    // late at 600 s on the same 2 workers count against it.
    it.each([
      {
        label: 'cleared within the SLO (seen at one decision): no launch',
        waitAt: [1230],
        lateBefore: 40,
        launchS: 300,
        want: [],
      },
      {
        label: 'outlasting the SLO, within the p99 budget (40 waiting, nothing late before): no launch',
        waitAt: [1230, 1260],
        lateBefore: 0,
        launchS: 300,
        want: [],
      },
      {
        label:
          'outlasting the SLO, over the budget (40 + 40 late), 300 s launches: up, then back to 2 a launch delay later, once the minutes on 3 workers have pinned the slope (the cautious one keeps 3 till then)',
        waitAt: [1230, 1260],
        lateBefore: 40,
        launchS: 300,
        want: [
          [1260, 3],
          [1740, 2],
        ],
      },
      {
        label: 'the same with 60 s launches: back to 2 sooner',
        waitAt: [1230, 1260],
        lateBefore: 40,
        launchS: 60,
        want: [
          [1260, 3],
          [1500, 2],
        ],
      },
    ])('$label', ({ waitAt, lateBefore, launchS, want }) => {
      const changes = timeline({
        policy: new SloPolicy(),
        workers: 2,
        rate: 5.3,
        minutes: 40,
        launchS,
        waiting: (t) => (waitAt.includes(t / S) ? 40 : 0),
        rateAt: (t) => (t >= 1200 * S && t < 1230 * S ? 10 : undefined),
        peakOver: (t) => (t >= 1220 * S && t < 1230 * S ? 80 : 0),
        lateAt: (t) => (t === 600 * S ? lateBefore : 0),
      });
      expect(changes).toEqual(want);
    });
  });

  it('having seen launches take 60 s, the same descent starts as soon as the history allows', () => {
    const changes = timeline({
      policy: new SloPolicy(),
      workers: 5,
      rate: 5.3,
      minutes: 30,
      launchS: 60,
      rateAt: fell,
    });
    expect(changes.map(([, w]) => w)).toEqual([4, 3, 2]);
    expect(changes[0]![0]).toBe(300);
  });

  it('requests waiting now, still over the slots one SLO later: up at once to what the load needs (urgent says so between evaluations)', () => {
    const p = new SloPolicy();
    const h = [
      ...regime({ minutes: 20, rate: 5.3, workers: 2 }),
      ...regime({ startMs: 1200 * S, minutes: 10, rate: 12, workers: 2 }),
    ];
    const s = snap(h, 2, { waiting: 40, queueLength: 100 });
    expect(p.urgent(s, 1800 * S)).toBeUndefined();
    expect(p.urgent(s, 1802 * S)?.desired).toBeGreaterThanOrEqual(3);
    expect(new SloPolicy().urgent(snap(h, 2), 1800 * S)).toBeUndefined();
  });

  describe('peaks 60 above a 5.3 req/s mean on 2 workers (need 3; the mean alone fits 2, whose 60 slots take in 15 waiting within the 1 s SLO)', () => {
    // 30 minutes of 5.3 req/s: 9,540 arrivals, of which a p99 allows 95 late.
    const history = (late: number) => {
      const h = [
        ...regime({ minutes: 20, rate: 5.3, workers: 3, peakOver: 60 }),
        ...regime({ startMs: 1200 * S, minutes: 10, rate: 5.3, workers: 2, peakOver: 60 }),
      ];
      h[125] = { ...h[125]!, peakWaiting: late, meanWaiting: late / 10, late };
      return h;
    };
    it.each([
      // waiting now; requests late earlier on 2 workers; the answer of the second of two urgent
      // checks 2 s apart; two evaluations 30 s apart (the first sees the backlog begin, the
      // second sees it outlast the SLO)
      [0, 100, undefined, [2, 2]],
      [10, 100, undefined, [2, 2]],
      [15, 100, undefined, [2, 2]],
      [16, 0, undefined, [2, 2]],
      [16, 80, 3, [2, 3]],
      [40, 50, undefined, [2, 2]],
      [40, 60, 3, [2, 3]],
    ] as const)('%i waiting, %i late before: urgent → %s, decisions → %j', (waiting, lateBefore, urgent, decisions) => {
      const h = history(lateBefore);
      const p = new SloPolicy();
      expect(p.urgent(snap(h, 2, { waiting, queueLength: 21 + waiting }), 1800 * S)).toBeUndefined();
      expect(p.urgent(snap(h, 2, { waiting, queueLength: 21 + waiting }), 1802 * S)?.desired).toBe(urgent);
      const q = new SloPolicy();
      const got = [1800, 1830].map((t) => q.decide(snap(h, 2, { waiting, queueLength: 21 + waiting }), t * S).desired);
      expect(got).toEqual(decisions);
    });

    it('requests that waited within the SLO are not late: 80 waiting-seconds of them earlier, 16 waiting now, launch nothing (80 late would)', () => {
      const h = history(0);
      h[125] = { ...h[125]!, peakWaiting: 80, meanWaiting: 8, late: 0 };
      const s = snap(h, 2, { waiting: 16, queueLength: 37 });
      const p = new SloPolicy();
      expect(p.urgent(s, 1800 * S)).toBeUndefined();
      expect(p.urgent(s, 1802 * S)).toBeUndefined();
      const q = new SloPolicy();
      expect([1800, 1830].map((t) => q.decide(s, t * S).desired)).toEqual([2, 2]);
    });
  });

  describe('a backlog carried from a smaller fleet (a cold start): launched for only when the ready workers cannot drain it within a launch delay', () => {
    // 20 minutes on 2 workers with peaks 60 over the mean (the model needs 3), then 5 minutes
    // on `started` workers that fell behind (requests waited in every bucket; they served 4
    // req/s each while `rate` arrived), then 2 workers ready for 20 s with 160 waiting: a backlog
    // that lasted, so the decision at 1520 s launches unless the backlog is transient. 2 workers
    // drain it at 60 / S(30) = 9.2 req/s less the arrivals.
    const history = (rate: number, started: 1 | 2) => {
      const arriving = (b: LoadBucket): LoadBucket => ({ ...b, arrivals: rate * 10 });
      return [
        ...regime({ minutes: 20, rate: 5.3, workers: 2, peakOver: 60 }),
        ...regime({ startMs: 1200 * S, minutes: 5, rate: 4 * started, workers: started }).map((b) =>
          backlogged(arriving(b), 100, 80),
        ),
        ...regime({ startMs: 1500 * S, minutes: 1, rate: 8, workers: 2 })
          .slice(0, 2)
          .map((b) => backlogged(arriving(b), 160, 150)),
      ];
    };
    it.each([
      {
        label: '5.3 req/s on 1 worker, now 2: the 160 drain in 41 s, before a 300 s launch lands: no launch',
        rate: 5.3,
        started: 1,
        want: 2,
      },
      {
        label:
          '9.5 req/s, risen from 5.3 within 5 minutes: 2 workers never drain it: up to 4, ready for another such rise',
        rate: 9.5,
        started: 1,
        want: 4,
      },
      {
        label: 'the same 5.3 req/s backlog begun on these 2 workers is theirs: up to 3',
        rate: 5.3,
        started: 2,
        want: 3,
      },
    ] as const)('$label', ({ rate, started, want }) => {
      const h = history(rate, started);
      const p = new SloPolicy();
      const d = p.decide(snap(h, 2, { waiting: 160, queueLength: 220 }), 1520 * S);
      expect(d.desired, d.reason).toBe(want);
    });
  });

  /** The bucket with requests waiting on top of its load in flight. */
  const backlogged = (b: LoadBucket, peakWaiting: number, meanWaiting: number): LoadBucket => ({
    ...b,
    peak: b.peak + peakWaiting,
    mean: b.mean + meanWaiting,
    peakWaiting,
    meanWaiting,
  });

  it('a rise the model sees coming (the mean outgrows the slots): up on the second decision that says so, with no request waiting yet', () => {
    const h = [
      ...regime({ minutes: 20, rate: 5.3, workers: 2 }),
      ...regime({ startMs: 1200 * S, minutes: 5, rate: 10, workers: 2 }),
    ];
    const p = new SloPolicy();
    const first = p.decide(snap(h, 2), 1500 * S);
    expect(first.desired).toBe(2);
    expect(p.decide(snap(h, 2), 1530 * S).desired).toBeGreaterThanOrEqual(3);
  });

  /**
   * A prefill-bound load (S = 0.5 + 1.6·b; the fit reads about 0.9 + 1.5·b) on 7
   * workers, its arrivals over the last 5 minutes at `rate` (the fleet's finishes not yet risen
   * with them). The load before rose from 3.75 to 4.25 req/s, a rise within the counts' noise.
   */
  const prefillBound = (rate: number): LoadBucket[] =>
    [
      ...regime({ minutes: 20, rate: 3.75, workers: 7, a0: 0.5, a1: 1.6 }),
      ...regime({ startMs: 1200 * S, minutes: 10, rate: 4.25, workers: 7, a0: 0.5, a1: 1.6 }),
    ].map((b, i) => (i >= 150 ? { ...b, arrivals: rate * 10 } : b));
  it.each([
    // 4.5 req/s: prefills would take 0.96 of each worker's time: held, with less than the 5% kept spare in sizing.
    [4.5, 'kept: the model alone does not buy the sizing margin', 7, 7],
    // 5 req/s: 1.06 of each worker's time, more than 7 can hold.
    [5, 'up: the model sees the fleet saturate', 8, Infinity],
  ] as const)(
    'a prefill-bound load rising to %s req/s on 7 workers, nothing waiting: %s',
    (rate, _label, least, most) => {
      const p = new SloPolicy();
      p.decide(snap(prefillBound(rate), 7), 1770 * S);
      const d = p.decide(snap(prefillBound(rate), 7), 1800 * S);
      expect(d.desired, d.reason).toBeGreaterThanOrEqual(least);
      expect(d.desired, d.reason).toBeLessThanOrEqual(most);
    },
  );

  it('bursts every 10 minutes, once two gaps are seen: the workers go as soon as a burst is served and come back a launch and a decision before the next may come', () => {
    // 0.5 req/s with bursts of 150 requests at 300, 900, ... s; launches take 60 s.
    const bursts = [300, 900, 1500, 2100, 2700, 3300];
    const h: LoadBucket[] = [];
    const changes: [number, number][] = [];
    const reasons: string[] = [];
    const p = new SloPolicy();
    let workers = 5;
    for (let t = 30 * S; t <= 3600 * S; t += 30 * S) {
      while (h.length * BUCKET < t) {
        const startMs = h.length * BUCKET;
        const base = regime({ startMs, minutes: 1, rate: 0.5, workers })[0]!;
        h.push(bursts.includes(startMs / S) ? { ...base, arrivals: 150, departures: 150, peak: 150 } : base);
      }
      const d = p.decide(snap(h, workers, { launchS: 60 }), t);
      if (d.desired !== workers) {
        changes.push([t / S, (workers = d.desired)]);
        reasons.push(d.reason);
      }
    }
    // From the fourth burst (2,100 s) on, the next may come 540 s after the last (the gaps seen
    // are all 600 s): the burst's workers go once its three buckets have passed, and are
    // launched 90 s (a launch and a decision) before the next may come.
    const after = changes.filter(([at]) => at > 2100);
    expect(after.filter(([, n]) => n === 1).map(([at]) => at)).toEqual([2160, 2760, 3360]);
    const upAfter = (at: number): [number, number] | undefined => after.find(([t, n]) => t > at && n > 1);
    expect(upAfter(2160)?.[0]).toBe(2550);
    expect(upAfter(2760)?.[0]).toBe(3150);
    const workersAt = (t: number): number => changes.filter(([at]) => at <= t).at(-1)![1];
    expect(workersAt(2700)).toBeGreaterThanOrEqual(4);
    expect(workersAt(3300)).toBeGreaterThanOrEqual(4);
    expect(reasons[changes.findIndex(([at]) => at === 2550)]).toMatch(/the next burst may come in 90 s/);
    expect(reasons[changes.findIndex(([at]) => at === 2760)]).toMatch(
      /the last burst served, the next not before 480 s from now/,
    );
  });

  it('more than max_workers needed: clamped, and the decision says what it wanted', () => {
    const h = [
      ...regime({ minutes: 20, rate: 20, workers: 8 }),
      ...regime({ startMs: 1200 * S, minutes: 10, rate: 20, workers: 9 }),
    ];
    const p = new SloPolicy();
    p.decide(snap(h, 2, { maxWorkers: 2, waiting: 5 }), 1770 * S);
    const d = p.decide(snap(h, 2, { maxWorkers: 2, waiting: 5 }), 1800 * S);
    expect(d.desired).toBe(2);
    expect(d.wanted).toBeGreaterThan(2);
    expect(d.reason).toMatch(/clamped to max_workers 2/);
  });

  it('refuses an SLO that is not a number >= 0', () => {
    expect(() => new SloPolicy({ queueWaitSlo: -1 })).toThrow(/queue_wait_slo/);
    expect(() => new SloPolicy({ queueWaitSlo: 'fast' })).toThrow(/queue_wait_slo/);
  });
});
