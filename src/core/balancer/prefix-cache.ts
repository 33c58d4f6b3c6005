import type { Random } from '../clock.js';
import { ROUTE_BLOCK_BYTES, prefixPoints, type PrefixPoints } from '../hashing.js';
import { LinkedList, type Linked } from '../linked-list.js';
import { load } from '../load-index.js';
import type { Worker } from '../types.js';
import type { BalancerOptions, BalancerPolicy, Candidates, PickContext } from './types.js';

export const PREFIX_CACHE_DEFAULTS = {
  /** Route by prefix only when more than this fraction of the prompt matched (SGLang's default). */
  cacheThreshold: 0.3,
  /**
   * A match shorter than this (1 KiB ≈ 256 tokens, ~25 ms of prefill on an A100 serving an 8B
   * model) saves less than a wait behind another request costs: it decides only among the least
   * loaded workers, never for a busier one. Without it, short prompts that share a short system
   * prompt pile onto one worker at low concurrency while the others idle.
   */
  cacheMinChars: 1024,
  /**
   * A prefix's holder is passed over only when it would run more than this many requests (of
   * the mean capacity) ... 4, an eighth of the default worker_capacity: with fewer in flight a
   * holder's queue is short enough that its cached prefix is worth the wait. Larger lets one
   * hot prefix pile up on its holder at low load (4 req/s of one system prompt: max ÷ mean in
   * flight 1.76 at 8), smaller moves conversations off the workers holding their history.
   */
  balanceAbsThreshold: 4,
  /** ... and more than this × its share of the requests in flight (SGLang's default ratio). */
  balanceRelThreshold: 1.5,
  /**
   * Prompt characters remembered per worker: 2 Mi chars ≈ 524k tokens at 4 chars/token, a
   * little more than one A100-80GB's KV cache for Llama-3.1-8B (~440k tokens), so the router
   * forgets about when the engine's prefix cache would.
   */
  prefixTreeMaxChars: 2 * 1024 * 1024,
} as const;

/** Holders scanned per pick, so a prefix every worker holds costs O(1), not O(n). */
const HOLDER_SCAN = 16;

/**
 * A fleet of at most this many ready workers has every one compared with the prefix's holder:
 * a handful of random draws (with replacement) miss the worker with the least prefill queued
 * about half the time in a fleet of 4, and a request sent past it waits behind a long prefill.
 */
const COMPARE_ALL = 8;

/** In a larger fleet, workers drawn at random per pick to compare with the prefix's holder and the least loaded. */
const RANDOM_PROBES = 2;

/** What a byte of cached prefix is worth against a byte of prefill queued on a worker (see waitsLess). */
const CACHED_BYTE_WEIGHT = 2;

/** A prefix point one worker holds. */
interface Held extends Linked<Held> {
  readonly hash: number;
  /** The prompt bytes it stands for (its distance from the point before it). */
  bytes: number;
  /** The point before it on the prompt that made it: a prefix of a held point is held too. */
  readonly parent: Held | undefined;
  /** Out of the tree: a link that still reaches it is not followed. */
  evicted: boolean;
}

/** What one worker has been sent. */
interface Tenant {
  readonly worker: Worker;
  readonly points: Map<number, Held>;
  /**
   * The same points, least recently routed first. A touch moves a point to the end of the list
   * (two pointer updates) instead of deleting it from the map and setting it again, which
   * fills the map's table with deleted entries and rehashes it every few hundred picks.
   */
  readonly lru: LinkedList<Held>;
  bytes: number;
}

/**
 * Prefix-cache affinity (SGLang's cache-aware policy, adapted): send a prompt to the worker
 * that was recently sent the longest prefix of it, so the engine's prefix cache skips that
 * part of the prefill.
 *
 * The "approximate radix tree per worker" is kept as chained prefix hashes at checkpoints
 * (prefixPoints in src/core/hashing.ts: every 64 bytes up to 1 KiB, then 4 per doubling of
 * depth): a hash names a whole prefix, so one map from hash to the workers holding it is
 * every worker's tree at once, and a lookup searches the prompt's ~40 points once instead of
 * once per worker. A point stands for the prompt bytes since the point before it; each
 * worker's points are LRU-evicted beyond `prefixTreeMaxChars` of those. They are touched
 * deepest first, so a prefix is evicted from its end and the root stays longest, as in a
 * radix tree.
 *
 *   match > cacheThreshold → the holder of the longest match with the least prefill left that has room and is
 *     not overloaded (else the next shorter match that clears the threshold), unless the match
 *     is shorter than cacheMinChars and a less loaded worker has room: then that one
 *   a miss, no holder left, or no prompt text → least-connection
 *   then the worker so chosen and every other worker (in a fleet of up to COMPARE_ALL; in a
 *     larger one the least loaded and RANDOM_PROBES random workers) are compared by the wait
 *     for a first token: the prefill left on each (prompt bytes sent there and not yet
 *     answered, less what the worker's measured pace has done of the oldest: Worker.prefill)
 *     less what its cached prefix saves (waitsLess); the least wins
 *
 * Balancing request counts alone leaves a short prompt queued behind a long uncached one on
 * its worker: engines prefill every admitted prompt before answering any, so on traffic whose
 * prompts range from hundreds to tens of thousands of tokens most of a time to first token is
 * other requests' prefill. The comparison sends a request where least of it waits, as llm-d's
 * prefix and queue scorers and SGLang's router weigh cache against queue; the holder's
 * overload bound applies to every worker compared.
 *
 * A holder is overloaded when it would run more than balanceRelThreshold × its share of the
 * fleet's load and more than balanceAbsThreshold requests: the bounded load of consistent
 * hashing, per holder, where SGLang routes the whole fleet by load once its most and least
 * loaded workers drift apart. Only the prefixes of a worker far ahead of the mean move, and a
 * fleet that is busy everywhere keeps its affinity, which is when the prefill it saves matters
 * most.
 *
 * Worked example, threshold 0.3: a 1,000-char prompt whose first 512 chars (8 blocks) were
 * sent to w2 matches 0.51 → w2. A prompt sharing only a 256-char system prompt (0.26) → least-loaded.
 *
 * Pick: O(prompt length) for encoding and hashing (~20 µs for 48k characters), O(log prompt
 * length) map operations (binary searches, and a lookup per new point), O(1) in the number of
 * workers (up to HOLDER_SCAN holders and COMPARE_ALL others, each a binary search of its own
 * points).
 */
export class PrefixCache implements BalancerPolicy {
  readonly name = 'prefix-cache';
  readonly readsPrompt = true;
  readonly #threshold: number;
  readonly #minMatch: number;
  readonly #absThreshold: number;
  readonly #relThreshold: number;
  readonly #maxBytes: number;
  readonly #tenants = new Map<Worker, Tenant>();
  /** Point hash → workers whose tree holds it. */
  readonly #holders = new Map<number, Worker[]>();
  /** The ready workers' number and summed capacity (for the shares in maxLoad()). */
  #readyCount = 0;
  #capacity = 0;

  constructor(opts: BalancerOptions = {}) {
    const d = PREFIX_CACHE_DEFAULTS;
    this.#threshold = opts.cacheThreshold ?? d.cacheThreshold;
    this.#minMatch = opts.cacheMinChars ?? d.cacheMinChars;
    this.#absThreshold = opts.balanceAbsThreshold ?? d.balanceAbsThreshold;
    this.#relThreshold = opts.balanceRelThreshold ?? d.balanceRelThreshold;
    const maxChars = opts.prefixTreeMaxChars ?? d.prefixTreeMaxChars;
    if (!(this.#threshold >= 0 && this.#threshold <= 1))
      throw new RangeError(`cache_threshold must be within [0, 1], got ${this.#threshold}`);
    if (!(this.#minMatch >= 0)) throw new RangeError(`cache_min_chars must be >= 0, got ${this.#minMatch}`);
    if (!(this.#absThreshold >= 0))
      throw new RangeError(`balance_abs_threshold must be >= 0, got ${this.#absThreshold}`);
    if (!(this.#relThreshold >= 1))
      throw new RangeError(`balance_rel_threshold must be >= 1, got ${this.#relThreshold}`);
    if (!(maxChars >= ROUTE_BLOCK_BYTES))
      throw new RangeError(`prefix_tree_max_chars must be >= ${ROUTE_BLOCK_BYTES}, got ${maxChars}`);
    this.#maxBytes = maxChars;
  }

  pick(candidates: Candidates, ctx: PickContext): Worker | undefined {
    const text = ctx.promptText;
    if (!text) return candidates.leastLoaded(ctx.random);
    const points = prefixPoints(text);
    const { hashes, ends } = points;
    const maxLoad = this.maxLoad(candidates);
    let chosen: Worker | undefined;
    if (hashes.length > 0) {
      const depth = heldDepth(hashes, this.#holders);
      // From the deepest match back toward the root: the first prefix held by a worker with room
      // that is not overloaded.
      for (let d = depth; d > 0 && ends[d - 1]! / points.bytes > this.#threshold; d--) {
        chosen = this.#bestHolder(this.#holders.get(hashes[d - 1]!)!, candidates, maxLoad, ctx.random);
        if (!chosen) continue;
        if (ends[d - 1]! < this.#minMatch) {
          const least = candidates.leastLoaded(ctx.random)!;
          if (least.inFlight * chosen.capacity < chosen.inFlight * least.capacity) chosen = least;
        }
        break;
      }
    }
    // The holder against every worker in a small fleet, else the least loaded and RANDOM_PROBES
    // drawn at random: whichever the request would wait least on for its first token.
    let matched = chosen ? this.#matched(chosen, points) : 0;
    const everyOne = candidates.size <= COMPARE_ALL;
    const compared = everyOne ? candidates.size : RANDOM_PROBES + 1;
    for (let k = 0; k < compared; k++) {
      const other = everyOne
        ? candidates.at(k)
        : k === 0
          ? candidates.leastLoaded(ctx.random)
          : randomCandidate(candidates, ctx.random);
      if (!other || other === chosen || overloaded(other, maxLoad)) continue;
      const m = this.#matched(other, points);
      if (
        chosen === undefined ||
        waitsLess(other, this.#counted(m, points.bytes), chosen, this.#counted(matched, points.bytes))
      ) {
        chosen = other;
        matched = m;
      }
    }
    chosen ??= candidates.leastLoaded(ctx.random);
    if (chosen) {
      ctx.prefill = points.bytes - matched;
      this.#remember(chosen, points);
    }
    return chosen;
  }

  /** A match of a `bytes`-long prompt as it counts against queued prefill (waitsLess): 0 unless it clears cacheThreshold and cacheMinChars. */
  #counted(match: number, bytes: number): number {
    return match >= this.#minMatch && match / bytes > this.#threshold ? match : 0;
  }

  /** Bytes of the prompt's prefix `w` was sent (its tree's deepest point on the prompt). */
  #matched(w: Worker, { hashes, ends }: PrefixPoints): number {
    const tenant = this.#tenants.get(w);
    if (!tenant) return 0;
    const d = heldDepth(hashes, tenant.points);
    return d === 0 ? 0 : ends[d - 1]!;
  }

  /**
   * The most load (in flight ÷ capacity, this request included) a prefix's holder may take on;
   * past it the holder is overloaded: above both balanceRelThreshold × its share of the fleet's
   * load (the requests in flight, this one included, shared in proportion to capacity) and
   * balanceAbsThreshold requests (of the mean capacity: a worker of half the mean capacity,
   * half as many). The first is consistent hashing's bounded load, relative to the mean: as
   * the fleet fills up, every worker's share grows with it, so a busy fleet keeps sending
   * prefixes to the workers that hold them (leaving them would add prefill work where there is
   * least room for it), while a worker running far ahead of the others is passed over. The
   * second keeps a lightly loaded fleet's few requests on the workers that hold their prefixes.
   * One bound per pick, whichever holder it is compared with.
   */
  maxLoad(c: Candidates): number {
    const share = (c.totalInFlight + 1) / Math.max(1, this.#capacity);
    const meanCapacity = this.#capacity / Math.max(1, this.#readyCount);
    return Math.max(this.#relThreshold * share, this.#absThreshold / meanCapacity);
  }

  /** Characters (bytes of UTF-8) of prompt remembered for `w`. */
  treeChars(w: Worker): number {
    return this.#tenants.get(w)?.bytes ?? 0;
  }

  onMembershipChange(ready: readonly Worker[]): void {
    const keep = new Set(ready);
    for (const [worker, tenant] of this.#tenants) {
      if (keep.has(worker)) continue;
      for (const h of tenant.points.keys()) this.#dropHolder(h, worker);
      this.#tenants.delete(worker);
    }
    this.#capacity = ready.reduce((n, w) => n + w.capacity, 0);
    this.#readyCount = ready.length;
  }

  /**
   * The holder with the least prefill waiting (then the least loaded) with room and at most
   * `maxLoad` among up to HOLDER_SCAN, from a random offset.
   */
  #bestHolder(holders: readonly Worker[], c: Candidates, maxLoad: number, random: Random): Worker | undefined {
    if (holders.length >= c.readyCount) return c.leastLoaded(random); // every ready worker holds it: the least loaded is never over maxLoad
    const n = holders.length;
    const start = Math.floor(random() * n);
    let best: Worker | undefined;
    for (let k = 0; k < n && k < HOLDER_SCAN; k++) {
      const w = holders[(start + k) % n]!;
      if (!c.has(w) || overloaded(w, maxLoad)) continue;
      if (best === undefined || waitsLess(w, 0, best, 0)) best = w;
    }
    return best;
  }

  #remember(worker: Worker, { hashes, ends }: PrefixPoints): void {
    if (hashes.length === 0) return;
    let tenant = this.#tenants.get(worker);
    if (!tenant) {
      tenant = { worker, points: new Map(), lru: new LinkedList(), bytes: 0 };
      this.#tenants.set(worker, tenant);
    }
    const { points, lru } = tenant;
    // The points it holds already are the prompt's first `held`; the others are new, made root
    // side first so each links to its parent.
    const held = heldDepth(hashes, points);
    let node = held === 0 ? undefined : points.get(hashes[held - 1]!);
    for (let i = held; i < hashes.length; i++) node = points.get(hashes[i]!) ?? this.#hold(tenant, hashes[i]!, node);
    // Touched deepest first, so the root ends up most recent and eviction trims prefixes from
    // their ends; the parent links reach every point without a lookup. A link that does not
    // name the expected point (only after a 32-bit hash collision) falls back to the map.
    for (let i = hashes.length - 1; i >= 0; i--) {
      const hash = hashes[i]!;
      if (node === undefined || node.hash !== hash || node.evicted)
        node = points.get(hash) ?? this.#hold(tenant, hash, undefined);
      if (lru.delete(node)) tenant.bytes -= node.bytes;
      node.bytes = ends[i]! - (i === 0 ? 0 : ends[i - 1]!);
      lru.add(node);
      tenant.bytes += node.bytes;
      node = node.parent;
    }
    while (tenant.bytes > this.#maxBytes) {
      const oldest = lru.first!;
      lru.delete(oldest);
      oldest.evicted = true;
      points.delete(oldest.hash);
      tenant.bytes -= oldest.bytes;
      this.#dropHolder(oldest.hash, worker);
    }
  }

  /** A new point for `tenant` (not yet in its LRU order), and the tenant's worker among its holders. */
  #hold(tenant: Tenant, hash: number, parent: Held | undefined): Held {
    const node: Held = { hash, bytes: 0, parent, evicted: false, prev: undefined, next: undefined };
    tenant.points.set(hash, node);
    const holders = this.#holders.get(hash);
    if (holders) holders.push(tenant.worker);
    else this.#holders.set(hash, [tenant.worker]);
    return node;
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

/**
 * How many of the prompt's points, from the root, `held` has (a worker's points, or the map
 * of every worker's). What a worker holds is closed under prefixes (a prompt's points are
 * touched deepest first, so a point is evicted before every point above it), and so is the
 * union: a binary search finds the first point not held in log₂ of the ~40 points, not one
 * lookup per point matched.
 */
function heldDepth(hashes: readonly number[], held: ReadonlyMap<number, unknown>): number {
  let lo = 0;
  let hi = hashes.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (held.has(hashes[mid]!)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Whether a request gets its first token sooner on `a`, whose cache holds `cachedA` bytes of its
 * prompt that count (PrefixCache.#counted), than on `b` holding `cachedB`. An engine prefills
 * every prompt it has admitted before it answers any of them, so the wait is the prefill left
 * there (Worker.prefill) plus the request's own. A cached byte counts CACHED_BYTE_WEIGHT
 * times: the prefill this request skips, and the same prefill kept out of the queue of the
 * requests that come after it. Ties go to the less loaded by requests in flight (decode shares
 * the steps).
 */
function waitsLess(a: Worker, cachedA: number, b: Worker, cachedB: number): boolean {
  const wa = a.prefill.left() - CACHED_BYTE_WEIGHT * cachedA;
  const wb = b.prefill.left() - CACHED_BYTE_WEIGHT * cachedB;
  if (wa !== wb) return wa < wb;
  return load(a) * b.capacity < load(b) * a.capacity;
}

/** Whether one more request would take `w` past the most load a pick allows it (PrefixCache.maxLoad). */
function overloaded(w: Worker, maxLoad: number): boolean {
  return (load(w) + 1) / w.capacity > maxLoad;
}

/** A worker with room drawn uniformly, or undefined when none has room. */
function randomCandidate(c: Candidates, random: Random): Worker | undefined {
  return c.size === 0 ? undefined : c.at(Math.floor(random() * c.size));
}
