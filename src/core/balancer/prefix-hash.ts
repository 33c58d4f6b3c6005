import { hashString } from '../hashing.js';
import { KeyedRingPolicy, type KeyContext } from './ring.js';
import { SESSION_AFFINITY_DEFAULTS } from './session-affinity.js';
import type { BalancerOptions } from './types.js';

export const PREFIX_HASH_DEFAULTS = {
  /**
   * Leading characters of the prompt that make its key: 1,024 ≈ 256 tokens. Long enough to
   * tell conversations and documents apart, short enough that a conversation's first turn
   * already covers it (a prompt shorter than this is hashed whole, so a turn 1 shorter than it
   * and turn 2 get different keys).
   */
  prefixHashChars: 1024,
} as const;

/**
 * Prefix affinity without a tree: the session key (`user` or x-session-id) where there is one,
 * else the hash of the prompt's first `prefixHashChars` characters, on a consistent-hash ring
 * with bounded loads (src/core/balancer/ring.ts, shared with session-affinity; c is
 * session_load_factor). Prompts that start alike go to the same worker, whose engine then has
 * their prefix cached, while no worker takes more than c × its share of the load: a prefix
 * most of the traffic shares spills along the ring instead of piling up on one worker.
 *
 * A pick depends only on the prompt text or session key and on the ready workers' names (and
 * on load where the bound applies), so every gateway replica sends a shared prefix to the same
 * worker with no state to share; a worker joining or leaving moves ~1/n of the prefixes.
 *
 * Worked example, 4 workers, prefixHashChars 1,024: two conversations that share a 300-char
 * system prompt and differ after it have different keys (likely different workers); every turn
 * of one of them has the same first 1,024 characters once it is that long, so the same key.
 *
 * Pick: hashing min(prompt, prefixHashChars) characters (~3 µs for 1,024), then the ring's
 * O(log n) search. No prompt text and no session key → least-connection.
 */
export class PrefixHash extends KeyedRingPolicy {
  readonly name = 'prefix-hash';
  readonly #chars: number;

  constructor(opts: BalancerOptions = {}) {
    super(opts.sessionLoadFactor ?? SESSION_AFFINITY_DEFAULTS.sessionLoadFactor);
    this.#chars = opts.prefixHashChars ?? PREFIX_HASH_DEFAULTS.prefixHashChars;
    if (!(Number.isInteger(this.#chars) && this.#chars >= 1))
      throw new RangeError(`prefix_hash_chars must be a whole number >= 1, got ${this.#chars}`);
  }

  keyOf(ctx: KeyContext): number | undefined {
    if (ctx.sessionKey !== undefined) return hashString(ctx.sessionKey);
    if (ctx.promptText) return hashString(ctx.promptText, this.#chars);
    return undefined;
  }
}
