import { describe, expect, it } from 'vitest';
import { RecentKeys } from '../../../../src/core/balancer/recent-keys.js';

describe('RecentKeys', () => {
  /** A timeline on a table of 4 slots: [key asked about, seen before?] (slot = key mod 4). */
  const timeline: [number, boolean][] = [
    [7, false], // slot 3 takes 7
    [7, true],
    [9, false], // slot 1 takes 9
    [7, true],
    [11, false], // slot 3: 11 pushes 7 out
    [7, false], // ... and 7 pushes 11 out
    [11, false],
    [0, false], // key 0 in slot 0, which starts empty
    [0, true],
    [4, false], // slot 0 again: 4 pushes 0 out
    [0xffffffff, false], // slot 3
    [0xffffffff, true],
  ];
  it('remembers a key until another takes its slot', () => {
    const recent = new RecentKeys(4);
    timeline.forEach(([key, seen], i) => expect(recent.seen(key), `step ${i}: ${key}`).toBe(seen));
  });

  it('remembers every one of distinct keys that fill distinct slots', () => {
    const recent = new RecentKeys(1 << 12);
    for (let k = 0; k < 1 << 12; k++) expect(recent.seen(k * 7919)).toBe(false); // 7919 is odd: a permutation of the slots
    for (let k = 0; k < 1 << 12; k++) expect(recent.seen(k * 7919)).toBe(true);
  });

  it.each([0, 3, 1.5, -4])('rejects %s slots (not a power of two)', (slots) => {
    expect(() => new RecentKeys(slots)).toThrow(/power of two/);
  });
});
