import type { Clock, Random } from '../clock.js';
import type { Candidates } from '../load-index.js';
import type { Worker } from '../types.js';

export type { Candidates } from '../load-index.js';

/**
 * What a policy may look at besides the workers. Every field but `random` may be
 * missing (a /generate call has no session key, an embeddings call no prompt text):
 * policies fall back to load alone then.
 */
export interface PickContext {
  /** A client-chosen key that should stick to one worker (affinity policies). */
  readonly sessionKey?: string | undefined;
  /** The prompt (the whole message list), for prefix-affinity policies. */
  readonly promptText?: string | undefined;
  /**
   * Workers this request already failed on (names), so a retry goes elsewhere. Admission
   * handles it before any policy runs (the retry takes the least-loaded other serving
   * worker), as long as another serving worker exists.
   */
  readonly exclude?: ReadonlySet<string> | undefined;
  /**
   * The worker that alone holds what the request builds on (a stored answer: ResponseHomes).
   * Admission handles it before any policy runs: while that worker is ready and not ejected
   * the request goes there, waiting for a slot on it if need be; otherwise it is balanced as
   * any other (the engines may share their store; if not, the engine says it does not know it).
   */
  readonly home?: string | undefined;
  /** Seeded in tests and the simulation; used for tie-breaks. */
  readonly random: Random;
  /**
   * Set by a policy that estimates it, for the worker it returns: the prompt bytes that worker
   * will prefill (the prompt less the prefix it is expected to hold). The request's lease adds
   * them to the worker's prefill queue until its first byte. Unset: 0.
   */
  prefill?: number | undefined;
}

/**
 * Chooses one worker for a request. `candidates` are the ready workers indexed by load
 * (WorkerPool.loads): a policy may only return one for which `candidates.has(w)` holds, and
 * returns undefined only when `candidates.size` is 0. A pick must be O(1) or O(log n) in the
 * number of workers: no scans over the fleet.
 *
 * The caller takes a slot on the returned worker at once; policies that remember where
 * they sent what (prefix-cache) may record it in `pick`.
 */
export interface BalancerPolicy {
  readonly name: string;
  /**
   * True when `pick` reads `ctx.promptText`. The edges build the prompt text (every message of
   * the history joined) only for such a policy; the others are not handed it.
   */
  readonly readsPrompt?: boolean;
  pick(candidates: Candidates, ctx: PickContext): Worker | undefined;
  /** Called with the ready workers when one joins or leaves the ready set; stateless policies omit it. */
  onMembershipChange?(ready: readonly Worker[]): void;
  /** Called after a worker's in-flight count changed; for policies that index load themselves. */
  onLoadChange?(worker: Worker): void;
}

/** What a scraper of the workers' /metrics learned about one engine (see engine-load). */
export interface EngineLoadSample {
  /** Requests queued inside the engine (vllm:num_requests_waiting, tgi_queue_size). */
  readonly waiting: number;
  /** Requests in the engine's running batch (vllm:num_requests_running, tgi_batch_current_size). */
  readonly running: number;
  /** KV cache in use, 0..1 (vllm:kv_cache_usage_perc, older vllm:gpu_cache_usage_perc); undefined if not exported. */
  readonly kvCacheUsage?: number | undefined;
}

/** A policy that takes engine load pushed by a monitor; it never fetches on the request path. */
export interface EngineLoadSink {
  /**
   * One scrape round: a sample per ready worker scraped; `undefined` means the scrape failed or
   * the engine exports none of the known metrics.
   */
  reportEngineLoad(samples: ReadonlyMap<Worker, EngineLoadSample | undefined>): void;
}

export function isEngineLoadSink(p: BalancerPolicy): p is BalancerPolicy & EngineLoadSink {
  return typeof (p as Partial<EngineLoadSink>).reportEngineLoad === 'function';
}

/**
 * Knobs for the policies that have any; each is an option in src/config/options.ts, whose
 * defaults come from the policies' own exported DEFAULTS. Policies validate what they read.
 */
export interface BalancerOptions {
  /** Time for policies that judge freshness (engine-load). Default: a clock stuck at 0. */
  readonly clock?: Clock;
  readonly cacheThreshold?: number;
  readonly cacheMinChars?: number;
  readonly balanceAbsThreshold?: number;
  readonly balanceRelThreshold?: number;
  readonly prefixTreeMaxChars?: number;
  readonly sessionLoadFactor?: number;
  readonly prefixHashChars?: number;
  readonly prefixHashLoadFactor?: number;
  /** Engine samples older than this count as unknown (engine-load). */
  readonly engineMetricsStaleMs?: number;
}

export type BalancerFactory = (opts: BalancerOptions) => BalancerPolicy;
