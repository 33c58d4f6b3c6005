import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../../src/core/clock.js';
import { clairvoyantBound, type StepCurve } from '../../../../src/sim/plan/bound.js';

/** A curve of whole steps: demand[i] workers over [i, i + 1) (ms). */
const steps = (demand: readonly number[]): StepCurve => ({
  t: demand.map((_, i) => i),
  v: demand,
  endMs: demand.length,
});

/**
 * The least cost by exhaustive search, independent of the layering argument: every step, any
 * number of launches (billed from then, ready D steps later) and any removal of ready workers;
 * workers up at step 0 come free of a launch. The state is (ready, launches still provisioning).
 */
function bruteForce(demand: readonly number[], D: number, floor = 0): { cost: number } {
  const need = demand.map((d) => Math.max(floor, d));
  const most = Math.max(...need, 0);
  let best = Infinity;
  const memo = new Map<string, number>();
  // Cost of steps t.. given `ready` workers and `pending` launches (remaining steps each), ascending.
  const go = (t: number, ready: number, pending: readonly number[]): number => {
    if (t === need.length) return 0;
    const key = `${t}|${ready}|${pending.join(',')}`;
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
        const rest = go(
          t + 1,
          keep + arrived,
          later.filter((r) => r > 0),
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
