import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../../src/core/clock.js';
import {
  clairvoyantBound,
  coveringBound,
  coveringShape,
  type HitWindow,
  type StepCurve,
} from '../../../../src/sim/plan/bound.js';

/** A curve of whole steps: demand[i] workers over [i, i + 1) (ms). */
const steps = (demand: readonly number[]): StepCurve => ({
  t: demand.map((_, i) => i),
  v: demand,
  endMs: demand.length,
});

/**
 * The least cost by exhaustive search, independent of the layering argument: every step, any
 * number of launches (billed from then, ready D steps later) and any removal of ready workers;
 * workers up at step 0 come free of a launch. The state is (ready, launches still provisioning,
 * windows met). A window [s, e) of level k is met by a step t in it with k ready.
 */
function bruteForce(
  demand: readonly number[],
  D: number,
  floor = 0,
  hits: readonly HitWindow[] = [],
): { cost: number } {
  const need = demand.map((d) => Math.max(floor, d));
  const most = Math.max(...need, ...hits.map((h) => h.level), 0);
  const all = (1 << hits.length) - 1;
  let best = Infinity;
  const memo = new Map<string, number>();
  // Cost of steps t.. given `ready` workers and `pending` launches (remaining steps each), ascending.
  const go = (t: number, ready: number, pending: readonly number[], met = 0): number => {
    if (t === need.length) return met === all ? 0 : Infinity;
    const key = `${t}|${ready}|${pending.join(',')}|${met}`;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    let min = Infinity;
    for (let launch = 0; launch <= most; launch++) {
      // A launch with D = 0 is ready at once.
      const nowReady = ready + (D === 0 ? launch : 0);
      const provisioning = D === 0 ? pending : [...pending, ...Array<number>(launch).fill(D)].sort((a, b) => a - b);
      for (let keep = need[t]!; keep <= nowReady; keep++) {
        const billed = keep + provisioning.length;
        const later = provisioning.map((r) => r - 1);
        const arrived = later.filter((r) => r === 0).length;
        let nowMet = met;
        hits.forEach((h, i) => {
          if (h.startMs <= t && t < h.endMs && keep >= h.level) nowMet |= 1 << i;
        });
        const rest = go(
          t + 1,
          keep + arrived,
          later.filter((r) => r > 0),
          nowMet,
        );
        min = Math.min(min, billed + rest);
      }
    }
    memo.set(key, min);
    return min;
  };
  for (let initial = 0; initial <= most; initial++) best = Math.min(best, go(0, initial, []));
  return { cost: best };
}

const bound = (demand: readonly number[], D: number, floor = 0) =>
  clairvoyantBound(steps(demand), { launchDelayMs: D, floor });

describe('clairvoyantBound: per-unit layering', () => {
  const cases: { label: string; demand: number[]; D: number; floor?: number; cost: number; launches: number }[] = [
    { label: 'nothing needed', demand: [0, 0, 0], D: 2, cost: 0, launches: 0 },
    { label: 'one worker from the start', demand: [1, 1, 1], D: 5, cost: 3, launches: 0 },
    {
      label: 'first need at 4 with D 2: launched at 2',
      demand: [0, 0, 0, 0, 1, 1],
      D: 2,
      cost: 4,
      launches: 1,
    },
    {
      label: 'first need at 1 with D 3: up from 0 (bridged), cheaper than a launch that would be late',
      demand: [0, 1, 1],
      D: 3,
      cost: 3,
      launches: 1,
    },
    { label: 'gap 2 < D 3: bridged', demand: [1, 0, 0, 1], D: 3, cost: 4, launches: 0 },
    { label: 'gap 3 = D 3: bridged (as cheap, one launch fewer)', demand: [1, 0, 0, 0, 1], D: 3, cost: 5, launches: 0 },
    { label: 'gap 4 > D 3: torn down, relaunched', demand: [1, 0, 0, 0, 0, 1], D: 3, cost: 5, launches: 1 },
    {
      label: 'two units: the base bridged, the peak relaunched',
      demand: [2, 1, 0, 0, 0, 0, 2],
      D: 2,
      // unit 1: needed at 0-1 and 6: gap 4 > 2 → 2 + 2 + 1 = 5; unit 2: at 0 and 6, gap 5 → 1 + 2 + 1 = 4
      cost: 9,
      launches: 2,
    },
    {
      label: 'the floor keeps min_workers whatever the demand',
      demand: [0, 0, 3, 0],
      D: 1,
      floor: 1,
      // unit 1: 4; units 2, 3: lead min(2, 1) = 1 + 1 each
      cost: 8,
      launches: 2,
    },
  ];
  it.each(cases)('$label', ({ demand, D, floor, cost, launches }) => {
    const b = bound(demand, D, floor);
    expect(b.workerSeconds * 1000).toBeCloseTo(cost, 9);
    expect(b.launches).toBe(launches);
    expect(bruteForce(demand, D, floor).cost).toBe(cost);
  });

  it('the worked example of the doc comment: 120 worker-seconds bridged, 140 relaunched', () => {
    const curve = (gapEnd: number): StepCurve => ({
      t: [0, 100_000, 110_000, gapEnd, gapEnd + 10_000],
      v: [1, 2, 1, 2, 1],
      endMs: 300_000,
    });
    const base = 300;
    expect(clairvoyantBound(curve(150_000), { launchDelayMs: 60_000 }).workerSeconds - base).toBeCloseTo(120, 9);
    expect(clairvoyantBound(curve(210_000), { launchDelayMs: 60_000 }).workerSeconds - base).toBeCloseTo(140, 9);
    expect(clairvoyantBound(curve(210_000), { launchDelayMs: 60_000 }).launches).toBe(2);
  });

  it('matches the exhaustive search on 150 random curves (length 7, up to 3 workers, D 0-4)', () => {
    const random = seededRandom(7);
    for (let i = 0; i < 150; i++) {
      const demand = Array.from({ length: 7 }, () => Math.floor(random() * 4));
      const D = Math.floor(random() * 5);
      const floor = Math.floor(random() * 2);
      const want = bruteForce(demand, D, floor).cost;
      const got = bound(demand, D, floor).workerSeconds * 1000;
      expect(got, `demand ${demand.join(' ')}, D ${D}, floor ${floor}`).toBeCloseTo(want, 9);
    }
  });

  it('the billed curve integrates to the cost and never drops below the demand', () => {
    const demand = [0, 2, 1, 0, 0, 3, 1, 0, 2, 2];
    const b = bound(demand, 2, 0);
    let area = 0;
    const { t, v, endMs } = b.billed;
    for (let i = 0; i < t.length; i++) area += v[i]! * ((i + 1 < t.length ? t[i + 1]! : endMs) - t[i]!);
    expect(area / 1000).toBeCloseTo(b.workerSeconds, 9);
    const billedAt = (x: number): number => {
      let out = 0;
      for (let i = 0; i < t.length && t[i]! <= x; i++) out = v[i]!;
      return out;
    };
    demand.forEach((d, i) => expect(billedAt(i)).toBeGreaterThanOrEqual(d));
    expect(b.peak).toBe(3);
  });

  it('a negative launch delay or a fractional demand is refused', () => {
    expect(() => bound([1], -1)).toThrow(/launch delay/);
    expect(() => clairvoyantBound({ t: [0], v: [1.5], endMs: 1 }, { launchDelayMs: 1 })).toThrow(/whole workers/);
  });
});

/**
 * One unit's least cost in the relaxation coveringBound solves, by exhaustive search over ready
 * sets Q with whole-number ends on [0, T]: each point i and each segment [i, i + 1] in or out.
 * Q must cover `need` (half-open intervals) and meet each closed window; the cost is |Q| +
 * min(first point of Q, D) + Σ over gaps between Q's pieces min(gap, D).
 */
function unitBruteForce(
  need: readonly [number, number][],
  windows: readonly [number, number][],
  D: number,
  T: number,
): number {
  let best = Infinity;
  const bits = 2 * T + 1;
  for (let mask = 0; mask < 1 << bits; mask++) {
    const point = (i: number): boolean => ((mask >> i) & 1) === 1;
    const seg = (i: number): boolean => ((mask >> (T + 1 + i)) & 1) === 1;
    const inQ = (x: number): boolean =>
      Number.isInteger(x) ? point(x) || (x > 0 && seg(x - 1)) || (x < T && seg(x)) : seg(Math.floor(x));
    if (!need.every(([a, b]) => Array.from({ length: b - a }, (_, i) => seg(a + i)).every(Boolean))) continue;
    if (!windows.every(([s, e]) => Array.from({ length: 2 * (e - s) + 1 }, (_, i) => s + i / 2).some(inQ))) continue;
    // Pieces of Q, scanning half-steps.
    const pieces: [number, number][] = [];
    for (let h = 0; h <= 2 * T; h++) {
      const x = h / 2;
      if (!inQ(x)) continue;
      const last = pieces[pieces.length - 1];
      if (last && last[1] >= x - 0.5) last[1] = x;
      else pieces.push([x, x]);
    }
    if (pieces.length === 0) {
      best = Math.min(best, 0);
      continue;
    }
    let cost = Math.min(pieces[0]![0], D);
    pieces.forEach(([a, b], i) => {
      cost += b - a;
      if (i > 0) cost += Math.min(a - pieces[i - 1]![1], D);
    });
    best = Math.min(best, cost);
  }
  return best;
}

/** Level-k needs of a step demand: the half-open intervals where it is ≥ k. */
function needsOf(demand: readonly number[], k: number): [number, number][] {
  const out: [number, number][] = [];
  demand.forEach((d, i) => {
    if (d < k) return;
    const last = out[out.length - 1];
    if (last && last[1] === i) last[1] = i + 1;
    else out.push([i, i + 1]);
  });
  return out;
}

const hit = (startMs: number, endMs: number, level: number): HitWindow => ({ startMs, endMs, level });

describe('coveringBound: layering with windows each level must be ready in', () => {
  it('with no windows it is the layered schedule', () => {
    const random = seededRandom(3);
    for (let i = 0; i < 50; i++) {
      const demand = Array.from({ length: 8 }, () => Math.floor(random() * 4));
      const D = Math.floor(random() * 5);
      expect(coveringBound(steps(demand), [], { launchDelayMs: D }) * 1000).toBeCloseTo(
        bound(demand, D).workerSeconds * 1000,
        9,
      );
    }
  });

  it.each([
    {
      label: 'one window, nothing else: a point, free at the start',
      demand: [0, 0, 0, 0],
      hits: [hit(0, 2, 1)],
      D: 3,
      cost: 0,
    },
    {
      label: 'one window later: the launch delay (a point launched D before)',
      demand: [0, 0, 0, 0, 0, 0],
      hits: [hit(4, 5, 1)],
      D: 3,
      cost: 3,
    },
    {
      label: 'a window near a need: bridged to it',
      demand: [1, 0, 0, 0, 0, 0, 0, 0],
      // Need [0, 1); window [3, 4]: gap 2 < D 5 bridged, nothing after the last point.
      hits: [hit(3, 4, 1)],
      D: 5,
      cost: 1 + 2,
    },
    {
      label: 'windows far apart: each relaunched',
      demand: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      hits: [hit(4, 4, 1), hit(8, 8, 1)],
      D: 2,
      // need 1, gap 3 → 2, gap 4 → 2.
      cost: 1 + 2 + 2,
    },
    {
      label: 'a level-2 window is a need of level 1 too, met by level 1 s need',
      demand: [1, 1, 1, 1, 1, 1],
      hits: [hit(2, 3, 2)],
      D: 4,
      // level 1: 6; level 2: a point at 2 or 3, lead min(2, 4) = 2.
      cost: 6 + 2,
    },
    {
      label: 'overlapping windows share a point',
      demand: [0, 0, 0, 0, 0, 0, 0, 0],
      hits: [hit(3, 6, 1), hit(5, 7, 1), hit(6, 7, 1)],
      D: 2,
      // one point at 6: lead 2.
      cost: 2,
    },
  ])('$label', ({ demand, hits, D, cost }) => {
    expect(coveringBound(steps(demand), hits, { launchDelayMs: D }) * 1000).toBeCloseTo(cost, 9);
  });

  it('matches an exhaustive search of the relaxation on 300 random units (T 6, up to 4 windows, D 0-4)', () => {
    const random = seededRandom(11);
    const T = 6;
    for (let i = 0; i < 300; i++) {
      const demand = Array.from({ length: T }, () => (random() < 0.3 ? 1 : 0));
      const windows = Array.from({ length: Math.floor(random() * 5) }, (): [number, number] => {
        const s = Math.floor(random() * T);
        return [s, Math.min(T, s + Math.floor(random() * 3))];
      });
      const D = Math.floor(random() * 5);
      const want = unitBruteForce(needsOf(demand, 1), windows, D, T);
      const got =
        coveringBound(
          steps(demand),
          windows.map(([s, e]) => hit(s, e, 1)),
          { launchDelayMs: D },
        ) * 1000;
      expect(got, `demand ${demand.join(' ')}, windows ${JSON.stringify(windows)}, D ${D}`).toBeCloseTo(want, 9);
    }
  });

  it('is never above the cheapest whole-worker schedule found by exhaustive search (150 random cases, 2 levels)', () => {
    const random = seededRandom(5);
    let tighter = 0;
    for (let i = 0; i < 150; i++) {
      const demand = Array.from({ length: 6 }, () => Math.floor(random() * 3));
      const hits = Array.from({ length: Math.floor(random() * 3) }, () => {
        const s = Math.floor(random() * 6);
        return hit(s, Math.min(6, s + 1 + Math.floor(random() * 2)), 1 + Math.floor(random() * 2));
      });
      const D = Math.floor(random() * 4);
      const floor = Math.floor(random() * 2);
      const schedule = bruteForce(demand, D, floor, hits).cost;
      // A step window [s, e) is met by a ready step in s..e − 1: the closed window [s, e − 1].
      const closed = hits.map((h) => hit(h.startMs, h.endMs - 1, h.level));
      const got = coveringBound(steps(demand), closed, { launchDelayMs: D, floor }) * 1000;
      expect(
        got,
        `demand ${demand.join(' ')}, hits ${JSON.stringify(hits)}, D ${D}, floor ${floor}`,
      ).toBeLessThanOrEqual(schedule + 1e-9);
      if (got > bound(demand, D, floor).workerSeconds * 1000 + 1e-9) tighter++;
    }
    // The windows do raise it above the layering alone on some of them.
    expect(tighter).toBeGreaterThan(10);
  });
});

describe('coveringShape: the launches and peak the whole-worker schedule has at least', () => {
  it.each([
    {
      label: 'a window of level 3 over a need of 1 from the start: peak 3, units 2 and 3 launched',
      demand: [1, 1, 1, 1],
      hits: [hit(2, 3, 3)],
      floor: 0,
      launches: 2,
      peak: 3,
    },
    {
      label: 'a window open at the start: up from t = 0, no launch',
      demand: [0, 0, 0],
      hits: [hit(0, 2, 1)],
      floor: 0,
      launches: 0,
      peak: 1,
    },
    {
      label: 'the floor is up from the start: only the unit above it is launched',
      demand: [0, 0, 3, 3],
      hits: [],
      floor: 2,
      launches: 1,
      peak: 3,
    },
    {
      label: 'needs alone: each unit first asked for after 0 is launched',
      demand: [0, 1, 0, 2],
      hits: [],
      floor: 0,
      launches: 2,
      peak: 2,
    },
    {
      label: 'a relaunch between needs is not counted',
      demand: [1, 0, 0, 0, 0, 1],
      hits: [],
      floor: 0,
      launches: 0,
      peak: 1,
    },
  ])('$label', ({ demand, hits, floor, launches, peak }) => {
    expect(coveringShape(steps(demand), hits, floor)).toEqual({ launches, peak });
  });

  it('never has more launches than the layered schedule when there are no windows', () => {
    const random = seededRandom(5);
    for (let i = 0; i < 100; i++) {
      const demand = Array.from({ length: 8 }, () => Math.floor(random() * 4));
      const D = Math.floor(random() * 3);
      const layered = clairvoyantBound(steps(demand), { launchDelayMs: D });
      const shape = coveringShape(steps(demand), []);
      expect(shape.launches).toBeLessThanOrEqual(layered.launches);
      expect(shape.peak).toBe(layered.peak);
    }
  });
});
