import { describe, expect, it } from 'vitest';
import { hitLevel, windowHits } from '../../../../src/sim/plan/work.js';

describe('windowHits: where whole workers must be ready for the work due in a window', () => {
  // Five requests of 10 ms of engine work, one a millisecond from 0 to 4; 2 per worker.
  const arrivals = [0, 1, 2, 3, 4];
  const work = [10, 10, 10, 10, 10];

  it('hitLevel: the largest k with Σ − the 2·(k − 1) largest > (k − 1)·length', () => {
    // 50 > 0: 1; 50 − 20 = 30 > 4: 2; 50 − 40 = 10 > 8: 3; 50 − 60 < 0 ≤ 12: not 4.
    expect(hitLevel(work, 0, 5, 2, 4)).toBe(3);
    // Longer, the same work asks less: 30 > 20 but 10 ≤ 40.
    expect(hitLevel(work, 0, 5, 2, 20)).toBe(2);
    // The largest requests are the ones that may be left past the window's end.
    expect(hitLevel([1, 1, 100], 0, 3, 1, 1)).toBe(2); // 102 − 100 = 2 > 1, 1 ≤ 2
    expect(hitLevel([0, 0], 0, 2, 1, 0)).toBe(0);
  });

  it('a window is shrunk to its first arrival and its last arrival + the wait, and keeps only the requests leased in it', () => {
    const at0 = (hits: ReturnType<typeof windowHits>) => hits.filter((h) => h.startMs === 0);
    expect(at0(windowHits(arrivals, work, { capacity: 2, waitMs: 0, windowsMs: [5] }))).toEqual([
      { startMs: 0, endMs: 4, level: 3 },
    ]);
    // Waits up to 2 ms: only the requests arriving before 5 − 2 must be leased in [0, 5).
    expect(at0(windowHits(arrivals, work, { capacity: 2, waitMs: 2, windowsMs: [5] }))).toEqual([
      { startMs: 0, endMs: 4, level: 2 },
    ]);
    // A window no longer than the wait holds nothing that must be leased in it.
    expect(windowHits(arrivals, work, { capacity: 2, waitMs: 5, windowsMs: [5] })).toEqual([]);
  });
});
