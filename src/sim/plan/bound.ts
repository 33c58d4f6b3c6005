/**
 * The clairvoyant bound: the cheapest fleet schedule that knows the whole demand curve in
 * advance and how long a launch takes. Pure: curves in, numbers out.
 *
 * Cost model (what the simulation bills): a worker bills from its launch until it is gone and
 * serves only from `launchDelay` after its launch; workers up at t = 0 are there at no launch
 * cost (as a gateway that has been running). Demand d(t) is the workers that must be ready at t.
 *
 * Per-unit layering is optimal. Cut the demand into units: unit k is needed on N_k = {t: d(t) ≥ k}.
 * For one unit, each gap of length g between two needed intervals is bridged (cost g) or torn
 * down and relaunched (cost launchDelay), whichever is less, and its first need at t0 costs
 * min(t0, launchDelay) (launched in time, or up from t = 0). So
 *
 *   cost = ∫ d(t) dt + Σ_k [ min(t0_k, D) + Σ_gaps of k min(g, D) ]
 *
 * and no schedule does better: in any schedule, let B_k = {t: billed(t) ≥ k}. Billed only rises
 * at a launch, so a maximal interval [s, e) of B_k with s > 0 starts with a launch, and the
 * workers billed then that were launched before s number at most k − 1: fewer than k are ready
 * on [s, s + D). B_k must cover N_k, so each of its intervals reaches its first need only D after
 * its start: exactly the one-unit problem, whose least cost is unit k's term above. Cost =
 * Σ_k |B_k| ≥ Σ_k term_k, and the layered schedule (unit k = one worker at a time) attains it.
 * test/unit/sim/plan/bound.test.ts checks this against an exhaustive search on small curves.
 *
 * E.g. D = 60 s; unit 2 needed on [100, 110) and [150, 160): lead min(100, 60) = 60, gap 40 < 60
 * bridged: 60 + 10 + 40 + 10 = 120 worker-seconds, one launch. With the gap at 100 s instead:
 * 60 + 10 + 60 + 10 = 140, two launches.
 */

/** A piecewise-constant curve: value `v[i]` on [t[i], t[i+1]) (ms), the last until `endMs`. */
export interface StepCurve {
  readonly t: ArrayLike<number>;
  readonly v: ArrayLike<number>;
  readonly endMs: number;
}

export interface BoundOptions {
  /** How long a launch takes before the worker serves, ms. */
  readonly launchDelayMs: number;
  /** Workers kept all the time, whatever the demand (min_workers), over [0, endMs). */
  readonly floor?: number;
}

export interface BoundResult {
  readonly workerSeconds: number;
  /**
   * Worker starts other than those needed at t = 0: launches and relaunches (a unit first needed
   * before one launch delay has passed counts too, though the bound has it up from t = 0).
   */
  readonly launches: number;
  /** Most workers billed at once. */
  readonly peak: number;
  /** Workers billed over time, the schedule's shape (for charts). */
  readonly billed: StepCurve;
}

/** The cheapest schedule for `demand` (whole workers) under the cost model above. */
export function clairvoyantBound(demand: StepCurve, o: BoundOptions): BoundResult {
  const D = o.launchDelayMs;
  if (!(D >= 0) || !Number.isFinite(D)) throw new RangeError(`launch delay must be >= 0 ms, got ${D}`);
  const floor = o.floor ?? 0;
  if (!(Number.isInteger(floor) && floor >= 0)) throw new RangeError(`floor must be a whole number >= 0, got ${floor}`);
  const end = demand.endMs;
  // Per unit (index k − 1): when its current billed run started, and when it was last not needed.
  const runStart: number[] = [];
  const offAt: number[] = [];
  const events: [at: number, delta: number][] = [];
  let launches = 0;
  let level = 0;
  const rise = (to: number, at: number): void => {
    for (let k = level; k < to; k++) {
      if (runStart[k] === undefined) {
        runStart[k] = at >= D ? at - D : 0;
        if (at > 0) launches++;
      } else if (at - offAt[k]! > D) {
        events.push([runStart[k]!, 1], [offAt[k]!, -1]);
        runStart[k] = at - D;
        launches++;
      }
    }
    level = to;
  };
  const fall = (to: number, at: number): void => {
    for (let k = to; k < level; k++) offAt[k] = at;
    level = to;
  };
  rise(floor, 0);
  const n = demand.t.length;
  for (let i = 0; i < n; i++) {
    const at = demand.t[i]!;
    if (at >= end) break;
    const v = Math.max(floor, demand.v[i]!);
    if (!(Number.isInteger(v) && v >= 0))
      throw new RangeError(`demand must be whole workers >= 0, got ${v} at ${at} ms`);
    if (v > level) rise(v, at);
    else if (v < level) fall(v, at);
  }
  for (let k = 0; k < runStart.length; k++) events.push([runStart[k]!, 1], [k < level ? end : offAt[k]!, -1]);
  return { ...integrate(events, end), launches };
}

/** Σ of the runs' lengths, the peak, and the billed curve from +1/−1 events. */
function integrate(events: [number, number][], endMs: number): Omit<BoundResult, 'launches'> {
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const t: number[] = [];
  const v: number[] = [];
  let billed = 0;
  let peak = 0;
  let area = 0;
  let last = 0;
  for (const [at, delta] of events) {
    area += billed * (at - last);
    last = at;
    billed += delta;
    if (billed > peak) peak = billed;
    if (t.length > 0 && t[t.length - 1] === at) v[v.length - 1] = billed;
    else {
      t.push(at);
      v.push(billed);
    }
  }
  return { workerSeconds: area / 1000, peak, billed: { t, v, endMs } };
}
