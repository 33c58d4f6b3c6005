/**
 * The contract every balancer policy keeps, run against each one in the registry:
 * only ready workers with room, capacity never exceeded under a random timeline, and equal
 * workers share the traffic about evenly.
 */
import { describe, expect, it } from 'vitest';
import type { Lease } from '../../../../src/core/admission.js';
import { seededRandom, VirtualClock } from '../../../../src/core/clock.js';
import { BALANCER_NAMES, createBalancer } from '../../../../src/core/balancer/registry.js';
import type { Worker } from '../../../../src/core/types.js';
import {
  CHI2_4DF_0_001,
  chiSquareUniform,
  policyBench,
  testAdmission,
  type WorkerSpec,
} from '../../../helpers/balancer.js';

const SYSTEM = 'You are a helpful assistant who answers briefly and politely. '.repeat(8);
/** Contexts the policies see: no signal, a session key, a prompt with a shared system prompt. */
const contexts = (i: number) => [
  {},
  { sessionKey: `user-${i % 7}` },
  { promptText: `${SYSTEM}question ${i % 5}: ${'why '.repeat(40 + (i % 9))}` },
];

describe.each(BALANCER_NAMES)('%s', (name) => {
  it('says whether it reads the prompt text, as its picks do (the edges build the text only then)', () => {
    const policy = createBalancer(name, { clock: new VirtualClock() });
    const { pool } = policyBench(policy, [
      ['a', 0, 4],
      ['b', 1, 4],
    ]);
    let read = false;
    const random = seededRandom(3);
    for (let i = 0; i < 20; i++) {
      const text = `${SYSTEM}question ${i % 5}`;
      const ctx = {
        random,
        get promptText() {
          read = true;
          return text;
        },
      };
      policy.pick(pool.loads, ctx);
    }
    expect(read).toBe(policy.readsPrompt === true);
  });

  it('picks only ready workers with a free slot, and none when no worker has room', () => {
    /** [workers, names that may be picked] */
    const table: [WorkerSpec[], string[]][] = [
      [[], []],
      [
        [
          ['a', 0, 2, 'draining'],
          ['b', 2, 2],
          ['c', 1, 2],
          ['d', 0, 2, 'not_ready'],
        ],
        ['c'],
      ],
      [
        [
          ['a', 2, 2],
          ['b', 0, 3, 'starting'],
        ],
        [],
      ],
    ];
    for (const [spec, allowed] of table) {
      const policy = createBalancer(name, { clock: new VirtualClock() });
      const { pool } = policyBench(policy, spec);
      const random = seededRandom(5);
      for (let i = 0; i < 50; i++) {
        for (const ctx of contexts(i)) {
          const w = policy.pick(pool.loads, { ...ctx, random });
          if (allowed.length === 0) expect(w).toBeUndefined();
          else expect(allowed).toContain(w?.name);
        }
      }
    }
  });

  it('never exceeds a worker capacity over a random timeline of arrivals, releases and state changes', async () => {
    const clock = new VirtualClock();
    const policy = createBalancer(name, { clock });
    const { pool, workers } = policyBench(policy, [
      ['a', 0, 3],
      ['b', 0, 5],
      ['c', 0, 4],
      ['d', 0, 4, 'not_ready'],
    ]);
    const random = seededRandom(11);
    const admission = testAdmission(pool, clock, { balancer: policy, random, maxQueueLength: 1000 });
    const leases: Lease[] = [];
    let served = 0;
    for (let step = 0; step < 2000; step++) {
      const r = random();
      if (r < 0.5) {
        const ctx = contexts(step)[step % 3]!;
        void admission.acquire({ ctx, timeoutMs: Infinity }).then((l) => {
          served++;
          leases.push(l);
        });
      } else if (r < 0.95 && leases.length > 0) {
        leases.splice(Math.floor(random() * leases.length), 1)[0]!.release();
      } else {
        // A worker flaps between ready and not_ready.
        const w = workers[Math.floor(random() * workers.length)]!;
        pool.setState(w.name, w.state === 'ready' ? 'not_ready' : 'ready', 'flap');
        admission.wake();
      }
      await Promise.resolve();
      // The policy on its own (Admission also guards against a bad pick): only a worker with room.
      const own = policy.pick(pool.loads, { ...contexts(step)[step % 3], random });
      if (own === undefined) expect(pool.loads.size).toBe(0);
      else expect(pool.loads.has(own)).toBe(true);
      for (const w of workers) expect(w.inFlight).toBeLessThanOrEqual(w.capacity);
      for (const l of leases) expect(l.worker.name).toMatch(/^[a-d]$/);
    }
    expect(served).toBeGreaterThan(500);
  });

  it('spreads traffic over equal workers about evenly (chi-square over 5,000 picks)', () => {
    const policy = createBalancer(name, { clock: new VirtualClock() });
    const { pool, workers } = policyBench(
      policy,
      ['a', 'b', 'c', 'd', 'e'].map((n): WorkerSpec => [n, 1, 4]),
    );
    const random = seededRandom(42);
    const counts = new Map<Worker, number>();
    for (let i = 0; i < 5000; i++) {
      // Each request takes a slot and gives it back before the next: loads stay equal.
      const w = policy.pick(pool.loads, { random })!;
      counts.set(w, (counts.get(w) ?? 0) + 1);
      pool.acquire(w);
      pool.release(w);
    }
    expect(chiSquareUniform(workers.map((w) => counts.get(w) ?? 0))).toBeLessThan(CHI2_4DF_0_001);
  });
});

describe('the chi-square check', () => {
  it('catches a biased tie-break', () => {
    const random = seededRandom(42);
    const counts = [0, 0, 0, 0, 0];
    // "Replace with probability 1/2" instead of 1/k favours the last-listed workers.
    for (let i = 0; i < 5000; i++) counts[[0, 1, 2, 3, 4].reduce((a, b) => (random() < 0.5 ? b : a))]!++;
    expect(chiSquareUniform(counts)).toBeGreaterThan(CHI2_4DF_0_001);
  });
});
