/**
 * A performance model of one inference engine (vLLM-style continuous batching), for the
 * engine simulator `flockserve-sim` and the virtual-time cluster simulation. It is a
 * SIMULATION: no model runs; it only decides when each token of each request would appear.
 *
 * Pure: no I/O, time only through the injected Clock. One timer per engine step (never one
 * per request), so thousands of sequences cost one timer.
 *
 * The step loop, as in vLLM's scheduler (FCFS, no preemption):
 *   1. admit waiting requests in FIFO order while running < maxNumSeqs and the request's
 *      prompt + output tokens fit in the free KV cache (head-of-line blocking: the first
 *      request that does not fit stops admission);
 *   2. the step lasts  decodeStepMs + decodeStepMsPerSeq × batch + Σ admitted prompt / prefillTokensPerSecond;
 *   3. at its end every running sequence gets one token (a newly admitted one gets its first
 *      token: prefill produces it); finished sequences free their KV reservation.
 *
 * Worked example with the defaults, 4 requests of 1000 prompt tokens at t=0:
 *   step 1 = 12 + 0.05×4 + 4000/10000×1000 = 412.2 ms → first tokens at 412.2 ms,
 *   then one token every 12.2 ms per request until each has its output length.
 *
 * Prefix cache (vLLM's automatic prefix caching, simplified): a request may carry the chained
 * hashes of its prompt's whole blocks (promptBlockHashes in src/core/hashing.ts, one block =
 * PREFIX_BLOCK_TOKENS tokens). At admission the longest run of leading blocks found in an LRU
 * of `prefixCacheTokens / PREFIX_BLOCK_TOKENS` block hashes is skipped by the prefill (at
 * least one prompt token is always computed, as in vLLM); then the prompt's blocks are
 * inserted. The cache is kept apart from the KV reservation (vLLM keeps cached blocks in
 * free KV memory until it needs them). E.g. a 1,000-token prompt whose first 50 blocks
 * (800 tokens) are cached prefills 200 tokens: 20 ms instead of 100 ms at 10k tokens/s.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { PREFIX_BLOCK_CHARS } from '../core/hashing.js';

/** Tokens per prefix-cache block: 64 characters at the simulator's 4 characters per token. */
export const PREFIX_BLOCK_TOKENS = PREFIX_BLOCK_CHARS / 4;

export interface EngineProfile {
  /** Most sequences in one running batch (vLLM --max-num-seqs). */
  readonly maxNumSeqs: number;
  /** Prompt tokens prefilled per second. */
  readonly prefillTokensPerSecond: number;
  /** Duration of one decode step with an empty batch, ms. */
  readonly decodeStepMs: number;
  /** Extra decode step time per running sequence, ms (attention and KV reads grow with the batch). */
  readonly decodeStepMsPerSeq: number;
  /** KV cache capacity in tokens. */
  readonly kvCacheTokens: number;
  /** Prompt tokens the prefix cache remembers (LRU); 0 turns it off. Default: kvCacheTokens. */
  readonly prefixCacheTokens?: number;
}

/**
 * vLLM serving meta-llama/Llama-3.1-8B-Instruct (BF16) on one NVIDIA A100-80GB.
 *
 * - decodeStepMs 12: a sweep of this model on vLLM on an A100-40GB measured ~75 tokens/s at
 *   concurrency 1 (≈13.3 ms per token) and almost flat latency up to concurrency 8
 *   (https://johnmusgrave.com/p/vllm-throughput-latency-sweep-on). The 80GB part has ~30% more
 *   memory bandwidth (2.0 vs 1.55 TB/s), hence ~12 ms.
 * - decodeStepMsPerSeq 0.05: batch 8 → 12.4 ms, batch 64 → 15.2 ms, batch 256 → 24.8 ms; the
 *   same sweep shows per-token latency climbing past concurrency 8.
 * - prefillTokensPerSecond 10000: prefill is compute-bound; 2 × 8e9 FLOP per token against the
 *   A100's 312 TFLOPS BF16 gives ~19.5k tokens/s at 100% MFU, ~10k at a typical 50%.
 * - maxNumSeqs 256: vLLM's default for the OpenAI server; it picks 1024 only for ≥70 GiB GPUs
 *   that are not A100s (vllm tests/engine/test_arg_utils.py, test_defaults_with_usage_context).
 * - kvCacheTokens 440000: Llama-3.1-8B keeps 32 layers × 8 KV heads × 128 dims × 2 (K,V) × 2 bytes
 *   = 128 KiB per token; 80 GiB × 0.9 utilisation − ~15 GiB weights − ~3 GiB activations
 *   ≈ 54 GiB → ~440k tokens.
 */
export const DEFAULT_PROFILE: EngineProfile = Object.freeze({
  maxNumSeqs: 256,
  prefillTokensPerSecond: 10_000,
  decodeStepMs: 12,
  decodeStepMsPerSeq: 0.05,
  kvCacheTokens: 440_000,
  // The whole KV cache's worth of tokens: vLLM keeps freed blocks cached until memory is needed.
  prefixCacheTokens: 440_000,
});

export type FinishReason = 'length' | 'stop';

export interface EngineRequest {
  readonly promptTokens: number;
  /** Upper bound of generated tokens; reserved in the KV cache at admission. */
  readonly maxTokens: number;
  /** Tokens actually generated (≤ maxTokens); defaults to maxTokens. Fewer ends with 'stop'. */
  readonly outputTokens?: number;
  /** Chained hashes of the prompt's whole blocks (promptBlockHashes), for the prefix cache; none → no lookup. */
  readonly promptBlocks?: readonly number[];
  /** Called once per generated token, index 0, 1, 2, ... */
  onToken(index: number): void;
  onDone(reason: FinishReason): void;
  /** Called (on a 0 ms timer, never inside submit) when the request can never be served. */
  onError?(error: Error): void;
}

export interface EngineHandle {
  /** Removes the sequence wherever it is (counts as aborted); no callback fires afterwards. */
  cancel(): void;
}

export interface EngineStats {
  readonly running: number;
  readonly waiting: number;
  /** Reserved KV tokens / capacity, 0..1 (vLLM's kv_cache_usage_perc is a fraction too). */
  readonly kvCacheUsage: number;
  readonly received: number;
  readonly completed: number;
  readonly aborted: number;
  /** Requests that could never fit the KV cache. */
  readonly rejected: number;
  readonly promptTokens: number;
  readonly generationTokens: number;
  /** Prompt tokens looked up in the prefix cache, and those found (vLLM's prefix_cache_queries/hits). */
  readonly prefixCacheQueries: number;
  readonly prefixCacheHits: number;
}

type SeqState = 'waiting' | 'running' | 'finished';

interface Sequence {
  readonly req: EngineRequest;
  readonly output: number;
  /** prompt + maxTokens: what admission reserves. */
  readonly reserve: number;
  /** Prompt tokens to compute: the prompt less its cached prefix (set at admission). */
  prefill: number;
  generated: number;
  state: SeqState;
}

export class EngineModel {
  readonly profile: EngineProfile;
  readonly #clock: Clock;
  #waiting: Sequence[] = [];
  #running: Sequence[] = [];
  #kvReserved = 0;
  #timer: TimerHandle | null = null;
  /** True while a step's end is being processed: submits then join the next step directly. */
  #inStep = false;
  #received = 0;
  #completed = 0;
  #aborted = 0;
  #rejected = 0;
  #promptTokens = 0;
  #generationTokens = 0;
  #prefixQueries = 0;
  #prefixHits = 0;
  /** Cached block hashes, least recently used first (a Map keeps insertion order). */
  readonly #prefixCache = new Map<number, true>();
  readonly #prefixCacheBlocks: number;
  /**
   * A live iterator at the least recently used entry. A fresh `keys()` per eviction would
   * step over every entry deleted since the Map last compacted (touching a block deletes and
   * re-adds it), which made a full cache cost ~1 ms per request; a live iterator steps over
   * each deleted entry once. Everything it has passed was evicted or touched (moved behind it).
   */
  #evictFrom: MapIterator<number> | undefined;

  constructor(profile: Partial<EngineProfile> = {}, clock: Clock) {
    this.profile = { ...DEFAULT_PROFILE, ...stripUndefined(profile) };
    if (this.profile.maxNumSeqs < 1) throw new RangeError('maxNumSeqs must be at least 1');
    if (this.profile.prefillTokensPerSecond <= 0) throw new RangeError('prefillTokensPerSecond must be positive');
    this.#clock = clock;
    const cacheTokens = this.profile.prefixCacheTokens ?? this.profile.kvCacheTokens;
    if (!(cacheTokens >= 0)) throw new RangeError('prefixCacheTokens must be >= 0');
    this.#prefixCacheBlocks = Math.floor(cacheTokens / PREFIX_BLOCK_TOKENS);
  }

  submit(req: EngineRequest): EngineHandle {
    this.#received++;
    const output = Math.max(0, Math.min(req.maxTokens, req.outputTokens ?? req.maxTokens));
    const seq: Sequence = {
      req,
      output,
      reserve: Math.max(0, req.promptTokens) + Math.max(0, req.maxTokens),
      prefill: Math.max(0, req.promptTokens),
      generated: 0,
      state: 'waiting',
    };
    if (seq.reserve > this.profile.kvCacheTokens) {
      this.#rejected++;
      seq.state = 'finished';
      const t = this.#clock.setTimer(0, () =>
        req.onError?.(
          new Error(
            `request needs ${seq.reserve} KV cache tokens (prompt + max tokens), capacity is ${this.profile.kvCacheTokens}`,
          ),
        ),
      );
      return { cancel: () => t.cancel() };
    }
    this.#waiting.push(seq);
    this.#kick();
    return { cancel: () => this.#cancel(seq) };
  }

  stats(): EngineStats {
    return {
      running: this.#running.length,
      waiting: this.#waiting.length,
      kvCacheUsage: this.#kvReserved / this.profile.kvCacheTokens,
      received: this.#received,
      completed: this.#completed,
      aborted: this.#aborted,
      rejected: this.#rejected,
      promptTokens: this.#promptTokens,
      generationTokens: this.#generationTokens,
      prefixCacheQueries: this.#prefixQueries,
      prefixCacheHits: this.#prefixHits,
    };
  }

  /** Cancels every sequence (e.g. on shutdown) and stops the step loop. */
  abortAll(): void {
    for (const seq of [...this.#running, ...this.#waiting]) this.#cancel(seq);
    this.#timer?.cancel();
    this.#timer = null;
  }

  #cancel(seq: Sequence): void {
    if (seq.state === 'finished') return;
    if (seq.state === 'waiting') {
      const i = this.#waiting.indexOf(seq);
      if (i >= 0) this.#waiting.splice(i, 1);
    } else {
      const i = this.#running.indexOf(seq);
      if (i >= 0) this.#running.splice(i, 1);
      this.#kvReserved -= seq.reserve;
    }
    seq.state = 'finished';
    this.#aborted++;
  }

  /** Starts the loop when idle, on a 0 ms timer so requests submitted at the same instant share a step. */
  #kick(): void {
    if (this.#timer || this.#inStep) return;
    this.#timer = this.#clock.setTimer(0, () => {
      this.#timer = null;
      this.#beginStep();
    });
  }

  #beginStep(): void {
    const p = this.profile;
    let prefillTokens = 0;
    let admit = 0;
    for (const seq of this.#waiting) {
      if (this.#running.length + admit >= p.maxNumSeqs) break;
      if (this.#kvReserved + seq.reserve > p.kvCacheTokens) break;
      this.#kvReserved += seq.reserve;
      seq.prefill = this.#prefixLookup(seq.req);
      prefillTokens += seq.prefill;
      admit++;
    }
    for (const seq of this.#waiting.splice(0, admit)) {
      seq.state = 'running';
      this.#running.push(seq);
      this.#promptTokens += seq.req.promptTokens;
    }
    if (this.#running.length === 0) return; // idle until the next submit
    const stepMs =
      p.decodeStepMs + p.decodeStepMsPerSeq * this.#running.length + (prefillTokens / p.prefillTokensPerSecond) * 1000;
    this.#timer = this.#clock.setTimer(stepMs, () => {
      this.#timer = null;
      this.#endStep();
    });
  }

  #endStep(): void {
    this.#inStep = true;
    try {
      // A snapshot: callbacks may cancel or submit; a cancelled sequence is skipped by its state.
      for (const seq of [...this.#running]) {
        if (seq.state !== 'running') continue;
        if (seq.generated < seq.output) {
          seq.req.onToken(seq.generated++);
          this.#generationTokens++;
        }
        if (seq.state === 'running' && seq.generated >= seq.output) this.#finish(seq);
      }
    } finally {
      this.#inStep = false;
    }
    this.#beginStep();
  }

  /**
   * Looks the prompt's blocks up (leading run only), then caches them; returns the prompt
   * tokens left to prefill. Blocks are touched deepest first so a prefix is evicted from its end.
   */
  #prefixLookup(req: EngineRequest): number {
    const prompt = Math.max(0, req.promptTokens);
    const blocks = req.promptBlocks;
    if (!blocks || this.#prefixCacheBlocks === 0) return prompt;
    const cache = this.#prefixCache;
    let hit = 0;
    while (hit < blocks.length && cache.has(blocks[hit]!)) hit++;
    const cached = Math.min(hit * PREFIX_BLOCK_TOKENS, Math.max(0, prompt - 1));
    this.#prefixQueries += prompt;
    this.#prefixHits += cached;
    for (let i = blocks.length - 1; i >= 0; i--) {
      cache.delete(blocks[i]!);
      cache.set(blocks[i]!, true);
    }
    while (cache.size > this.#prefixCacheBlocks) {
      let oldest = this.#evictFrom?.next();
      if (!oldest || oldest.done) {
        this.#evictFrom = cache.keys();
        oldest = this.#evictFrom.next();
      }
      cache.delete(oldest.value!);
    }
    return prompt - cached;
  }

  #finish(seq: Sequence): void {
    const i = this.#running.indexOf(seq);
    if (i >= 0) this.#running.splice(i, 1);
    this.#kvReserved -= seq.reserve;
    seq.state = 'finished';
    this.#completed++;
    seq.req.onDone(seq.output < seq.req.maxTokens ? 'stop' : 'length');
  }
}

function stripUndefined<T extends object>(o: Partial<T>): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
