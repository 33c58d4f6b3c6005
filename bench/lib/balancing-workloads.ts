/**
 * The workloads and engine profiles of the balancing benchmarks, shared by the live run
 * (bench/balancing.ts) and the virtual-time run (bench/balancing-sim.ts), so both measure the
 * same thing.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseSimulateArgs } from '../../src/sim/cluster/args.js';
import type { OracleKind } from '../../src/sim/cluster/oracle.js';
import { simulate, type SimulationResult } from '../../src/sim/cluster/run.js';
import { readTrace, type TraceRequest } from '../../src/sim/cluster/trace.js';
import type { SimWorkload } from '../../src/sim/cluster/workload.js';
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
 * the highest step of 0.05 at which least-connection still answers every request, per profile
 * (`flockserve simulate`, seed 1, chunked prefill at the default 2048 tokens a step: on gpu ×0.6
 * answers all 3,993 and ×0.65 times 97 out; with offload ×0.75 and ×0.8, 38 out): past it the
 * fleet is over capacity and every policy's numbers are the queue timeout's. Moderate puts least-connection's prefill utilisation at
 * ~0.4–0.5.
 */
export const MOONCAKE_LOADS: Record<ProfileName, { moderate: number; saturated: number }> = {
  gpu: { moderate: 0.3, saturated: 0.6 },
  offload: { moderate: 0.4, saturated: 0.75 },
};

/**
 * Engines 5× faster than the default profile (prefill 50k tokens/s, a token every 2.4 ms), for
 * live runs of Mooncake-sized prompts that take minutes rather than a quarter of an hour: the
 * simulator's flags, and the same engines as a profile for the virtual-time yardstick.
 */
export const FAST_ENGINES = {
  speedup: 5,
  simArgs: ['--prefill-tps', '50000', '--token-interval', '2.4'],
  profile: { prefillTokensPerSecond: 50_000, decodeStepMs: 2.4, decodeStepMsPerSeq: 0 } as Partial<EngineProfile>,
} as const;

/** The 4 workers of every balancing run. */
export const WORKERS = 4;

/**
 * One virtual-time run of a balancing workload: `WORKERS` simulated workers already up, min =
 * max (the autoscaler never acts), the gateway's defaults but for `flags` (e.g.
 * `['--load_balancer', 'prefix-cache']`); `oracle` routes with a clairvoyant yardstick instead
 * (true: the longest cached prefix).
 */
export async function simulateFleet(o: {
  readonly workload: SimWorkload;
  readonly profile?: Partial<EngineProfile>;
  readonly flags?: readonly string[];
  readonly oracle?: boolean | OracleKind;
  readonly seed: number;
}): Promise<SimulationResult> {
  const argv = [
    '--min_workers',
    `${WORKERS}`,
    '--max_workers',
    `${WORKERS}`,
    '--seed',
    `${o.seed}`,
    ...(o.flags ?? []),
  ];
  const a = parseSimulateArgs(argv);
  if (a === 'help') throw new Error(`unexpected --help in ${argv.join(' ')}`);
  return simulate({
    workload: o.workload,
    config: a.config,
    launchDelay: { distribution: 'fixed', meanMs: 0, cv: 0 },
    seed: o.seed,
    sampleIntervalMs: 60_000,
    initialWorkers: WORKERS,
    ...(o.profile ? { profile: o.profile } : {}),
    oracle: o.oracle ?? false,
  });
}

/** `seconds` of a trace from `fromS`, arrivals in ms from the slice's start. */
export function traceSlice(rows: readonly TraceRequest[], fromS: number, seconds: number): TraceRequest[] {
  return rows
    .filter((r) => r.arrivalMs >= fromS * 1000 && r.arrivalMs < (fromS + seconds) * 1000)
    .map((r) => ({ ...r, arrivalMs: r.arrivalMs - fromS * 1000 }));
}

/** The live runs' Mooncake slice starts at minute 10; `--mode full` replays 300 s of it, `short` 90. */
export const MOONCAKE_LIVE = { fromSeconds: 600, fullSeconds: 300, shortSeconds: 90 } as const;

/**
 * The virtual-time runs' conv workload: minutes 10–20 of the conversation trace, arrivals in ms
 * from the slice's start, lengths as the file has them.
 */
export async function convTenMinutes(file = CONV_TRACE): Promise<TraceRequest[]> {
  return traceSlice(await readTrace(file), 600, 600);
}

/** Sized for a shared 2-core machine: about a minute live. */
export const MULTI_TURN = { seed: 11, sessions: 60, sessionsPerSecond: 2 } as const satisfies Partial<MultiTurnOptions>;

/** Trace slice: from minute 10, 60 s of arrivals replayed 2× faster; replies capped at 300 tokens. */
export const CONV = { fromSeconds: 600, seconds: 60, speedup: 2, maxReplyTokens: 300 } as const;

/**
 * The conv slice (`seconds` of it from CONV.fromSeconds), arrivals in ms from the slice's start
 * (not yet sped up), at least 1 and at most CONV.maxReplyTokens tokens out each.
 */
export async function convSlice(seconds: number = CONV.seconds, file = CONV_TRACE): Promise<TraceRequest[]> {
  return traceSlice(await readTrace(file), CONV.fromSeconds, seconds).map((r) => ({
    ...r,
    outputTokens: Math.max(1, Math.min(CONV.maxReplyTokens, r.outputTokens)),
  }));
}
