/**
 * The two workloads of the balancing benchmarks, shared by the live run (bench/balancing.ts)
 * and the virtual-time run (bench/balancing-sim.ts), so both measure the same thing.
 */
import { resolve } from 'node:path';
import { readTrace, type TraceRequest } from '../../src/sim/cluster/trace.js';
import type { MultiTurnOptions } from '../../src/sim/workloads/multi-turn.js';

const ROOT = resolve(import.meta.dirname, '../..');
export const CONV_TRACE = resolve(ROOT, '../../shared/traces/azure-llm-2023-conv.csv');

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
