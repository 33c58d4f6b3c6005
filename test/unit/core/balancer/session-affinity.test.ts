import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../../src/core/clock.js';
import { SessionAffinity } from '../../../../src/core/balancer/session-affinity.js';
import { policyBench, type WorkerSpec } from '../../../helpers/balancer.js';

const idle = (n: number, capacity = 30): WorkerSpec[] =>
  Array.from({ length: n }, (_, i): WorkerSpec => [`w${i}`, 0, capacity]);
const keys = Array.from({ length: 5000 }, (_, i) => `session-${i}`);

describe('SessionAffinity', () => {
  it('sends a session to the same worker on every pick', () => {
    const policy = new SessionAffinity();
    const { pool } = policyBench(policy, idle(6));
    const random = seededRandom(1);
    for (const key of keys.slice(0, 300)) {
      const first = policy.pick(pool.loads, { sessionKey: key, random })!;
      for (let i = 0; i < 5; i++) {
        const w = policy.pick(pool.loads, { sessionKey: key, random })!;
        expect(w).toBe(first);
        pool.acquire(w);
        pool.release(w);
      }
    }
  });

  /** [label, change, the only worker keys may move from/to, largest share of keys that may move] */
  const changes: [string, 'leave' | 'join', string, number][] = [
    ['a worker leaving moves only its own keys', 'leave', 'w3', 0.16],
    ['a worker joining takes keys only for itself', 'join', 'w10', 0.15],
  ];
  it.each(changes)('%s (10 workers, 5,000 keys)', (_label, change, moved, maxShare) => {
    const policy = new SessionAffinity();
    const { pool } = policyBench(policy, idle(10));
    const random = seededRandom(2);
    const before = new Map(keys.map((k) => [k, policy.pick(pool.loads, { sessionKey: k, random })!.name]));
    if (change === 'leave') pool.setState(moved, 'draining', 'scale down');
    else pool.add(moved, 30, 'ready');
    let movedKeys = 0;
    for (const k of keys) {
      const now = policy.pick(pool.loads, { sessionKey: k, random })!.name;
      if (now === before.get(k)) continue;
      movedKeys++;
      // Leaving: a moved key was on the leaver. Joining: a moved key went to the newcomer.
      expect(change === 'leave' ? before.get(k) : now).toBe(moved);
    }
    // About 1/10 (1/11) of the keys; never a reshuffle.
    expect(movedKeys / keys.length).toBeGreaterThan(0.04);
    expect(movedKeys / keys.length).toBeLessThan(maxShare);
  });

  it('bounds a hot session: no worker takes more than ceil(c × mean) — the rest spill along the ring', () => {
    const policy = new SessionAffinity({ sessionLoadFactor: 1.25 });
    const { pool, workers } = policyBench(policy, idle(4));
    const random = seededRandom(3);
    const home = policy.pick(pool.loads, { sessionKey: 'hot', random })!;
    for (let i = 1; i <= 40; i++) {
      pool.acquire(policy.pick(pool.loads, { sessionKey: 'hot', random })!);
      const bound = Math.ceil((1.25 * i) / 4);
      for (const w of workers) expect(w.inFlight).toBeLessThanOrEqual(bound);
    }
    // 40 requests, bound ⌈1.25 × 40 / 4⌉ = 13: the home worker is at it, others share the rest.
    expect(home.inFlight).toBe(13);
    expect(workers.filter((w) => w.inFlight > 0).length).toBeGreaterThan(2);
  });

  it('rejects a load factor below 1', () => {
    expect(() => new SessionAffinity({ sessionLoadFactor: 0.9 })).toThrow(/session_load_factor must be >= 1/);
  });
});
