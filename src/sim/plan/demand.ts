/**
 * The demand curve the clairvoyant bound covers: how many workers must be ready at each
 * instant for every request to wait at most `wait` at the gateway.
 *
 * A request holds a worker slot (one of `worker_capacity`) from its lease until its answer
 * ends, and that takes at least its service floor: the engine model's time for it alone on a
 * worker (a batch of one, the fastest step the model has) with as much of its prompt cached as
 * could possibly be (serviceFloorMs). A request that arrives at a and waits at most w is
 * therefore in service over all of [a + w, a + floor): it starts by a + w and cannot end before
 * a + floor. So, in ANY run where no request waits longer than w,
 *
 *   slots busy at t ≥ n_w(t) = #{requests with a + w ≤ t < a + floor}
 *   workers ready at t ≥ d_w(t) = ⌈n_w(t) / worker_capacity⌉
 *
 * and the cheapest schedule covering d_w (bound.ts) costs no more than that run. At w = 0 it is
 * the fleet that serves every request the moment it arrives. A larger w forgives waits and
 * lowers the bound; a run is compared with the bound at its own longest wait.
 */
import { DEFAULT_PROFILE, type EngineProfile } from '../engine-model.js';
import type { TraceRequest } from '../cluster/trace.js';
import { MOONCAKE_BLOCK_TOKENS } from '../cluster/trace.js';
import type { StepCurve } from './bound.js';

/**
 * The least time a request can take on the engine model: one step per output token (at least
 * one: prefill produces the first) at a batch of one, plus the prefill of the prompt less its
 * cached prefix (the engine always computes one prompt token).
 * E.g. the defaults (12 ms + 0.05 ms per sequence, 10,000 prompt tokens/s), 1,000 prompt
 * tokens, 10 out, nothing cached: 10 × 12.05 + 100 = 220.5 ms.
 */
export function serviceFloorMs(p: EngineProfile, promptTokens: number, outputTokens: number, cachedTokens = 0): number {
  const prompt = Math.max(0, promptTokens);
  const cached = Math.min(Math.max(0, cachedTokens), Math.max(0, prompt - 1));
  const steps = Math.max(1, outputTokens);
  return steps * (p.decodeStepMs + p.decodeStepMsPerSeq) + ((prompt - cached) / p.prefillTokensPerSecond) * 1000;
}

/**
 * A request's least share of a worker's time: its steps shared by a full batch of `capacity`
 * sequences, and its own prefill (see Demand.workSeconds).
 * E.g. 1,000 prompt tokens, 10 out, capacity 30: 10 × (12/30 + 0.05) + 100 = 104.5 ms.
 */
export function engineFloorMs(
  p: EngineProfile,
  capacity: number,
  promptTokens: number,
  outputTokens: number,
  cachedTokens = 0,
): number {
  const prompt = Math.max(0, promptTokens);
  const cached = Math.min(Math.max(0, cachedTokens), Math.max(0, prompt - 1));
  const steps = Math.max(1, outputTokens);
  const batch = Math.min(capacity, p.maxNumSeqs);
  return (
    steps * (p.decodeStepMs / batch + p.decodeStepMsPerSeq) + ((prompt - cached) / p.prefillTokensPerSecond) * 1000
  );
}

/**
 * Most of each request's prompt any engine could have cached: its leading Mooncake blocks
 * whose ids an earlier request also carried (a prefix cache hit needs the block and everything
 * before it seen before; this counts the ids alone, so it never counts too few). Requests
 * without block ids share nothing (their prompts are unique text).
 */
export function cacheCeiling(): (req: TraceRequest) => number {
  const seen = new Set<number>();
  return (req) => {
    const ids = req.hashIds;
    if (!ids) return 0;
    let run = 0;
    while (run < ids.length && seen.has(ids[run]!)) run++;
    for (const id of ids) seen.add(id);
    return Math.min(req.promptTokens, run * MOONCAKE_BLOCK_TOKENS);
  };
}

export interface DemandOptions {
  /** Concurrent requests per worker (worker_capacity). */
  readonly capacity: number;
  /** Longest gateway queue wait allowed, ms. */
  readonly waitMs: number;
  /** Arrivals come this many times faster than the requests say (a trace's --time-scale). */
  readonly timeScale?: number;
  readonly profile?: Partial<EngineProfile>;
}

/** The demand in slots and in workers, and what it was made from. */
export interface Demand {
  /** n_w(t): requests that must be in service. */
  readonly slots: StepCurve;
  /** d_w(t) = ⌈n_w(t) / capacity⌉. */
  readonly workers: StepCurve;
  readonly requests: number;
  /** Σ service floors: the slot-seconds of work, however it is scheduled. */
  readonly slotSeconds: number;
  /**
   * The least engine time the requests take, summed: a worker runs one step at a time, a step
   * serves at most `capacity` sequences and costs decodeStepMs + decodeStepMsPerSeq per sequence,
   * plus the prompt tokens it prefills. So ready worker-seconds ≥ Σ steps·(decodeStepMs/capacity
   * + decodeStepMsPerSeq) + Σ uncached prompt / prefill rate, for any run that serves them all.
   */
  readonly workSeconds: number;
  /** Each request's arrival (ms, scaled) and least engine time (ms), by arrival: windowHits' input. */
  readonly arrivalMs: Float64Array;
  readonly engineMs: Float64Array;
}

/** The demand curve of `requests` (sorted by arrival, as the trace readers yield them). */
export function demandCurve(requests: Iterable<TraceRequest>, o: DemandOptions): Demand {
  if (!(Number.isInteger(o.capacity) && o.capacity >= 1))
    throw new RangeError(`capacity must be a whole number >= 1, got ${o.capacity}`);
  if (!(o.waitMs >= 0)) throw new RangeError(`wait must be >= 0 ms, got ${o.waitMs}`);
  const scale = o.timeScale ?? 1;
  const profile = { ...DEFAULT_PROFILE, ...o.profile };
  const cached = cacheCeiling();
  const starts: number[] = [];
  const ends: number[] = [];
  let count = 0;
  let work = 0;
  let engine = 0;
  let endMs = 0;
  const arrivals: number[] = [];
  const engines: number[] = [];
  for (const r of requests) {
    count++;
    const a = r.arrivalMs / scale;
    const hit = cached(r);
    const floor = serviceFloorMs(profile, r.promptTokens, r.outputTokens, hit);
    work += floor;
    const least = engineFloorMs(profile, o.capacity, r.promptTokens, r.outputTokens, hit);
    engine += least;
    arrivals.push(a);
    engines.push(least);
    if (a + floor > endMs) endMs = a + floor;
    if (floor > o.waitMs) {
      starts.push(a + o.waitMs);
      ends.push(a + floor);
    }
  }
  const endSorted = Float64Array.from(ends).sort();
  const slots = sweep(starts, endSorted, endMs);
  return {
    slots,
    workers: ceilCurve(slots, o.capacity),
    requests: count,
    slotSeconds: work / 1000,
    workSeconds: engine / 1000,
    arrivalMs: Float64Array.from(arrivals),
    engineMs: Float64Array.from(engines),
  };
}

/** Counts open intervals over time from sorted starts and ends; one point per change. */
function sweep(starts: readonly number[], ends: Float64Array, endMs: number): StepCurve {
  const t: number[] = [0];
  const v: number[] = [0];
  let open = 0;
  let i = 0;
  let j = 0;
  while (i < starts.length || j < ends.length) {
    // An end and a start at the same instant: the end first (the slot is free again).
    const at = j < ends.length && (i >= starts.length || ends[j]! <= starts[i]!) ? ends[j]! : starts[i]!;
    for (; j < ends.length && ends[j] === at; j++) open--;
    for (; i < starts.length && starts[i] === at; i++) open++;
    if (t[t.length - 1] === at) v[v.length - 1] = open;
    else if (v[v.length - 1] !== open) {
      t.push(at);
      v.push(open);
    }
  }
  return { t, v, endMs };
}

/** ⌈curve / capacity⌉, keeping only the points where the result changes. */
function ceilCurve(c: StepCurve, capacity: number): StepCurve {
  const t: number[] = [];
  const v: number[] = [];
  for (let i = 0; i < c.t.length; i++) {
    const w = Math.ceil(c.v[i]! / capacity);
    if (v.length === 0 || v[v.length - 1] !== w) {
      t.push(c.t[i]!);
      v.push(w);
    }
  }
  return { t, v, endMs: c.endMs };
}
