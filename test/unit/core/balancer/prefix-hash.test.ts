import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../../src/core/clock.js';
import { PrefixHash } from '../../../../src/core/balancer/prefix-hash.js';
import { CHI2_4DF_0_001, chiSquareUniform, policyBench, type WorkerSpec } from '../../../helpers/balancer.js';

const idle = (names: readonly string[], capacity = 30): WorkerSpec[] => names.map((n): WorkerSpec => [n, 0, capacity]);
const NAMES = ['gw-1', 'gw-2', 'gw-3', 'gw-4', 'gw-5'];
/** The worker of NAMES[0..3] a request's key belongs to (the ring is a function of the names alone). */
function homeOf(ctx: { promptText?: string; sessionKey?: string }): string {
  const policy = new PrefixHash();
  policyBench(policy, idle(NAMES.slice(0, 4)));
  return policy.home(ctx)!.name;
}

/** NAMES[0..3] behind `policy`, the key's home with `homeLoad` in flight, the others with `otherLoads`. */
function aroundHome(
  policy: PrefixHash,
  ctx: { promptText?: string; sessionKey?: string },
  homeLoad: number,
  otherLoads: number[],
) {
  const home = homeOf(ctx);
  const others = NAMES.slice(0, 4).filter((n) => n !== home);
  const bench = policyBench(policy, [
    [home, homeLoad, 30],
    ...others.map((n, i): WorkerSpec => [n, otherLoads[i]!, 30]),
  ]);
  return { ...bench, home: bench.byName(home), others: others.map(bench.byName) };
}
/** Prompts that differ from their first characters on, each longer than the key (4,096 characters). */
const prompts = Array.from({ length: 2000 }, (_, i) => `document ${i}: ${'lorem ipsum dolor sit amet. '.repeat(160)}`);

describe('PrefixHash', () => {
  it('two gateway replicas, workers joining in different orders, send every prefix to the same worker', () => {
    const a = new PrefixHash();
    const b = new PrefixHash();
    const benchA = policyBench(a, idle(NAMES));
    const benchB = policyBench(b, idle([...NAMES].reverse()));
    const random = seededRandom(1);
    for (const promptText of prompts.slice(0, 500)) {
      const wa = a.pick(benchA.pool.loads, { promptText, random })!;
      const wb = b.pick(benchB.pool.loads, { promptText, random })!;
      expect(wb.name).toBe(wa.name);
    }
    for (let s = 0; s < 200; s++) {
      const sessionKey = `user-${s}`;
      expect(b.pick(benchB.pool.loads, { sessionKey, random })!.name).toBe(
        a.pick(benchA.pool.loads, { sessionKey, random })!.name,
      );
    }
  });

  it('the default load factor 1: no worker above ⌈its share⌉ of the requests in flight, even for one hot prefix', () => {
    const policy = new PrefixHash();
    const { pool, workers } = policyBench(policy, idle(NAMES.slice(0, 4)));
    const random = seededRandom(6);
    for (let i = 1; i <= 40; i++) {
      pool.acquire(policy.pick(pool.loads, { promptText: prompts[9]! + ` question ${i}`, random })!);
      for (const w of workers) expect(w.inFlight).toBeLessThanOrEqual(Math.ceil(i / 4));
    }
  });

  /** [label, two prompts, same key?] with prefix_hash_chars 1,024 */
  const keys: [string, string, string, boolean][] = [
    ['the same first 1,024 characters, different tails', 'x'.repeat(1024) + 'tail one', 'x'.repeat(1024) + 'two', true],
    [
      'a difference at character 1,000',
      'x'.repeat(999) + 'a' + 'x'.repeat(500),
      'x'.repeat(999) + 'b' + 'x'.repeat(500),
      false,
    ],
    ['a prompt shorter than the key is hashed whole', 'short prompt', 'short prompt, longer', false],
  ];
  it.each(keys)('%s', (_label, p1, p2, same) => {
    const policy = new PrefixHash({ prefixHashChars: 1024 });
    expect(policy.keyOf({ promptText: p1 }) === policy.keyOf({ promptText: p2 })).toBe(same);
  });

  it('routes on the session key when there is one, whatever the prompt', () => {
    const policy = new PrefixHash();
    const { pool } = policyBench(policy, idle(NAMES));
    const random = seededRandom(2);
    const home = policy.pick(pool.loads, { sessionKey: 'alice', promptText: prompts[0], random })!;
    for (const promptText of prompts.slice(1, 50))
      expect(policy.pick(pool.loads, { sessionKey: 'alice', promptText, random })).toBe(home);
  });

  it('spreads distinct prefixes about evenly (idle workers, no bound in play)', () => {
    const policy = new PrefixHash();
    const { pool, workers } = policyBench(policy, idle(NAMES));
    const random = seededRandom(3);
    const counts = new Map(workers.map((w) => [w, 0]));
    for (const promptText of prompts) {
      const w = policy.pick(pool.loads, { promptText, random })!;
      counts.set(w, counts.get(w)! + 1);
    }
    expect(chiSquareUniform([...counts.values()])).toBeLessThan(CHI2_4DF_0_001 * 4); // 100 points per worker: ±20%
    expect(Math.min(...counts.values())).toBeGreaterThan(2000 / 5 / 1.5);
  });

  it('bounds a prefix every request shares: no worker above ⌈c × its share⌉, the rest spill along the ring', () => {
    const policy = new PrefixHash({ prefixHashLoadFactor: 1.25 });
    const { pool, workers } = policyBench(policy, idle(NAMES.slice(0, 4)));
    const random = seededRandom(4);
    const hot = prompts[7]!;
    const home = policy.home({ promptText: hot })!;
    for (let i = 1; i <= 40; i++) {
      pool.acquire(policy.pick(pool.loads, { promptText: hot + ` question ${i}`, random })!);
      for (const w of workers) expect(w.inFlight).toBeLessThanOrEqual(Math.ceil((1.25 * i) / 4));
    }
    expect(home.inFlight).toBe(13); // ⌈1.25 × 40 / 4⌉
  });

  /**
   * 4 workers: the key's home with 2 in flight, the others 3, 3 and 1 (10 in flight: the home is
   * under its bound ⌈11 / 4⌉ = 3, one request busier than the least loaded).
   * [case, how many times the prompt was routed before, session key?, where it goes]
   */
  const firstOrAgain: [string, number, boolean, 'home' | 'least loaded'][] = [
    ['a prompt key seen for the first time goes to the least-loaded worker', 0, false, 'least loaded'],
    ['the same prompt key again sticks to its home, under its bound', 1, false, 'home'],
    ['... and every time after', 5, false, 'home'],
    ['a session key sticks from its first request', 0, true, 'home'],
  ];
  it.each(firstOrAgain)('%s', (_label, before, session, expected) => {
    const policy = new PrefixHash();
    const ctx = session ? { sessionKey: 'alice', promptText: prompts[3]! } : { promptText: prompts[3]! };
    const { pool, home, others } = aroundHome(policy, ctx, 2, [3, 3, 1]);
    const random = seededRandom(7);
    for (let i = 0; i < before; i++) policy.pick(pool.loads, { ...ctx, random });
    expect(policy.pick(pool.loads, { ...ctx, random })).toBe(expected === 'home' ? home : others[2]);
  });

  it('a prompt key seen for the first time goes to its home when no worker is less loaded (whatever the draw)', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const policy = new PrefixHash();
      const { pool, home } = aroundHome(policy, { promptText: prompts[4]! }, 1, [1, 2, 2]);
      expect(policy.pick(pool.loads, { promptText: prompts[4]!, random: seededRandom(seed) })).toBe(home);
    }
  });

  it('traffic that shares no prefix: over a timeline of arrivals and ends, every request goes to a least-loaded worker', () => {
    const policy = new PrefixHash();
    const { pool, workers } = policyBench(policy, idle(NAMES));
    const random = seededRandom(9);
    const live: (typeof workers)[number][] = [];
    for (const [i, promptText] of prompts.entries()) {
      // Between 0 and 2 requests end before each arrival: the fleet's load wanders between 0 and ~40.
      for (let e = Math.floor(random() * 3); e > 0 && live.length > 0; e--)
        pool.release(live.splice(Math.floor(random() * live.length), 1)[0]!);
      const least = Math.min(...workers.map((w) => w.inFlight));
      const w = policy.pick(pool.loads, { promptText, random })!;
      expect(w.inFlight, `request ${i}`).toBe(least);
      pool.acquire(w);
      live.push(w);
    }
  });

  it('the bound counts the other gateway replicas’ requests on the worker, as the fleet’s total does', () => {
    const policy = new PrefixHash();
    const ctx = { promptText: prompts[5]!, random: seededRandom(10) };
    // 9 in flight: this replica's 1 on each other worker, the other replicas' 6 on the home,
    // which is over its bound ⌈10 / 4⌉ = 3.
    const { pool, home } = aroundHome(policy, ctx, 0, [1, 1, 1]);
    pool.setRemoteInFlight(home.name, 6);
    policy.pick(pool.loads, ctx); // the key is now one that recurs
    expect(policy.pick(pool.loads, ctx)).not.toBe(home);
  });

  it('no prompt and no session key: least-connection', () => {
    const policy = new PrefixHash();
    const { pool, byName } = policyBench(policy, [
      ['a', 3, 30],
      ['b', 1, 30],
    ]);
    expect(policy.pick(pool.loads, { random: seededRandom(5) })).toBe(byName('b'));
  });

  it('rejects knobs out of range, naming the option', () => {
    expect(() => new PrefixHash({ prefixHashChars: 0 })).toThrow(/prefix_hash_chars/);
    expect(() => new PrefixHash({ prefixHashLoadFactor: 0.5 })).toThrow(/prefix_hash_load_factor must be >= 1/);
  });
});
