import { getHeapStatistics } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/core/clock.js';
import { fullCollection, IdleCollection } from '../../../src/runtime/idle-collection.js';

const MiB = 2 ** 20;

/** A gateway's counters and heap, moved by hand, and the collections run on them. */
function setup(o: { quietMs?: number; minGrowthBytes?: number } = {}) {
  const clock = new VirtualClock();
  const state = { inFlight: 0, started: 0, heap: 40 * MiB };
  const collected: number[] = [];
  const idle = new IdleCollection({
    clock,
    activity: () => ({ inFlight: state.inFlight, started: state.started }),
    heapUsed: () => state.heap,
    collect: () => {
      collected.push(clock.now());
      state.heap = 40 * MiB;
    },
    quietMs: o.quietMs ?? 5000,
    minGrowthBytes: o.minGrowthBytes ?? 16 * MiB,
  });
  idle.start();
  return { clock, state, collected, idle };
}

describe('IdleCollection', () => {
  it('collects once the gateway has been quiet for quietMs after work, and once per quiet spell', () => {
    const { clock, state, collected } = setup();
    state.inFlight = 300;
    state.started = 300;
    state.heap = 200 * MiB;
    clock.advance(10_000);
    expect(collected).toEqual([]);
    state.inFlight = 0; // the last stream ends just after the check at 10 s saw it running
    clock.advance(4_500);
    expect(collected).toEqual([]);
    clock.advance(500);
    expect(collected).toEqual([15_000]);
    state.heap = 100 * MiB; // garbage that appears while quiet is not the gateway's work
    clock.advance(60_000);
    expect(collected).toEqual([15_000]);
  });

  it('never collects while requests keep coming, even when each is gone before the next check', () => {
    const { clock, state, collected } = setup();
    state.heap = 500 * MiB;
    for (let s = 0; s < 120; s++) {
      state.started++;
      clock.advance(1000);
    }
    expect(collected).toEqual([]);
    clock.advance(6000);
    expect(collected).toHaveLength(1);
  });

  it('leaves a heap alone that has grown less than minGrowthBytes since the last collection', () => {
    const { clock, state, collected } = setup();
    state.started = 10;
    state.heap = 40 * MiB + 15 * MiB;
    clock.advance(10_000);
    expect(collected).toEqual([]);
    // The next spell's work adds to what the first left: the growth counts from the last collection.
    state.started = 20;
    state.heap = 40 * MiB + 17 * MiB;
    clock.advance(10_000);
    expect(collected).toHaveLength(1);
  });

  it('does nothing at start before any work, and nothing after stop', () => {
    const { clock, state, collected, idle } = setup();
    state.heap = 400 * MiB;
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
