import type { Random } from '../clock.js';
import { PREFIX_BLOCK_CHARS, promptBlockHashes } from '../hashing.js';
import type { Worker } from '../types.js';
import type { BalancerOptions, BalancerPolicy, Candidates, PickContext } from './types.js';

export const PREFIX_CACHE_DEFAULTS = {
  /** Route by prefix only when more than this fraction of the prompt matched (SGLang's default). */
  cacheThreshold: 0.3,
  /**
   * Imbalanced when max − min in flight exceeds this (and the ratio below holds). SGLang uses
   * 64 for engines that run 256 sequences at once, 25% of that; 25% of FlockServe's default
   * worker_capacity of 30 is 7.5 → 8.
   */
  balanceAbsThreshold: 8,
  /** ... and max in flight > this × min in flight (SGLang's default). */
  balanceRelThreshold: 1.5,
  /**
   * Prompt characters remembered per worker: 2 Mi chars ≈ 524k tokens at 4 chars/token, a
   * little more than one A100-80GB's KV cache for Llama-3.1-8B (~440k tokens), so the router
   * forgets about when the engine's prefix cache would.
   */
  prefixTreeMaxChars: 2 * 1024 * 1024,
} as const;

/** Holders scanned per pick, so a block every worker holds costs O(1), not O(n). */
const HOLDER_SCAN = 16;

/** What one worker has been sent: block hashes, least recently routed first (a Map keeps insertion order). */
interface Tenant {
  readonly worker: Worker;
  readonly blocks: Map<number, true>;
}

/**
 * Prefix-cache affinity (SGLang's cache-aware policy, adapted): send a prompt to the worker
 * that was recently sent the longest prefix of it, so the engine's prefix cache skips that
 * part of the prefill.
 *
 * The "approximate radix tree per worker" is kept as chained block hashes (see
 * src/core/hashing.ts): a hash at depth i names a whole prefix of i+1 blocks, so one map
 * from hash to the workers holding it is every worker's tree at once, and a lookup walks the
 * prompt once instead of once per worker. Each worker's blocks are LRU-evicted beyond
 * `prefixTreeMaxChars`; they are touched deepest first, so a prefix is evicted from its end
 * and the root stays longest, as in a radix tree.
 *
 *   balanced and match > cacheThreshold → the worker with the longest match (if it has room;
 *     else the next shorter match that clears the threshold)
 *   imbalanced (max − min in flight > balanceAbsThreshold and max > balanceRelThreshold × min),
 *     a miss, or no prompt text → least-connection
 *
 * Worked example, threshold 0.3: a 1,000-char prompt whose first 512 chars (8 blocks) were
 * sent to w2 matches 0.51 → w2. A prompt sharing only a 256-char system prompt (0.26) → least-loaded.
 *
 * Pick: O(prompt length) for hashing and lookups, O(1) in the number of workers.
 */
export class PrefixCache implements BalancerPolicy {
  readonly name = 'prefix-cache';
  readonly #threshold: number;
  readonly #absThreshold: number;
  readonly #relThreshold: number;
  readonly #maxBlocks: number;
  readonly #tenants = new Map<Worker, Tenant>();
  /** Block hash → workers whose tree holds it. */
  readonly #holders = new Map<number, Worker[]>();

  constructor(opts: BalancerOptions = {}) {
    const d = PREFIX_CACHE_DEFAULTS;
    this.#threshold = opts.cacheThreshold ?? d.cacheThreshold;
    this.#absThreshold = opts.balanceAbsThreshold ?? d.balanceAbsThreshold;
    this.#relThreshold = opts.balanceRelThreshold ?? d.balanceRelThreshold;
    const maxChars = opts.prefixTreeMaxChars ?? d.prefixTreeMaxChars;
    if (!(this.#threshold >= 0 && this.#threshold <= 1))
      throw new RangeError(`cache_threshold must be within [0, 1], got ${this.#threshold}`);
    if (!(this.#absThreshold >= 0))
      throw new RangeError(`balance_abs_threshold must be >= 0, got ${this.#absThreshold}`);
    if (!(this.#relThreshold >= 1))
      throw new RangeError(`balance_rel_threshold must be >= 1, got ${this.#relThreshold}`);
    if (!(maxChars >= PREFIX_BLOCK_CHARS))
      throw new RangeError(`prefix_tree_max_chars must be >= ${PREFIX_BLOCK_CHARS}, got ${maxChars}`);
    this.#maxBlocks = Math.floor(maxChars / PREFIX_BLOCK_CHARS);
  }

  pick(candidates: Candidates, ctx: PickContext): Worker | undefined {
    const text = ctx.promptText;
    if (!text) return candidates.leastLoaded(ctx.random);
    const hashes = promptBlockHashes(text);
    let chosen: Worker | undefined;
    if (hashes.length > 0 && !this.imbalanced(candidates)) {
      let depth = 0;
      while (depth < hashes.length && this.#holders.has(hashes[depth]!)) depth++;
      // From the deepest match back toward the root: the first prefix held by a worker with room.
      for (let d = depth; d > 0 && (d * PREFIX_BLOCK_CHARS) / text.length > this.#threshold; d--) {
        chosen = this.#bestHolder(this.#holders.get(hashes[d - 1]!)!, candidates, ctx.random);
        if (chosen) break;
      }
    }
    chosen ??= candidates.leastLoaded(ctx.random);
    if (chosen) this.#remember(chosen, hashes);
    return chosen;
  }

  /** SGLang's test: both the absolute and the relative spread of in-flight counts are exceeded. */
  imbalanced(c: Candidates): boolean {
    const max = c.maxInFlight;
    const min = c.minInFlight;
    return max - min > this.#absThreshold && max > this.#relThreshold * min;
  }

  /** Characters of prompt remembered for `w` (whole blocks). */
  treeChars(w: Worker): number {
    return (this.#tenants.get(w)?.blocks.size ?? 0) * PREFIX_BLOCK_CHARS;
  }

  onMembershipChange(ready: readonly Worker[]): void {
    const keep = new Set(ready);
    for (const [worker, tenant] of this.#tenants) {
      if (keep.has(worker)) continue;
      for (const h of tenant.blocks.keys()) this.#dropHolder(h, worker);
      this.#tenants.delete(worker);
    }
  }

  /** The least-loaded holder with room among up to HOLDER_SCAN, from a random offset. */
  #bestHolder(holders: readonly Worker[], c: Candidates, random: Random): Worker | undefined {
    if (holders.length >= c.readyCount) return c.leastLoaded(random); // every ready worker holds it
    const n = holders.length;
    const start = Math.floor(random() * n);
    let best: Worker | undefined;
    for (let k = 0; k < n && k < HOLDER_SCAN; k++) {
      const w = holders[(start + k) % n]!;
      if (!c.has(w)) continue;
      if (best === undefined || w.inFlight * best.capacity < best.inFlight * w.capacity) best = w;
    }
    return best;
  }

  #remember(worker: Worker, hashes: readonly number[]): void {
    if (hashes.length === 0) return;
    let tenant = this.#tenants.get(worker);
    if (!tenant) {
      tenant = { worker, blocks: new Map() };
      this.#tenants.set(worker, tenant);
    }
    const blocks = tenant.blocks;
    // Deepest first, so the root ends up most recent and eviction trims prefixes from their ends.
    for (let i = hashes.length - 1; i >= 0; i--) {
      const h = hashes[i]!;
      if (!blocks.delete(h)) {
        const holders = this.#holders.get(h);
        if (holders) holders.push(worker);
        else this.#holders.set(h, [worker]);
      }
      blocks.set(h, true);
    }
    while (blocks.size > this.#maxBlocks) {
      const oldest = blocks.keys().next().value!;
      blocks.delete(oldest);
      this.#dropHolder(oldest, worker);
    }
  }

  #dropHolder(h: number, worker: Worker): void {
    const holders = this.#holders.get(h);
    if (!holders) return;
    const i = holders.indexOf(worker);
    if (i < 0) return;
    holders[i] = holders[holders.length - 1]!;
    holders.pop();
    if (holders.length === 0) this.#holders.delete(h);
  }
}
