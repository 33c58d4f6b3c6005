import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../../src/core/clock.js';
import { PrefixCache } from '../../../../src/core/balancer/prefix-cache.js';
import type { PickContext } from '../../../../src/core/balancer/types.js';
import type { Worker } from '../../../../src/core/types.js';
import { policyBench, type PolicyBench } from '../../../helpers/balancer.js';

const SYSTEM = 'You are FlockBot. Answer in one short paragraph and cite nothing. '.repeat(4); // 264 chars
const history = (session: number, turns: number) =>
  SYSTEM +
  Array.from({ length: turns }, (_, t) => `user ${session} turn ${t}: ${'tell me more. '.repeat(12)}`).join('');

/** Sets a worker's in-flight count through the pool, as real traffic would. */
function load(b: PolicyBench, name: string, n: number): void {
  const w = b.byName(name);
  while (w.inFlight < n) b.pool.acquire(w);
  while (w.inFlight > n) b.pool.release(w);
}

describe('PrefixCache', () => {
  it('sends each turn of a conversation where the previous turns went (balanced fleet)', () => {
    const policy = new PrefixCache();
    const b = policyBench(policy, [
      ['a', 0, 30],
      ['b', 0, 30],
      ['c', 0, 30],
      ['d', 0, 30],
    ]);
    const random = seededRandom(4);
    const home = new Map<number, Worker>();
    // 12 concurrent conversations (no shared system prompt), 5 turns; slots are held for a turn.
    const conversation = (s: number, turns: number) => `conversation ${s}. ` + history(s, turns).slice(SYSTEM.length);
    for (let turn = 1; turn <= 5; turn++) {
      for (let s = 0; s < 12; s++) {
        const w = policy.pick(b.pool.loads, { promptText: conversation(s, turn), random })!;
        if (turn === 1) home.set(s, w);
        else expect(w).toBe(home.get(s));
        b.pool.acquire(w);
      }
      for (const w of b.workers) load(b, w.name, 0);
    }
    // The first turns had nothing to match and were spread by load: 3 conversations per worker.
    expect(b.workers.map((w) => [...home.values()].filter((h) => h === w).length)).toEqual([3, 3, 3, 3]);
  });

  it('keeps the fleet within its balance thresholds when every conversation shares a system prompt', () => {
    const policy = new PrefixCache({ balanceAbsThreshold: 8 });
    const b = policyBench(
      policy,
      ['a', 'b', 'c', 'd'].map((n) => [n, 0, 30] as const),
    );
    const random = seededRandom(9);
    for (let s = 0; s < 100; s++) {
      b.pool.acquire(policy.pick(b.pool.loads, { promptText: history(s, 1), random })!);
      // One pick past the threshold at most: max − min ≤ 8 + 1.
      expect(b.pool.loads.maxInFlight - b.pool.loads.minInFlight).toBeLessThanOrEqual(9);
    }
    expect(b.pool.loads.minInFlight).toBeGreaterThan(15);
  });

  /**
   * Worker a served the conversation; [label, in flight on a, on b, abs, rel, expected worker].
   * a is overloaded when, with this request, it would run more than rel × its share of the
   * fleet's requests in flight ((a + b + 1) / 2) and more than abs requests.
   */
  const table: [string, number, number, number, number, string][] = [
    ['balanced: follow the prefix', 3, 0, 8, 1.5, 'a'],
    ['11 > 1.5 × 6 and 11 > 8: overloaded → least loaded', 10, 1, 8, 1.5, 'b'],
    ['11 > 1.5 × 7 and 11 > 8: overloaded', 10, 3, 8, 1.5, 'b'],
    ['11 ≤ 1.5 × 8: within its share', 10, 5, 8, 1.5, 'a'],
    ['7 > 1.5 × 4 but 7 ≤ 8: few requests stay with their prefix', 6, 1, 8, 1.5, 'a'],
    ['busy everywhere: 29 ≤ 1.5 × 23.5, though 10 more than b and 28 > 1.5 × 18', 28, 18, 8, 1.5, 'a'],
    ['the prefix holder is full: least loaded', 30, 25, 64, 1.5, 'b'],
  ];
  it.each(table)('%s', (_label, onA, onB, abs, rel, want) => {
    // cache_min_chars 0: these prompts (~450 chars) are short; the rows test the balance thresholds alone.
    const policy = new PrefixCache({ balanceAbsThreshold: abs, balanceRelThreshold: rel, cacheMinChars: 0 });
    const b = policyBench(policy, [
      ['a', 0, 30],
      ['b', 1, 30],
    ]);
    const random = seededRandom(5);
    expect(policy.pick(b.pool.loads, { promptText: history(1, 1), random })!.name).toBe('a');
    load(b, 'a', onA);
    load(b, 'b', onB);
    expect(policy.pick(b.pool.loads, { promptText: history(1, 2), random })!.name).toBe(want);
  });

  it('a match below cache_threshold goes to the least loaded', () => {
    const policy = new PrefixCache({ cacheThreshold: 0.3, cacheMinChars: 0 });
    const b = policyBench(policy, [
      ['a', 0, 30],
      ['b', 1, 30],
    ]);
    const random = seededRandom(6);
    const first = SYSTEM + 'x'.repeat(100); // 364 chars: 5 whole blocks of 64
    expect(policy.pick(b.pool.loads, { promptText: first, random })!.name).toBe('a');
    load(b, 'a', 2);
    // Only the system prompt's 4 whole blocks match: 256 / 1,264 = 0.2 < 0.3.
    expect(policy.pick(b.pool.loads, { promptText: SYSTEM + 'y'.repeat(1000), random })!.name).toBe('b');
    // All 5 of the first prompt's blocks: 320 / 664 = 0.48 > 0.3 → back to a.
    expect(policy.pick(b.pool.loads, { promptText: first + 'z'.repeat(300), random })!.name).toBe('a');
  });

  /** [label, chars the two prompts share, in flight on the holder a, on b, expected worker] (cache_min_chars 1,024) */
  const short: [string, number, number, number, string][] = [
    ['a short match does not send a request to a busier worker', 640, 1, 0, 'b'],
    ['... but breaks the tie among the least loaded', 640, 1, 1, 'a'],
    ['a long match goes to its holder though it is busier', 1280, 3, 0, 'a'],
  ];
  it.each(short)('%s', (_label, shared, onA, onB, want) => {
    const policy = new PrefixCache({ cacheMinChars: 1024 });
    const b = policyBench(policy, [
      ['a', 0, 30],
      ['b', 1, 30],
    ]);
    const random = seededRandom(10);
    const prefix = 's'.repeat(shared);
    expect(policy.pick(b.pool.loads, { promptText: prefix + 'x'.repeat(300), random })!.name).toBe('a');
    load(b, 'a', onA);
    load(b, 'b', onB);
    expect(policy.pick(b.pool.loads, { promptText: prefix + 'y'.repeat(300), random })!.name).toBe(want);
  });

  /**
   * a holds the prompt's first 4,096 bytes (of 5,096); [label, a's in flight and prefill pending
   * (prompt bytes sent and not yet answered), b's, expected worker]. A cached byte counts twice
   * against a byte of queued prefill (CACHED_BYTE_WEIGHT): a is worth 8,192 bytes of queue. With
   * a last element, that worker's pace has been timed at 10 bytes a ms, and its queue was sent
   * that many ms before the pick: what the pace has done of its oldest prompt is not counted.
   */
  const queued: [string, [number, number], [number, number], string, [worker: string, ms: number]?][] = [
    ['the holder decodes, nothing queued: the prefix', [1, 0], [0, 0], 'a'],
    ['the holder queues 6,000 bytes of prefill, less than its prefix is worth', [1, 6000], [0, 0], 'a'],
    ['the holder queues 10,000 bytes: the idle worker answers first', [1, 10_000], [0, 0], 'b'],
    ['both queue: 12,000 − 8,192 on a against 5,000 on b', [2, 12_000], [1, 5000], 'a'],
    ['both queue: 14,000 − 8,192 on a against 5,000 on b', [2, 14_000], [1, 5000], 'b'],
    ["... but half of a's is done at its pace: 7,000 − 8,192 against 5,000", [2, 14_000], [1, 5000], 'a', ['a', 700]],
    ["12,000 − 8,192 on a against b's 5,000, all done at its pace", [2, 12_000], [1, 5000], 'b', ['b', 700]],
  ];
  it.each(queued)('%s', (_label, [inA, pendingA], [inB, pendingB], want, paced) => {
    const policy = new PrefixCache();
    const b = policyBench(policy, [
      ['a', 0, 30],
      ['b', 1, 30],
    ]);
    const random = seededRandom(11);
    const prefix = 's'.repeat(4096);
    expect(policy.pick(b.pool.loads, { promptText: prefix + 'x'.repeat(1000), random })!.name).toBe('a');
    for (const [name, n, pending] of [
      ['a', inA, pendingA],
      ['b', inB, pendingB],
    ] as const) {
      const w = b.byName(name);
      load(b, name, 0);
      for (let i = 0; i < n; i++) b.pool.acquire(w);
      if (paced?.[0] === name) {
        const timed = w.prefill.add(1000);
        b.clock.advance(100);
        w.prefill.done(timed, true);
      }
      if (n > 0 && pending > 0) w.prefill.add(pending);
    }
    b.clock.advance(paced?.[1] ?? 0);
    const ctx: PickContext = { promptText: prefix + 'y'.repeat(1000), random };
    const got = policy.pick(b.pool.loads, ctx)!;
    expect(got.name).toBe(want);
    // What the lease will add to the chosen worker's pending prefill: the prompt less its prefix there.
    expect(ctx.prefill).toBe(want === 'a' ? 1000 : 5096);
  });

  /**
   * [fleet size, the worker with no prefill queued]: every worker runs 2 requests, and all but
   * one queue 20,000 bytes of prefill, so the least loaded by requests is a tie and a couple of
   * random draws often miss the one a new prompt would not wait on. A fleet of up to 8 compares
   * every worker: the free one, at every seed.
   */
  const free: [number, string][] = [
    [2, 'w1'],
    [4, 'w0'],
    [4, 'w3'],
    [8, 'w5'],
  ];
  it.each(free)(
    'in a fleet of %i, a prompt no one holds goes to %s, the one worker with no prefill queued',
    (n, want) => {
      const policy = new PrefixCache();
      const b = policyBench(
        policy,
        Array.from({ length: n }, (_, i) => [`w${i}`, 0, 30] as const),
      );
      for (const w of b.workers) {
        b.pool.acquire(w);
        b.pool.acquire(w);
        if (w.name !== want) w.prefill.add(20_000);
      }
      const picked = new Set<string>();
      for (let seed = 1; seed <= 40; seed++) {
        const promptText = `question ${seed}: ${'why is the sky blue? '.repeat(100)}`;
        picked.add(policy.pick(b.pool.loads, { promptText, random: seededRandom(seed) })!.name);
      }
      expect([...picked]).toEqual([want]);
    },
  );

  it('forgets the least recently routed prompts beyond prefix_tree_max_chars', () => {
    const policy = new PrefixCache({ prefixTreeMaxChars: 64 * 20 });
    const b = policyBench(policy, [
      ['a', 0, 30],
      ['b', 1, 30],
    ]);
    const random = seededRandom(7);
    const old = 'o'.repeat(64 * 8);
    expect(policy.pick(b.pool.loads, { promptText: old, random })!.name).toBe('a');
    for (let i = 0; i < 3; i++) {
      load(b, 'a', 0);
      policy.pick(b.pool.loads, { promptText: `${i}`.repeat(64 * 8), random });
    }
    expect(policy.treeChars(b.byName('a'))).toBeLessThanOrEqual(64 * 20);
    // a: 0 in flight, b: 1 — the old prompt would stick to a if remembered; make b the least loaded.
    load(b, 'a', 2);
    load(b, 'b', 0);
    expect(policy.pick(b.pool.loads, { promptText: old, random })!.name).toBe('b');
  });

  it('a prompt routed again counts as recent: eviction takes the least recently routed one instead', () => {
    // Room for 2.5 prompts of 20 blocks (1,280 bytes, over cache_min_chars, so a match needs no tie-break).
    const policy = new PrefixCache({ prefixTreeMaxChars: 64 * 50 });
    const b = policyBench(policy, [
      ['a', 0, 30],
      ['b', 1, 30],
    ]);
    const random = seededRandom(9);
    const [p1, p2, p3] = ['1', '2', '3'].map((c) => c.repeat(64 * 20));
    // Timeline on a (the least loaded throughout): p1, p2, p1 again, then p3 overflows the tree.
    for (const prompt of [p1, p2, p1, p3])
      expect(policy.pick(b.pool.loads, { promptText: prompt, random })!.name).toBe('a');
    expect(policy.treeChars(b.byName('a'))).toBeLessThanOrEqual(64 * 50);
    // Now b is the least loaded: the prompt a still holds whole goes to a; p2, cut to a short
    // match, to b.
    load(b, 'a', 2);
    load(b, 'b', 0);
    expect(policy.pick(b.pool.loads, { promptText: p1, random })!.name).toBe('a');
    expect(policy.pick(b.pool.loads, { promptText: p2, random })!.name).toBe('b');
  });

  it('forgets a worker that leaves', () => {
    const policy = new PrefixCache();
    const b = policyBench(policy, [
      ['a', 0, 30],
      ['b', 1, 30],
    ]);
    const random = seededRandom(8);
    policy.pick(b.pool.loads, { promptText: history(2, 3), random });
    expect(policy.treeChars(b.byName('a'))).toBeGreaterThan(0);
    b.pool.setState('a', 'draining', 'scale down');
    expect(policy.treeChars(b.byName('a'))).toBe(0);
    expect(policy.pick(b.pool.loads, { promptText: history(2, 4), random })!.name).toBe('b');
  });

  it('rejects knobs out of range, naming the option', () => {
    expect(() => new PrefixCache({ cacheThreshold: 1.5 })).toThrow(/cache_threshold/);
    expect(() => new PrefixCache({ balanceRelThreshold: 0.5 })).toThrow(/balance_rel_threshold/);
    expect(() => new PrefixCache({ prefixTreeMaxChars: 10 })).toThrow(/prefix_tree_max_chars/);
    expect(() => new PrefixCache({ cacheMinChars: -1 })).toThrow(/cache_min_chars/);
  });
});
