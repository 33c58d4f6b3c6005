import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../../src/runtime/system-clock.js';

// Node's setTimeout fires after 1 ms when asked for more than 2^31 − 1 ms (about 24.8 days).
const MAX = 2 ** 31 - 1;

describe('systemClock.setTimer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  // [delay ms, checks: [advance to, fired yet]]
  const table: [number, [number, boolean][]][] = [
    [
      1000,
      [
        [999, false],
        [1000, true],
      ],
    ],
    [
      MAX,
      [
        [MAX - 1, false],
        [MAX, true],
      ],
    ],
    [
      2 * MAX + 5, // a 50-day timeout: chained, not cut to 1 ms
      [
        [1, false],
        [MAX, false],
        [2 * MAX + 4, false],
        [2 * MAX + 5, true],
      ],
    ],
  ];
  it.each(table)('a %d ms timer fires exactly then', (delay, checks) => {
    const fired = vi.fn();
    systemClock.setTimer(delay, fired);
    let at = 0;
    for (const [to, want] of checks) {
      vi.advanceTimersByTime(to - at);
      at = to;
      expect(fired).toHaveBeenCalledTimes(want ? 1 : 0);
    }
  });

  it('cancel stops a chained timer at any stage', () => {
    const fired = vi.fn();
    const t = systemClock.setTimer(2 * MAX + 5, fired);
    vi.advanceTimersByTime(MAX + 10); // past the first link
    t.cancel();
    vi.advanceTimersByTime(2 * MAX);
    expect(fired).not.toHaveBeenCalled();
  });
});
