/**
 * The workloads and engine profiles of the balancing benchmarks, shared by the live run
 * (bench/balancing.ts) and the virtual-time run (bench/balancing-sim.ts), so both measure the
 * same thing.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { readTrace, type TraceRequest } from '../../src/sim/cluster/trace.js';
import type { EngineProfile } from '../../src/sim/engine-model.js';
import type { MultiTurnOptions } from '../../src/sim/workloads/multi-turn.js';

const ROOT = resolve(import.meta.dirname, '../..');
/** The shared traces: $TRACES, else ../shared/traces beside the checkout (or one level up, for a worktree). */
const TRACES =
  process.env.TRACES ??
  [resolve(ROOT, '../shared/traces'), resolve(ROOT, '../../shared/traces')].find((d) => existsSync(d)) ??
  resolve(ROOT, '../shared/traces');
export const CONV_TRACE = resolve(TRACES, 'azure-llm-2023-conv.csv');
/** Mooncake's FAST'25 synthetic trace: 3,993 requests over ~17 minutes, mean prompt 15.3k tokens. */
export const MOONCAKE_TRACE = resolve(TRACES, 'mooncake-synthetic.jsonl');

/**
 * The engines behind the 4 workers. `gpu`: the simulator's default (vLLM, Llama-3.1-8B, one
 * A100-80GB): the prefix cache is whatever of the 440k-token KV cache running requests leave
 * free. `offload`: the same plus 2M tokens (256 GiB at 128 KiB a token) of host memory behind
 * it, as LMCache or vLLM's CPU offloading add; prefix-cache's tree is sized to match
 * (prefix_tree_max_chars 10M ≈ 2.4M tokens at 4 characters each).
 */
export const PROFILES = {
  gpu: { profile: {} as Partial<EngineProfile>, prefixTreeMaxChars: undefined },
  offload: { profile: { offloadCacheTokens: 2_000_000 } as Partial<EngineProfile>, prefixTreeMaxChars: 10_000_000 },
} as const;
export type ProfileName = keyof typeof PROFILES;

/**
 * Offered loads, as time scales of the Mooncake trace (×0.5: half its rate). Near saturation is
 * the highest at which least-connection still answered every request (its fleet's prefill
 * utilisation ~0.70 on gpu, ~0.83 with offload; the next step up timed requests out); moderate
 * puts that utilisation at ~0.4–0.5.
 */
export const MOONCAKE_LOADS: Record<ProfileName, { moderate: number; saturated: number }> = {
  gpu: { moderate: 0.3, saturated: 0.5 },
  offload: { moderate: 0.4, saturated: 0.7 },
};

/** Sized for a shared 2-core machine: about a minute live. */
export const MULTI_TURN = { seed: 11, sessions: 60, sessionsPerSecond: 2 } as const satisfies Partial<MultiTurnOptions>;

/** Trace slice: from minute 10, 60 s of arrivals replayed 2× faster; replies capped at 300 tokens. */
export const CONV = { fromSeconds: 600, seconds: 60, speedup: 2, maxReplyTokens: 300 } as const;

/**
 * The conv slice, arrivals in ms from the slice's start (not yet sped up), at least 1 and at
 * most CONV.maxReplyTokens tokens out each.
 */
export async function convSlice(file = CONV_TRACE): Promise<TraceRequest[]> {
  const from = CONV.fromSeconds * 1000;
  return (await readTrace(file))
    .filter((r) => r.arrivalMs >= from && r.arrivalMs < from + CONV.seconds * 1000)
    .map((r) => ({
      ...r,
      arrivalMs: r.arrivalMs - from,
      outputTokens: Math.max(1, Math.min(CONV.maxReplyTokens, r.outputTokens)),
    }));
}
