import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/core/clock.js';
import { LoadTracker } from '../../../src/core/load-tracker.js';

const S = 1000;

describe('LoadTracker', () => {
  it('weighs each value by how long it held (0 for 10 s, 6 for 20 s, 3 for 30 s → 3.5)', () => {
    const clock = new VirtualClock();
    const t = new LoadTracker(clock, 60 * S);
    clock.advance(10 * S);
    t.set(6);
    clock.advance(20 * S);
    t.set(3);
    clock.advance(30 * S);
    expect(t.current()).toBe(3);
    expect(t.mean()).toBeCloseTo((0 * 10 + 6 * 20 + 3 * 30) / 60, 12);
  });

  // Timeline: value 0 [0,10), 6 [10,30), 3 [30,…), window 60 s. [time s, expected mean]
  const timeline: [number, number][] = [
    [0, 0], // nothing has elapsed: the current value
    [10, 0],
    [20, (0 * 10 + 6 * 10) / 20], // less than a window since start: divide by elapsed time, 3
    [30, (6 * 20) / 30], // 4
    [60, 3.5],
    [70, (6 * 20 + 3 * 40) / 60], // the zero segment is gone: 4
    [80, (6 * 10 + 3 * 50) / 60], // half of the 6 segment is left: 3.5
    [90, 3], // the 6 segment ends exactly at the window's start
    [500, 3],
  ];
  it.each(timeline)('mean at %i s is %d', (at, want) => {
    const clock = new VirtualClock();
    const t = new LoadTracker(clock, 60 * S);
    clock.setTimer(10 * S, () => t.set(6));
    clock.setTimer(30 * S, () => t.set(3));
    clock.runUntil(at * S);
    expect(t.mean()).toBeCloseTo(want, 12);
  });

  it('evicts segments that left the window', () => {
    const clock = new VirtualClock();
    const t = new LoadTracker(clock, 60 * S);
    for (let i = 1; i <= 100; i++) {
      clock.advance(S);
      t.set(i % 2 === 0 ? 2 : 1);
    }
    // 100 changes, one per second: only those still in the last 60 s are kept.
    expect(t.segmentCount).toBeLessThanOrEqual(61);
    expect(t.mean()).toBeCloseTo(1.5, 12);
    clock.advance(120 * S);
    expect(t.mean()).toBe(2);
    // Only the value 2 still overlaps the window: everything before it was dropped.
    expect(t.segmentCount).toBe(0);
    t.set(5); // closes the 2 segment, which held until now
    expect(t.segmentCount).toBe(1);
    clock.advance(60 * S);
    expect(t.mean()).toBe(5);
    expect(t.segmentCount).toBe(0);
  });

  it('repeated values and changes at the same instant add no segment', () => {
    const clock = new VirtualClock();
    const t = new LoadTracker(clock, 60 * S);
    clock.advance(10 * S);
    t.set(4);
    t.set(4);
    t.set(2); // replaces 4 at the same instant: 4 held for no time
    expect(t.segmentCount).toBe(1);
    clock.advance(10 * S);
    expect(t.mean()).toBe((0 * 10 + 2 * 10) / 20);
  });

  it('grows its ring buffer past the initial size and keeps the sum exact', () => {
    const clock = new VirtualClock();
    const t = new LoadTracker(clock, 1000 * S);
    let area = 0;
    for (let i = 1; i <= 500; i++) {
      clock.advance(S);
      area += ((i - 1) % 7) * 1; // value held during the last second (0 before the first set)
      t.set(i % 7);
    }
    expect(t.segmentCount).toBe(500);
    expect(t.mean()).toBeCloseTo(area / 500, 9);
  });

  /** Drives a tracker through random changes `gap()` ms apart; checks each mean against a brute-force one. */
  function againstBruteForce(
    window: number,
    steps: number,
    gap: (rnd: () => number) => number,
    digitsOrBound: number,
  ): LoadTracker {
    const clock = new VirtualClock();
    const t = new LoadTracker(clock, window);
    const history: { at: number; v: number }[] = [{ at: 0, v: 0 }];
    let seed = 7;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < steps; i++) {
      clock.advance(gap(rnd));
      const v = Math.floor(rnd() * 20);
      t.set(v);
      history.push({ at: clock.now(), v });
      // Only every 97th step is checked: the brute force is O(history).
      if (i % 97 !== 0 && i !== steps - 1) continue;
      const now = clock.now();
      const from = Math.max(0, now - window);
      let area = 0;
      for (let k = 0; k < history.length; k++) {
        const seg = history[k]!;
        const end = history[k + 1]?.at ?? now;
        area += seg.v * Math.max(0, Math.min(end, now) - Math.max(seg.at, from));
      }
      const want = now - from > 0 ? area / (now - from) : v;
      if (Number.isInteger(digitsOrBound)) expect(t.mean()).toBeCloseTo(want, digitsOrBound);
      else expect(Math.abs(t.mean() - want)).toBeLessThanOrEqual(digitsOrBound);
    }
    return t;
  }

  it('agrees exactly with a brute-force mean when changes are at least one resolution apart', () => {
    const window = 30 * S;
    const resolution = window / LoadTracker.RESOLUTION_STEPS;
    againstBruteForce(window, 400, (rnd) => resolution + Math.floor(rnd() * 2000), 9);
  });

  it('keeps at most RESOLUTION_STEPS + 2 segments however fast the value changes, within max/RESOLUTION_STEPS', () => {
    // 6 s window (the panic window): 40,000 changes 0–0.5 ms apart (about 10 s, so segments also leave), about 6 per resolution step.
    const t = againstBruteForce(6 * S, 40_000, (rnd) => rnd() * 0.5, 20 / LoadTracker.RESOLUTION_STEPS + 1e-9);
    expect(t.segmentCount).toBeLessThanOrEqual(LoadTracker.RESOLUTION_STEPS + 2);
    expect(t.segmentCount).toBeGreaterThan(LoadTracker.RESOLUTION_STEPS / 2);
  });

  it('rejects negative values and a non-positive window', () => {
    const clock = new VirtualClock();
    expect(() => new LoadTracker(clock, 0)).toThrow(RangeError);
    expect(() => new LoadTracker(clock, 10).set(-1)).toThrow(RangeError);
  });

  it('withWindow: a 6 s follower sees every change beside the 60 s window', () => {
    const clock = new VirtualClock();
    const t = new LoadTracker(clock, 60 * S);
    clock.advance(50 * S);
    const panic = t.withWindow(6 * S);
    t.set(10); // at 50 s
    clock.advance(3 * S);
    // 60 s window: 0 for 50 s, 10 for 3 s → 30/53; 6 s window (3 s old): 10 the whole time.
    expect(t.mean()).toBeCloseTo(30 / 53, 12);
    expect(panic.mean()).toBe(10);
    t.set(0);
    clock.advance(3 * S);
    expect(panic.mean()).toBe(5); // 10 for 3 s, 0 for 3 s
    clock.advance(3 * S);
    expect(panic.mean()).toBe(0);
    expect(t.mean()).toBeCloseTo(30 / 59, 12);
    expect(panic.current()).toBe(0);
  });
});
