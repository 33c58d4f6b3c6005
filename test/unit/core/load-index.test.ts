import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { seededRandom, VirtualClock } from '../../../src/core/clock.js';
import { load, WorkerPool } from '../../../src/core/pool.js';
import type { Worker } from '../../../src/core/types.js';

/** What the index must agree with: the same questions answered by scanning every worker. */
function bruteForce(pool: WorkerPool) {
  const ready = pool.list().filter((w) => w.state === 'ready');
  const room = ready.filter((w) => load(w) < w.capacity);
  const lowest = room.reduce<number>((m, w) => Math.min(m, load(w) / w.capacity), Infinity);
  return {
    size: room.length,
    room: new Set(room),
    readyCount: ready.length,
    total: ready.reduce((n, w) => n + load(w), 0),
    // Capped at capacity: the other replicas' share may push a worker past it.
    min: ready.length ? Math.min(...ready.map((w) => Math.min(load(w), w.capacity))) : 0,
    max: ready.length ? Math.max(...ready.map((w) => Math.min(load(w), w.capacity))) : 0,
    minLoad: ready.length ? Math.min(...ready.map((w) => Math.min(load(w), w.capacity) / w.capacity)) : 0,
    maxLoad: ready.length ? Math.max(...ready.map((w) => Math.min(load(w), w.capacity) / w.capacity)) : 0,
    leastLoaded: new Set(room.filter((w) => load(w) / w.capacity === lowest)),
  };
}

type Op =
  | { kind: 'add'; capacity: number }
  | { kind: 'acquire' | 'release' | 'flap' | 'remove'; at: number }
  | { kind: 'remote'; at: number; n: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), capacity: fc.constantFrom(1, 2, 3, 6) }),
  fc.record({ kind: fc.constantFrom('acquire' as const, 'release' as const), at: fc.nat() }),
  fc.record({ kind: fc.constantFrom('acquire' as const, 'release' as const), at: fc.nat() }),
  fc.record({ kind: fc.constantFrom('flap' as const, 'remove' as const), at: fc.nat() }),
  // The other replicas' in flight on a worker, published about once a second: any jump.
  fc.record({ kind: fc.constant('remote' as const), at: fc.nat(), n: fc.nat({ max: 8 }) }),
);

describe('LoadIndex (WorkerPool.loads)', () => {
  it('answers like a full scan after any sequence of joins, leaves, acquires and releases', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const pool = new WorkerPool(new VirtualClock());
        const random = seededRandom(1);
        let n = 0;
        for (const o of ops) {
          const live = pool.list().filter((w) => w.state !== 'terminating');
          const w: Worker | undefined = o.kind === 'add' ? undefined : live[o.at % Math.max(1, live.length)];
          if (o.kind === 'add') pool.add(`w${n++}`, o.capacity, 'ready');
          else if (!w) continue;
          else if (o.kind === 'acquire' && pool.loads.has(w)) pool.acquire(w);
          else if (o.kind === 'release') pool.release(w);
          else if (o.kind === 'flap') pool.setState(w.name, w.state === 'ready' ? 'not_ready' : 'ready', 'flap');
          else if (o.kind === 'remove') pool.setState(w.name, 'terminating', 'remove');
          else if (o.kind === 'remote') pool.setRemoteInFlight(w.name, o.n);

          const want = bruteForce(pool);
          const got = pool.loads;
          expect(got.size).toBe(want.size);
          expect(got.readyCount).toBe(want.readyCount);
          expect(got.totalInFlight).toBe(want.total);
          expect(got.minInFlight).toBe(want.min);
          expect(got.maxInFlight).toBe(want.max);
          expect(got.minLoad).toBe(want.minLoad);
          expect(got.maxLoad).toBe(want.maxLoad);
          const listed = new Set(Array.from({ length: got.size }, (_, i) => got.at(i)));
          expect(listed).toEqual(want.room);
          for (const x of pool.list()) expect(got.has(x)).toBe(want.room.has(x));
          const least = got.leastLoaded(random);
          if (want.size === 0) expect(least).toBeUndefined();
          else expect(want.leastLoaded.has(least!)).toBe(true);
        }
      }),
      { seed: 20240601, numRuns: 300 },
    );
  });

  it('draws among tied groups of different capacities in proportion to their size', () => {
    // 1/3 ties 2/6: a, b (capacity 3, one in flight) and c (capacity 6, two in flight) each ~1/3.
    const pool = new WorkerPool(new VirtualClock());
    for (const [name, cap, load] of [
      ['a', 3, 1],
      ['b', 3, 1],
      ['c', 6, 2],
      ['d', 6, 5],
    ] as const) {
      const w = pool.add(name, cap, 'ready');
      for (let i = 0; i < load; i++) pool.acquire(w);
    }
    const random = seededRandom(9);
    const counts: Record<string, number> = {};
    for (let i = 0; i < 3000; i++) {
      const w = pool.loads.leastLoaded(random)!;
      counts[w.name] = (counts[w.name] ?? 0) + 1;
    }
    expect(Object.keys(counts).sort()).toEqual(['a', 'b', 'c']);
    for (const name of ['a', 'b', 'c']) expect(counts[name]).toBeGreaterThan(850);
  });
});
