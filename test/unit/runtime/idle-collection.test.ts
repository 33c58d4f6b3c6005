import { getHeapStatistics } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/core/clock.js';
import { fullCollection, IdleCollection } from '../../../src/runtime/idle-collection.js';

const MiB = 2 ** 20;

/** A gateway's counters and resident memory, moved by hand, and the collections run on them. */
function setup(o: { quietMs?: number; minGrowthBytes?: number } = {}) {
  const clock = new VirtualClock();
  const state = { inFlight: 0, started: 0, rss: 40 * MiB };
  const collected: number[] = [];
  const reports: { beforeBytes: number; afterBytes: number; at: number }[] = [];
  const idle = new IdleCollection({
    clock,
    activity: () => ({ inFlight: state.inFlight, started: state.started }),
    residentBytes: () => state.rss,
    collect: () => {
      collected.push(clock.now());
      // As V8: the memory goes back a little at each collection of the spell.
      state.rss -= 10 * MiB;
    },
    quietMs: o.quietMs ?? 5000,
    minGrowthBytes: o.minGrowthBytes ?? 16 * MiB,
    onCollect: ({ beforeBytes, afterBytes }) => reports.push({ beforeBytes, afterBytes, at: clock.now() }),
  });
  idle.start();
  return { clock, state, collected, reports, idle };
}

describe('IdleCollection', () => {
  it('collects three times, 5 s apart, once the gateway has been quiet for quietMs after work', () => {
    const { clock, state, collected, reports, idle } = setup();
    state.inFlight = 300;
    state.started = 300;
    state.rss = 200 * MiB;
    clock.advance(10_000);
    expect(collected).toEqual([]);
    state.inFlight = 0; // the last stream ends just after the check at 10 s saw it running
    clock.advance(4_500);
    expect(collected).toEqual([]);
    clock.advance(500);
    expect(collected).toEqual([15_000]);
    clock.advance(15_000);
    expect(collected).toEqual([15_000, 20_000, 25_000]);
    // What they left is read a gap after the last one, once V8 has unmapped it.
    expect(reports).toEqual([{ beforeBytes: 200 * MiB, afterBytes: 170 * MiB, at: 30_000 }]);
    expect(idle.collections).toBe(3);
    // Memory that grows while quiet is not the gateway's work: nothing more until traffic comes back.
    state.rss = 400 * MiB;
    clock.advance(60_000);
    expect(collected).toHaveLength(3);
  });

  it('calls the spell off when traffic comes back between its collections', () => {
    const { clock, state, collected, reports } = setup();
    state.started = 5;
    state.rss = 200 * MiB;
    clock.advance(6_000); // quiet since the check at 1 s: the first collection at 6 s
    expect(collected).toEqual([6_000]);
    clock.advance(2_000);
    state.inFlight = 1;
    state.started = 6;
    clock.advance(22_000); // busy from 8 s to 30 s: the collections due at 11 and 16 s do not run
    expect(collected).toEqual([6_000]);
    expect(reports).toEqual([]);
    // The next quiet spell starts again from its first collection.
    state.inFlight = 0;
    clock.advance(20_000);
    expect(collected).toEqual([6_000, 35_000, 40_000, 45_000]);
    expect(reports).toEqual([{ beforeBytes: 190 * MiB, afterBytes: 160 * MiB, at: 50_000 }]);
  });

  it('never collects while requests keep coming, even when each is gone before the next check', () => {
    const { clock, state, collected } = setup();
    state.rss = 500 * MiB;
    for (let s = 0; s < 120; s++) {
      state.started++;
      clock.advance(1000);
    }
    expect(collected).toEqual([]);
    clock.advance(5000);
    expect(collected).toHaveLength(1);
  });

  it('leaves a process alone that has grown less than minGrowthBytes since the last collections', () => {
    const { clock, state, collected } = setup();
    state.started = 10;
    state.rss = 40 * MiB + 15 * MiB;
    clock.advance(10_000);
    expect(collected).toEqual([]);
    // The next spell's work adds to what the first left: the growth counts from the last collections.
    state.started = 20;
    state.rss = 40 * MiB + 17 * MiB;
    clock.advance(10_000);
    expect(collected).toHaveLength(1);
  });

  it('does nothing at start before any work, and nothing after stop', () => {
    const { clock, state, collected, idle } = setup();
    state.rss = 400 * MiB;
    clock.advance(60_000);
    expect(collected).toEqual([]);
    state.started = 1;
    idle.stop();
    clock.advance(60_000);
    expect(collected).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('fullCollection', () => {
  it('returns a function that collects the process heap, without exposing gc on the global', () => {
    const gc = fullCollection();
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
    let garbage: object[] | undefined = Array.from({ length: 500_000 }, (_, i) => ({ i, s: `item ${i}` }));
    const held = getHeapStatistics().used_heap_size;
    expect(garbage.length).toBe(500_000);
    garbage = undefined;
    gc();
    expect(held - getHeapStatistics().used_heap_size).toBeGreaterThan(20 * MiB);
  });
});
