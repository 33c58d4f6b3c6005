import { hashString } from '../hashing.js';
import { RecentKeys } from './recent-keys.js';
import { KeyedRingPolicy, type KeyContext } from './ring.js';
import type { BalancerOptions } from './types.js';

export const PREFIX_HASH_DEFAULTS = {
  /**
   * Leading characters of the prompt that make its key: 4,096 ≈ 1,000 tokens. Past a short
   * system prompt, into what tells conversations and documents apart; a prompt shorter than
   * this is hashed whole, so a conversation's turns share a key once they are this long.
   */
  prefixHashChars: 4096,
  /**
   * c of the bounded loads: 1, no worker above its share (rounded up) of the requests in
   * flight. A larger c keeps more recurring prefixes on their worker, and lets the busiest
   * worker run further ahead of the least loaded (TTFT p99).
   * Worked example, 4 workers, 10 in flight: c = 1 lets a worker take an 11th request only
   * while it has at most 2 (⌈11 / 4⌉ = 3); c = 1.25, while it has at most 3.
   * bench/results/balancing.md compares the two.
   */
  prefixHashLoadFactor: 1,
} as const;

/**
 * Prompt keys remembered, to tell a prefix that recurs from one seen once: 65,536 slots (256
 * KiB). A key that comes back after tens of thousands of other distinct prompts finds its
 * prefix long gone from the engines' caches anyway: 16 workers of 440k KV-cache tokens hold
 * ~7,000 prompts of 1,000 tokens.
 */
const RECENT_KEY_SLOTS = 1 << 16;

/**
 * Prefix affinity without a tree: the session key (`prompt_cache_key`, `user` or x-session-id)
 * where there is one, else the hash of the prompt's first `prefixHashChars` characters, on a
 * consistent-hash ring with bounded loads (src/core/balancer/ring.ts, shared with
 * session-affinity; c is prefix_hash_load_factor). Prompts that start alike go to the same worker, whose engine then has
 * their prefix cached, while no worker takes more than c × its share of the load: a prefix
 * most of the traffic shares spills along the ring instead of piling up on one worker.
 *
 * Only a prompt key seen before (in a fixed table of recent keys, RECENT_KEY_SLOTS) sticks to
 * its worker. A key's first request goes to the least-loaded worker, its home on a tie (which
 * then holds the prefix when the key comes back): on traffic that shares no prefix, affinity
 * is worth nothing, and each request sent to a worker busier than the least loaded may wait
 * behind a long prefill, which shows in TTFT p99. A session key says the client comes back: it
 * sticks from the first request.
 *
 * A pick of a recurring key depends only on the prompt text or session key and on the ready
 * workers' names (and on load where the bound applies), so every gateway replica sends a shared
 * prefix to the same worker with no state to share, from the key's second request on each
 * replica; a worker joining or leaving moves ~1/n of the prefixes.
 *
 * Worked example, 4 workers, prefixHashChars 4,096: two RAG requests with the same 1,000-char
 * system prompt and the same retrieved document have the same key (the same worker, whose
 * engine has both cached); two conversations that share the system prompt and differ after it
 * have different keys. A system prompt longer than prefixHashChars makes every request that
 * carries it one key: it spills along the ring by load, and conversations under it do not
 * stick unless they carry a session key.
 *
 * Pick: hashing min(prompt, prefixHashChars) characters (~10 µs for 4,096), one table lookup,
 * then the ring's O(log n) search. No prompt text and no session key → least-connection.
 */
export class PrefixHash extends KeyedRingPolicy {
  readonly name = 'prefix-hash';
  readonly readsPrompt = true;
  readonly #chars: number;
  readonly #recent = new RecentKeys(RECENT_KEY_SLOTS);

  constructor(opts: BalancerOptions = {}) {
    super(opts.prefixHashLoadFactor ?? PREFIX_HASH_DEFAULTS.prefixHashLoadFactor, 'prefix_hash_load_factor');
    this.#chars = opts.prefixHashChars ?? PREFIX_HASH_DEFAULTS.prefixHashChars;
    if (!(Number.isInteger(this.#chars) && this.#chars >= 1))
      throw new RangeError(`prefix_hash_chars must be a whole number >= 1, got ${this.#chars}`);
  }

  protected override sticks(key: number, ctx: KeyContext): boolean {
    return ctx.sessionKey !== undefined || this.#recent.seen(key);
  }

  keyOf(ctx: KeyContext): number | undefined {
    if (ctx.sessionKey !== undefined) return hashString(ctx.sessionKey);
    if (ctx.promptText) return hashString(ctx.promptText, this.#chars);
    return undefined;
  }
}
