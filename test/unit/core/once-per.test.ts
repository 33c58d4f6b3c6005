import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/core/clock.js';
import { OncePer } from '../../../src/core/once-per.js';

describe('OncePer', () => {
  it('interval 60 s: yes at most once per interval of clock time', () => {
    const clock = new VirtualClock();
    const once = new OncePer(clock, 60_000);
    const timeline: [atMs: number, yes: boolean][] = [
      [0, true],
      [10_000, false],
      [59_999, false],
      [60_000, true],
      [61_000, false],
      [200_000, true],
      [200_000, false],
      [259_999, false],
      [260_000, true],
    ];
    const seen = timeline.map(([at]) => {
      clock.runUntil(at);
      return [at, once.take()];
    });
    expect(seen).toEqual(timeline);
  });
});
