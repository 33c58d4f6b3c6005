/**
 * A performance model of one inference engine (vLLM-style continuous batching), for the
 * engine simulator `flockserve-sim` and the virtual-time cluster simulation. It is a
 * SIMULATION: no model runs; it only decides when each token of each request would appear.
 *
 * Pure: no I/O, time only through the injected Clock. One timer per engine step (never one
 * per request), so thousands of sequences cost one timer.
 *
 * The step loop, as in vLLM's scheduler (FCFS, no preemption):
 *   1. every running sequence whose prompt is prefilled is scheduled for one decode token;
 *   2. the request part-way through its prefill (at most one) continues with the next chunk;
 *   3. waiting requests are admitted in FIFO order while running < maxNumSeqs, the step's
 *      token budget is not spent, and the request's prompt + output tokens fit in the free KV
 *      cache (head-of-line blocking: the first request that does not fit stops admission); each
 *      prefills as much of its prompt as the budget has left;
 *   4. the step lasts  decodeStepMs + decodeStepMsPerSeq × batch + prefill tokens of this step / prefillTokensPerSecond;
 *   5. at its end every running sequence whose prefill is complete gets one token (one whose
 *      prefill this step completes gets its first token: prefill produces it); finished
 *      sequences free their KV reservation.
 *
 * The token budget is `maxNumBatchedTokens` (vLLM --max-num-batched-tokens): vLLM's V1
 * engine always prefills in chunks; it schedules running requests first (a decode takes one
 * token, a part-prefilled prompt its next chunk) and then admits waiting ones while budget is
 * left (vllm/v1/core/sched/scheduler.py, Scheduler.schedule). The default profile's budget is
 * 2048, vLLM's on an A100. 0: no budget, every admitted prompt is prefilled whole in the step that
 * admits it (vLLM's V0 engine without chunked prefill), so a long prompt stalls every running
 * decode for its whole prefill.
 *
 * Worked example with no budget, 4 requests of 1000 prompt tokens at t=0:
 *   step 1 = 12 + 0.05×4 + 4000/10000×1000 = 412.2 ms → first tokens at 412.2 ms,
 *   then one token every 12.2 ms per request until each has its output length.
 *
 * Worked example with the default budget of 2048, 2 requests A and B of 3000 prompt tokens at t=0:
 *   step 1: A 2048 tokens               = 12 + 0.05×1 + 204.8 = 216.85 ms
 *   step 2: A 952 (done), B 1096        = 12 + 0.05×2 + 204.8 = 216.9 ms  → A's first token at 433.75 ms
 *   step 3: A decodes, B 1904 (done)    = 12 + 0.05×2 + 190.4 = 202.5 ms  → B's first at 636.25 ms, A's second
 *   (without a budget both first tokens come at 12.1 + 600 = 612.1 ms).
 *
 * Prefix cache (vLLM's automatic prefix caching): a request may carry the chained hashes of
 * its prompt's whole blocks (promptBlockHashes in src/core/hashing.ts; one block =
 * PREFIX_BLOCK_TOKENS = 16 tokens, vLLM's default block size). The cache lives in the KV cache,
 * as vLLM's does: a running request holds its prompt blocks (shared with every other running
 * request whose prompt has them: one copy, reference-counted) plus private room for the rest of
 * its prompt and its output; when it ends, its blocks stay cached in free KV memory, least
 * recently released first in line for eviction (the deepest block of a prompt first, so a
 * prefix is evicted from its end). Admission needs free room for the private part and for the
 * prompt blocks no running request holds yet; cached free blocks are evicted to make it. At
 * admission the longest run of leading blocks found cached is skipped by the prefill (at least
 * one prompt token is always computed, as in vLLM). So the cache holds what the KV memory does
 * not need for running requests: nearly all of it when the engine is idle, little when it is
 * full. `prefixCacheTokens` bounds it further (0 turns caching and sharing off).
 *
 * KV offload (LMCache, vLLM's CPU offloading), off by default: with `offloadCacheTokens` > 0,
 * a free cached block that must leave GPU memory moves to host memory instead of being
 * dropped, up to that many tokens (least recently released dropped first). A prompt's leading
 * run may continue into host blocks; they are loaded back at `offloadTokensPerSecond` (PCIe),
 * not recomputed, and count as hits.
 *
 * Worked example, kvCacheTokens 440,000: a 12,000-token prompt (750 blocks) whose first 700
 * blocks (11,200 tokens) are cached prefills 800 tokens, 80 ms instead of 1.2 s at 10k tokens/s,
 * and takes 50 new blocks + its output's room from free memory.
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
  /** Most prompt tokens the prefix cache keeps (it lives in the KV cache, so never more than kvCacheTokens); 0 turns it off. Default: kvCacheTokens. */
  readonly prefixCacheTokens?: number;
  /** Host-memory tier of the prefix cache, tokens (KV offload); 0 (default) = none. */
  readonly offloadCacheTokens?: number;
  /** Tokens per second loaded back from the host tier. Default 160,000: ~20 GB/s of PCIe at 128 KiB per token (Llama-3.1-8B). */
  readonly offloadTokensPerSecond?: number;
  /**
   * Token budget of one step (vLLM --max-num-batched-tokens): decodes first, then prompt chunks.
   * 0: none, every admitted prompt prefills whole in one step. vLLM's OpenAI server
   * defaults to 2048 on A100s and GPUs under 70 GiB, 8192 on larger ones (H100, H200, MI300x)
   * (vllm/engine/arg_utils.py, EngineArgs._set_default_args; tests/engine/test_arg_utils.py,
   * test_defaults_with_usage_context). Like vLLM, at least maxNumSeqs, so every running sequence
   * is scheduled in every step.
   */
  readonly maxNumBatchedTokens?: number;
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
 * - maxNumBatchedTokens 2048: the same rule's token budget for an A100 (8192 on the larger GPUs).
 * - kvCacheTokens 440000: Llama-3.1-8B's config.json has num_hidden_layers 32,
 *   num_key_value_heads 8 and head_dim 128 (hidden_size 4096 / 32 attention heads), so a token
 *   keeps 2 (K,V) × 32 × 8 × 128 × 2 bytes (BF16) = 128 KiB. The A100-80GB has 80 GiB; vLLM's
 *   --gpu-memory-utilization 0.9 gives it 72 GiB, less 15 GiB of weights (8.03 B parameters × 2
 *   bytes) and ~3 GiB of activation peak and CUDA graphs: ≈ 54 GiB of KV cache → ~440k tokens,
 *   computed as vLLM computes the "GPU KV cache size" it logs at start-up.
 */
export const DEFAULT_PROFILE: EngineProfile = Object.freeze({
  maxNumSeqs: 256,
  prefillTokensPerSecond: 10_000,
  decodeStepMs: 12,
  decodeStepMsPerSeq: 0.05,
  kvCacheTokens: 440_000,
  maxNumBatchedTokens: 2048,
});

const DEFAULT_OFFLOAD_TOKENS_PER_SECOND = 160_000;

/** The step token budget an engine with `profile` runs with: its own, else the default profile's (0: none). */
export function stepBudget(profile: Partial<EngineProfile> = {}): number {
  return profile.maxNumBatchedTokens ?? DEFAULT_PROFILE.maxNumBatchedTokens ?? 0;
}

/**
 * Why a step's token budget is refused, or undefined: 0 (none) or a whole number at least
 * maxNumSeqs, as vLLM requires (every running sequence's decode must fit in a step).
 */
export function tokenBudgetError(maxNumBatchedTokens: number, maxNumSeqs: number): string | undefined {
  if (maxNumBatchedTokens === 0) return undefined;
  if (Number.isInteger(maxNumBatchedTokens) && maxNumBatchedTokens >= maxNumSeqs) return undefined;
  return `max_num_batched_tokens (${maxNumBatchedTokens}) must be 0 (no budget) or a whole number at least max_num_seqs (${maxNumSeqs})`;
}

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

/** How the model runs, apart from the engine it models. */
export interface EngineModelOptions {
  /**
   * Call `onToken` for the first token only (index 0): for a caller that only needs to know when
   * the answer starts and when it ends (the cluster simulation). The model then visits a
   * sequence at the step that admits it and the step that finishes it, not at every step in
   * between; timings, order of callbacks and every stat are the same, except that generation
   * tokens are counted as each request ends (finished, or cancelled: the tokens of the steps
   * ended by then). Default false: a call per token, as a streaming server needs.
   */
  readonly firstTokenOnly?: boolean;
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
  /** Of the hits, tokens loaded back from the host tier (KV offload). */
  readonly offloadCacheHits: number;
  /** Time spent prefilling (and loading offloaded blocks), ms: the busy share of a prefill-bound engine. */
  readonly prefillMs: number;
}

type SeqState = 'waiting' | 'running' | 'finished';

interface Sequence {
  readonly req: EngineRequest;
  readonly output: number;
  /** prompt + maxTokens: what the request needs of the KV cache in all. */
  readonly reserve: number;
  /** The prompt's whole blocks the cache may share (none when caching is off). */
  readonly blocks: readonly number[];
  /** Their cache entries while it runs (set at admission). */
  held: CachedBlock[];
  /** KV tokens of its own while running: reserve less its shared blocks. */
  readonly private: number;
  /** Prompt tokens still to compute: the prompt less its cached prefix (set at admission), less the chunks prefilled. */
  prefillLeft: number;
  /** Time to load its host-tier blocks back, ms, spent in the step that admits it. */
  loadMs: number;
  generated: number;
  state: SeqState;
  /** The step that completes its prefill (its first token's; -1 before), and the step that finishes it. */
  firstStep: number;
  lastStep: number;
}

const NO_BLOCKS: readonly number[] = Object.freeze([]);
const NO_SEQUENCES: readonly Sequence[] = Object.freeze([]);
const NO_HELD: CachedBlock[] = [];

/** One cached block. Sets of these keep the eviction orders (identity-hashed, insertion-ordered). */
interface CachedBlock {
  readonly hash: number;
  /** Running requests holding it; 0: cached in free GPU memory; OFFLOADED: in host memory. */
  holders: number;
}

const OFFLOADED = -1;

/** Tokens a prompt's `hitBlocks` cached leading blocks save: a prompt all cached still computes its last token. */
function cachedTokens(promptTokens: number, hitBlocks: number): number {
  return Math.min(hitBlocks * PREFIX_BLOCK_TOKENS, Math.max(0, promptTokens - 1));
}

export class EngineModel {
  readonly profile: EngineProfile;
  readonly #clock: Clock;
  readonly #firstTokenOnly: boolean;
  /** Steps begun (the running step's index is one less), and steps whose end has been processed. */
  #stepsBegun = 0;
  #stepsEnded = 0;
  /** The sequences whose prefill the running step completes (their first token), in admission order. */
  #firsts: readonly Sequence[] = NO_SEQUENCES;
  /** The running sequence part-way through its prefill: at most one, as prefill is FCFS. */
  #partial: Sequence | null = null;
  /** Tokens one step schedules (maxNumBatchedTokens; Infinity: no budget). */
  readonly #budget: number;
  /** firstTokenOnly: the sequences each later step finishes, by step, in admission order. */
  readonly #finishing = new Map<number, Sequence[]>();
  #waiting: Sequence[] = [];
  #running: Sequence[] = [];
  /** KV tokens in use by running requests: their private parts and the blocks they hold. */
  #kvUsed = 0;
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
  #offloadHits = 0;
  #prefillMs = 0;
  /** Every cached block by hash: held, free on the GPU, or offloaded. */
  readonly #blocks = new Map<number, CachedBlock>();
  /** The blocks no running request holds, least recently released first (a Set keeps insertion order). */
  readonly #evictable = new Set<CachedBlock>();
  /** Blocks moved to host memory, least recently moved first. */
  readonly #offloaded = new Set<CachedBlock>();
  readonly #cacheBlocks: number;
  readonly #offloadBlocks: number;
  /**
   * A live iterator at the least recently released entry. A fresh `values()` per eviction would
   * step over every entry deleted since the Set last compacted (pinning a block deletes it),
   * about 1 ms per request with a full cache; a live iterator steps over each deleted
   * entry once. Everything it has passed was evicted or pinned (and re-added behind it).
   */
  #evictFrom: SetIterator<CachedBlock> | undefined;
  /** The same, at the least recently offloaded block. */
  #dropFrom: SetIterator<CachedBlock> | undefined;

  constructor(profile: Partial<EngineProfile> = {}, clock: Clock, options: EngineModelOptions = {}) {
    this.profile = { ...DEFAULT_PROFILE, ...stripUndefined(profile) };
    this.#firstTokenOnly = options.firstTokenOnly === true;
    if (this.profile.maxNumSeqs < 1) throw new RangeError('maxNumSeqs must be at least 1');
    if (this.profile.prefillTokensPerSecond <= 0) throw new RangeError('prefillTokensPerSecond must be positive');
    if (!(this.profile.kvCacheTokens > 0)) throw new RangeError('kvCacheTokens must be positive');
    this.#clock = clock;
    const cacheTokens = Math.min(this.profile.prefixCacheTokens ?? Infinity, this.profile.kvCacheTokens);
    if (!(cacheTokens >= 0)) throw new RangeError('prefixCacheTokens must be >= 0');
    this.#cacheBlocks = Math.floor(cacheTokens / PREFIX_BLOCK_TOKENS);
    const offload = this.#cacheBlocks > 0 ? (this.profile.offloadCacheTokens ?? 0) : 0;
    if (!(offload >= 0)) throw new RangeError('offloadCacheTokens must be >= 0');
    if (!((this.profile.offloadTokensPerSecond ?? 1) > 0))
      throw new RangeError('offloadTokensPerSecond must be positive');
    this.#offloadBlocks = Math.floor(offload / PREFIX_BLOCK_TOKENS);
    const budget = stepBudget(this.profile);
    const wrong = tokenBudgetError(budget, this.profile.maxNumSeqs);
    if (wrong) throw new RangeError(wrong);
    this.#budget = budget === 0 ? Infinity : budget;
  }

  submit(req: EngineRequest): EngineHandle {
    this.#received++;
    const output = Math.max(0, Math.min(req.maxTokens, req.outputTokens ?? req.maxTokens));
    const reserve = Math.max(0, req.promptTokens) + Math.max(0, req.maxTokens);
    // A block past the prompt's token count (text longer than its count says) is not shared.
    const fit = Math.floor(Math.max(0, req.promptTokens) / PREFIX_BLOCK_TOKENS);
    const all = this.#cacheBlocks > 0 ? (req.promptBlocks ?? NO_BLOCKS) : NO_BLOCKS;
    const blocks = all.length > fit ? all.slice(0, fit) : all;
    const seq: Sequence = {
      req,
      output,
      reserve,
      blocks,
      private: reserve - blocks.length * PREFIX_BLOCK_TOKENS,
      prefillLeft: 0,
      loadMs: 0,
      held: NO_HELD,
      generated: 0,
      state: 'waiting',
      firstStep: -1,
      lastStep: -1,
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

  /** Requests waiting for admission (stats().waiting, without making the rest). */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * How long a prompt of `promptTokens` whose whole blocks are `blocks`, submitted now, would wait
   * for its first token if nothing else arrived, ms: the prefill queued ahead of it (what is left
   * of the prompt part-way through, and each waiting prompt less the prefix cached here now) and
   * its own uncached part, in steps of the budget the running decodes leave. It leaves out waits
   * for KV-cache room and the decodes that end meanwhile. For a clairvoyant router in the
   * simulation; no engine exports it.
   */
  firstTokenMs(promptTokens: number, blocks: readonly number[]): number {
    let tokens = this.#uncached(promptTokens, blocks) + (this.#partial?.prefillLeft ?? 0);
    for (const seq of this.#waiting) tokens += this.#uncached(seq.req.promptTokens, seq.blocks);
    const p = this.profile;
    const decodes = this.#running.length - (this.#partial ? 1 : 0);
    const decodeMs = p.decodeStepMs + p.decodeStepMsPerSeq * (decodes + 1);
    if (this.#budget === Infinity) return decodeMs + this.#computeMs(tokens);
    const perStep = Math.max(1, this.#budget - decodes);
    return Math.ceil(tokens / perStep) * decodeMs + this.#computeMs(tokens);
  }

  /** Of a prompt of `promptTokens` whose whole blocks are `blocks`, the tokens a prefill here would compute now. */
  #uncached(promptTokens: number, blocks: readonly number[]): number {
    const prompt = Math.max(0, promptTokens);
    return this.#cacheBlocks === 0 ? prompt : prompt - cachedTokens(prompt, this.cachedPrefixBlocks(blocks));
  }

  stats(): EngineStats {
    return {
      running: this.#running.length,
      waiting: this.#waiting.length,
      kvCacheUsage: this.#kvUsed / this.profile.kvCacheTokens,
      received: this.#received,
      completed: this.#completed,
      aborted: this.#aborted,
      rejected: this.#rejected,
      promptTokens: this.#promptTokens,
      generationTokens: this.#generationTokens,
      prefixCacheQueries: this.#prefixQueries,
      prefixCacheHits: this.#prefixHits,
      offloadCacheHits: this.#offloadHits,
      prefillMs: this.#prefillMs,
    };
  }

  /**
   * Leading blocks of `blocks` cached here now (running requests', free, or offloaded to the
   * host): what a prefill would skip, in blocks. For a clairvoyant router in the simulation; no
   * engine exports it.
   */
  cachedPrefixBlocks(blocks: readonly number[]): number {
    let n = 0;
    while (n < blocks.length && this.#blocks.has(blocks[n]!)) n++;
    return n;
  }

  /** Cancels every sequence (e.g. on shutdown) and stops the step loop. */
  abortAll(): void {
    for (const seq of [...this.#running, ...this.#waiting]) this.#cancel(seq);
    this.#timer?.cancel();
    this.#timer = null;
    this.#finishing.clear();
    this.#firsts = NO_SEQUENCES;
    this.#stepsEnded = this.#stepsBegun;
  }

  #cancel(seq: Sequence): void {
    if (seq.state === 'finished') return;
    if (seq.state === 'waiting') {
      const i = this.#waiting.indexOf(seq);
      if (i >= 0) this.#waiting.splice(i, 1);
    } else {
      const i = this.#running.indexOf(seq);
      if (i >= 0) this.#running.splice(i, 1);
      this.#release(seq);
      if (seq === this.#partial) this.#partial = null;
      if (this.#firstTokenOnly && seq.firstStep >= 0)
        this.#generationTokens += Math.min(seq.output, this.#stepsEnded - seq.firstStep);
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
    const step = this.#stepsBegun;
    const partial = this.#partial;
    // Decodes first, one token each (the budget is at least maxNumSeqs, so they always fit).
    let budget = this.#budget - (this.#running.length - (partial ? 1 : 0));
    let prefillMs = 0;
    if (partial) {
      const chunk = Math.min(partial.prefillLeft, budget);
      partial.prefillLeft -= chunk;
      budget -= chunk;
      prefillMs += this.#computeMs(chunk);
    }
    // A request whose prompt is all cached still computes one token, so an admission spends budget.
    let admit = 0;
    for (const seq of this.#waiting) {
      if (budget <= 0 || this.#running.length + admit >= p.maxNumSeqs) break;
      if (this.#kvUsed + this.#roomNeeded(seq) > p.kvCacheTokens) break;
      this.#admit(seq);
      const chunk = Math.min(seq.prefillLeft, budget);
      seq.prefillLeft -= chunk;
      budget -= chunk;
      prefillMs += this.#computeMs(chunk) + seq.loadMs;
      admit++;
    }
    // Most steps admit nothing: no new array for them.
    const admitted = admit === 0 ? NO_SEQUENCES : this.#waiting.splice(0, admit);
    for (const seq of admitted) {
      seq.state = 'running';
      this.#running.push(seq);
      this.#promptTokens += seq.req.promptTokens;
    }
    // Only the last admitted can be left part-way (it spent the budget), after the partial one completes.
    const last = admitted.length > 0 ? admitted[admitted.length - 1]! : partial;
    this.#partial = last !== null && last.prefillLeft > 0 ? last : null;
    let firsts = admitted;
    if (partial !== null || this.#partial !== null) {
      const done = partial !== null && partial.prefillLeft === 0 ? [partial, ...admitted] : [...admitted];
      if (this.#partial !== null && done[done.length - 1] === this.#partial) done.pop();
      firsts = done;
    }
    for (const seq of firsts) {
      seq.firstStep = step;
      seq.lastStep = step + Math.max(seq.output, 1) - 1;
      if (this.#firstTokenOnly && seq.lastStep > step) {
        const at = this.#finishing.get(seq.lastStep);
        if (at) at.push(seq);
        else this.#finishing.set(seq.lastStep, [seq]);
      }
    }
    if (this.#running.length === 0) return; // idle until the next submit
    this.#stepsBegun++;
    this.#firsts = firsts;
    this.#prefillMs += prefillMs;
    const stepMs = p.decodeStepMs + p.decodeStepMsPerSeq * this.#running.length + prefillMs;
    this.#timer = this.#clock.setTimer(stepMs, this.#onStepEnd);
  }

  #computeMs(tokens: number): number {
    return (tokens / this.profile.prefillTokensPerSecond) * 1000;
  }

  /** One closure for every step's timer (an engine steps hundreds of thousands of times in a simulated hour). */
  readonly #onStepEnd = (): void => {
    this.#timer = null;
    this.#endStep();
  };

  #endStep(): void {
    this.#inStep = true;
    try {
      if (this.#firstTokenOnly) this.#endStepQuietly();
      else this.#endStepEveryToken();
    } finally {
      this.#inStep = false;
      this.#stepsEnded++;
    }
    this.#beginStep();
  }

  #endStepEveryToken(): void {
    // A snapshot: callbacks may cancel or submit; a cancelled sequence is skipped by its state.
    for (const seq of [...this.#running]) {
      if (seq.state !== 'running' || seq.prefillLeft > 0) continue;
      if (seq.generated < seq.output) {
        seq.req.onToken(seq.generated++);
        this.#generationTokens++;
      }
      if (seq.state === 'running' && seq.generated >= seq.output) this.#finish(seq);
    }
  }

  /**
   * The same callbacks in the same order as #endStepEveryToken, less the tokens after the first:
   * the running array is in admission order, so the sequences this step finishes that an
   * earlier step admitted come first (in admission order), then those whose prefill this step
   * completes (prefill is FCFS: no sequence admitted after one still prefilling completes before it).
   */
  #endStepQuietly(): void {
    const step = this.#stepsBegun - 1;
    const finishing = this.#finishing.get(step);
    if (finishing) {
      this.#finishing.delete(step);
      for (const seq of finishing) if (seq.state === 'running') this.#finish(seq);
    }
    for (const seq of this.#firsts) {
      if (seq.state !== 'running') continue;
      if (seq.output > 0) seq.req.onToken(0);
      if (seq.state === 'running' && seq.lastStep === step) this.#finish(seq);
    }
  }

  /** KV tokens admitting `seq` takes from free GPU memory: its private part and the blocks no running request holds. */
  #roomNeeded(seq: Sequence): number {
    let unheld = 0;
    for (const h of seq.blocks) if (!((this.#blocks.get(h)?.holders ?? 0) > 0)) unheld++;
    return seq.private + unheld * PREFIX_BLOCK_TOKENS;
  }

  /**
   * Admits `seq`: looks its blocks up (leading run only), holds them, makes room by moving or
   * evicting free cached blocks; sets the prompt tokens it computes and its host-tier load time.
   */
  #admit(seq: Sequence): void {
    const p = this.profile;
    const prompt = Math.max(0, seq.req.promptTokens);
    const blocks = seq.blocks;
    this.#kvUsed += seq.private;
    if (seq.req.promptBlocks === undefined || this.#cacheBlocks === 0) {
      this.#evict();
      seq.prefillLeft = prompt;
      return;
    }
    const cache = this.#blocks;
    const hit = this.cachedPrefixBlocks(blocks);
    let offloadedHit = 0;
    const held: CachedBlock[] = new Array<CachedBlock>(blocks.length);
    for (let i = 0; i < blocks.length; i++) {
      const h = blocks[i]!;
      let block = cache.get(h);
      if (block === undefined) {
        block = { hash: h, holders: 0 };
        cache.set(h, block);
        this.#kvUsed += PREFIX_BLOCK_TOKENS;
      } else if (block.holders === 0) {
        this.#evictable.delete(block);
        this.#kvUsed += PREFIX_BLOCK_TOKENS;
      } else if (block.holders === OFFLOADED) {
        this.#offloaded.delete(block);
        block.holders = 0;
        this.#kvUsed += PREFIX_BLOCK_TOKENS;
        if (i < hit) offloadedHit++;
      }
      block.holders++;
      held[i] = block;
    }
    seq.held = held;
    const cached = cachedTokens(prompt, hit);
    const loaded = Math.min(offloadedHit * PREFIX_BLOCK_TOKENS, cached);
    this.#prefixQueries += prompt;
    this.#prefixHits += cached;
    this.#offloadHits += loaded;
    this.#evict();
    seq.loadMs = (loaded / (p.offloadTokensPerSecond ?? DEFAULT_OFFLOAD_TOKENS_PER_SECOND)) * 1000;
    seq.prefillLeft = prompt - cached;
  }

  /** A running request ends: its private room is freed, its blocks stay cached once no one holds them. */
  #release(seq: Sequence): void {
    this.#kvUsed -= seq.private;
    const held = seq.held;
    // Deepest first, so the prefix's root is released last and evicted last.
    for (let i = held.length - 1; i >= 0; i--) {
      const block = held[i]!;
      if (--block.holders === 0) {
        this.#evictable.add(block);
        this.#kvUsed -= PREFIX_BLOCK_TOKENS;
      }
    }
    seq.held = NO_HELD;
    this.#evict();
  }

  /**
   * Free cached blocks beyond the GPU memory running requests leave (or the cache's bound) go,
   * least recently released first: to the host tier when there is one, else away; the host
   * tier drops its least recently moved beyond its size.
   */
  #evict(): void {
    const freeBlocks = Math.floor((this.profile.kvCacheTokens - this.#kvUsed) / PREFIX_BLOCK_TOKENS);
    const held = this.#blocks.size - this.#evictable.size - this.#offloaded.size;
    const keep = Math.max(0, Math.min(freeBlocks, this.#cacheBlocks - held));
    while (this.#evictable.size > keep) {
      let oldest = this.#evictFrom?.next();
      if (!oldest || oldest.done) {
        this.#evictFrom = this.#evictable.values();
        oldest = this.#evictFrom.next();
      }
      const block = oldest.value!;
      this.#evictable.delete(block);
      if (this.#offloadBlocks > 0) {
        block.holders = OFFLOADED;
        this.#offloaded.add(block);
      } else this.#blocks.delete(block.hash);
    }
    while (this.#offloaded.size > this.#offloadBlocks) {
      let oldest = this.#dropFrom?.next();
      if (!oldest || oldest.done) {
        this.#dropFrom = this.#offloaded.values();
        oldest = this.#dropFrom.next();
      }
      this.#offloaded.delete(oldest.value!);
      this.#blocks.delete(oldest.value!.hash);
    }
  }

  #finish(seq: Sequence): void {
    const i = this.#running.indexOf(seq);
    if (i >= 0) this.#running.splice(i, 1);
    this.#release(seq);
    seq.state = 'finished';
    this.#completed++;
    if (this.#firstTokenOnly) this.#generationTokens += seq.output;
    seq.req.onDone(seq.output < seq.req.maxTokens ? 'stop' : 'length');
  }
}

function stripUndefined<T extends object>(o: Partial<T>): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
