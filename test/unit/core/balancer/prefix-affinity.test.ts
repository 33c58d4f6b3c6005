/**
 * The two ways cache-aware routing fails in other gateways, checked on both prefix-aware
 * policies: at low concurrency it pins the few requests in flight on one worker while others
 * idle; with workers of different capacity it loads the small one as if it were big.
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../../src/core/clock.js';
import { createBalancer } from '../../../../src/core/balancer/registry.js';
import { policyBench } from '../../../helpers/balancer.js';

const SYSTEM = 'You are FlockBot, a helpful assistant. Be brief. '.repeat(5); // 250 chars: a short shared prefix
const question = (i: number) => `${SYSTEM}Question ${i}: ${'what about this and that? '.repeat(20 + (i % 7))}`;

describe.each(['prefix-cache', 'prefix-hash'] as const)('%s', (name) => {
  it('low concurrency: 1–2 requests in flight sharing a short prefix never pile on one worker while others idle', () => {
    const policy = createBalancer(name);
    const { pool, workers } = policyBench(
      policy,
      ['a', 'b', 'c', 'd'].map((n) => [n, 0, 30] as const),
    );
    const random = seededRandom(1);
    const inFlight: ReturnType<typeof pool.get>[] = [];
    // A timeline: requests start one after the other; at most 2 are in flight at any time.
    for (let i = 0; i < 200; i++) {
      if (inFlight.length === 2) pool.release(inFlight.shift()!);
      const w = policy.pick(pool.loads, { promptText: question(i), random })!;
      pool.acquire(w);
      inFlight.push(w);
      expect(Math.max(...workers.map((x) => x.inFlight)), `request ${i}`).toBe(1);
    }
  });

  it('workers of different capacity: a prefix most requests share loads each worker by its capacity', () => {
    const policy = createBalancer(name);
    const { pool, workers, byName } = policyBench(policy, [
      ['small', 0, 6],
      ['big-1', 0, 30],
      ['big-2', 0, 30],
      ['big-3', 0, 30],
    ]);
    const random = seededRandom(2);
    const hot = 'The same long system prompt, reused by every request. '.repeat(40); // 2,200 chars
    // 40 requests in flight, then a steady state where the oldest ends as a new one starts.
    const live: NonNullable<ReturnType<typeof pool.get>>[] = [];
    let worst = 0;
    for (let i = 0; i < 400; i++) {
      if (live.length === 40) pool.release(live.shift()!);
      const w = policy.pick(pool.loads, { promptText: `${hot}user turn ${i}`, random })!;
      pool.acquire(w);
      live.push(w);
      if (i >= 40) worst = Math.max(worst, byName('small').inFlight / 6);
    }
    // The fleet is at 40 / 96 = 42% of its capacity: the small worker stays near that share, never full,
    // and no worker is loaded (relative to its capacity) past 1.5 × the fleet's.
    expect(worst).toBeLessThanOrEqual(0.84);
    for (const w of workers) expect(w.inFlight / w.capacity).toBeLessThanOrEqual(1.5 * (40 / 96));
  });
});
