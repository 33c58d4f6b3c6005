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
  eachLevel(demand, o.floor ?? 0, (v, at) => {
    if (v > level) rise(v, at);
    else if (v < level) fall(v, at);
  });
  for (let k = 0; k < runStart.length; k++) events.push([runStart[k]!, 1], [k < level ? end : offAt[k]!, -1]);
  return { ...integrate(events, end), launches };
}

/**
 * Calls `step` with max(floor, demand) at 0 and at each of the demand's steps before its end,
 * checking that both are whole workers.
 */
function eachLevel(demand: StepCurve, floor: number, step: (workers: number, at: number) => void): void {
  if (!(Number.isInteger(floor) && floor >= 0)) throw new RangeError(`floor must be a whole number >= 0, got ${floor}`);
  step(floor, 0);
  for (let i = 0; i < demand.t.length; i++) {
    const at = demand.t[i]!;
    if (at >= demand.endMs) break;
    const v = Math.max(floor, demand.v[i]!);
    if (!(Number.isInteger(v) && v >= 0))
      throw new RangeError(`demand must be whole workers >= 0, got ${v} at ${at} ms`);
    step(v, at);
  }
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

/**
 * A window in which some level of the fleet must be ready: at some instant of [startMs, endMs]
 * at least `level` workers are ready (and so every level below it too). windowHits (work.ts)
 * derives them from the engine work that must be done inside a window.
 */
export interface HitWindow {
  readonly startMs: number;
  readonly endMs: number;
  readonly level: number;
}

/**
 * The cheapest schedule that covers `demand` and is ready at level k somewhere in every window
 * of `hits` of level ≥ k, under the cost model above; worker-seconds. The windows are taken as
 * closed, which only lowers the result (it is an infimum over schedules).
 *
 * Per level it is the layering argument with one more kind of need. Unit k's billed set B_k
 * is a union of intervals, each ready only from D after its start (or from 0 if it starts at
 * 0); instants with ≥ k ready lie in those ready parts Q. So Q covers N_k and meets every
 * window of level ≥ k, and |B_k| ≥ |Q| + min(first start of Q, D) + Σ_gaps of Q min(g, D):
 * each launch's D pays for the gap before it. This is the one-unit problem of the layering
 * with points in windows added; its least cost needs no measure of Q beyond N_k (a point meets
 * a window), so it is |N_k| plus a chain cost over anchors (0, N_k's intervals) and points:
 * Σ over consecutive elements of min(gap, D), nothing after the last. Windows meeting N_k are
 * met already; of the rest, one inside another is met whenever the inner one is. Moving one
 * point between its neighbours while it meets the same windows changes two gaps g1 + g2 =
 * const by ±x, and min(g1, D) + min(g2, D) is concave in x, so some optimum has every point at
 * a window's start or end: the chain over those candidates is a shortest path, solved per gap
 * of N_k with two sliding minima (gapChain). Σ_k is ≤ every schedule's cost, as in
 * clairvoyantBound. test/unit/sim/plan/bound.test.ts checks it against an exhaustive search.
 */
export function coveringBound(demand: StepCurve, hits: readonly HitWindow[], o: BoundOptions): number {
  const D = o.launchDelayMs;
  if (!(D >= 0) || !Number.isFinite(D)) throw new RangeError(`launch delay must be >= 0 ms, got ${D}`);
  const needs = levelIntervals(demand, o.floor ?? 0);
  let top = needs.length;
  for (const w of hits) if (w.level > top) top = w.level;
  // Windows by level: a window of level L is a need of every level 1..L.
  const sorted = [...hits].sort((a, b) => b.level - a.level);
  let total = 0;
  let next = 0;
  const open: HitWindow[] = [];
  for (let k = top; k >= 1; k--) {
    for (; next < sorted.length && sorted[next]!.level >= k; next++) open.push(sorted[next]!);
    total += unitCost(needs[k - 1] ?? [], open, D);
  }
  return total / 1000;
}

/**
 * What every schedule that coveringBound weighs makes at least: `peak`, the most workers ready at
 * once that a need or a window asks for, and `launches`, one for each unit (level) that a need or
 * a window asks for first at some t > 0, counted as clairvoyantBound counts a unit's first start
 * (up from t = 0 only where it is asked for at 0). Relaunches between its needs are not counted:
 * floors on the whole-worker schedule's launches and peak.
 * E.g. demand 1 from t = 0, a window of level 3 at [50, 70] s: peak 3, units 2 and 3 launched.
 */
export function coveringShape(
  demand: StepCurve,
  hits: readonly HitWindow[],
  floor = 0,
): { readonly launches: number; readonly peak: number } {
  const needs = levelIntervals(demand, floor);
  // firstAsked[k - 1]: the earliest start of a need of level k or of a window of level ≥ k.
  const firstAsked = needs.map((n) => n[0]?.[0] ?? Infinity);
  for (const w of hits) {
    for (let k = firstAsked.length; k < w.level; k++) firstAsked.push(Infinity);
    for (let k = 0; k < w.level; k++) if (w.startMs < firstAsked[k]!) firstAsked[k] = w.startMs;
  }
  const asked = firstAsked.filter((at) => at < Infinity);
  return { launches: asked.filter((at) => at > 0).length, peak: asked.length };
}

/** For each level k (index k − 1), the intervals [start, end) where max(floor, demand) ≥ k. */
function levelIntervals(demand: StepCurve, floor: number): [number, number][][] {
  const out: [number, number][][] = [];
  const since: number[] = [];
  let level = 0;
  const end = demand.endMs;
  const set = (to: number, at: number): void => {
    for (let k = level; k < to; k++) since[k] = at;
    for (let k = to; k < level; k++) (out[k] ??= []).push([since[k]!, at]);
    level = to;
  };
  eachLevel(demand, floor, (v, at) => {
    if (v !== level) set(v, at);
  });
  set(0, end);
  for (let k = 0; k < out.length; k++) out[k] ??= [];
  return out;
}

/** One unit's least cost: its needs N (sorted, disjoint) and windows it must meet. */
function unitCost(need: readonly [number, number][], windows: readonly HitWindow[], D: number): number {
  // Windows N does not meet, minimal (none inside another), by start: starts and ends both rise.
  const free = windows
    .filter((w) => !meets(need, w.startMs, w.endMs))
    .sort((a, b) => a.startMs - b.startMs || a.endMs - b.endMs);
  const minimal: HitWindow[] = [];
  let minEnd = Infinity;
  for (let i = free.length - 1; i >= 0; i--)
    if (free[i]!.endMs < minEnd) {
      minEnd = free[i]!.endMs;
      minimal.push(free[i]!);
    }
  minimal.reverse();
  let cost = 0;
  let x = 0;
  let w = 0;
  for (const [a, b] of need) {
    const from = w;
    while (w < minimal.length && minimal[w]!.startMs < a) w++;
    cost += gapChain(x, a, minimal.slice(from, w), D) + (b - a);
    x = b;
  }
  return cost + gapChain(x, undefined, minimal.slice(w), D);
}

/** Whether closed [s, e] meets one of the half-open intervals (sorted, disjoint). */
function meets(need: readonly [number, number][], s: number, e: number): boolean {
  let lo = 0;
  let hi = need.length;
  // The first interval ending after s.
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (need[mid]![1] <= s) lo = mid + 1;
    else hi = mid;
  }
  return lo < need.length && need[lo]![0] <= e;
}

/**
 * The least chain cost from anchor x to anchor y (none: the chain may stop anywhere) through
 * points meeting every window (minimal, by start, inside [x, y)): Σ min(gap, D).
 * g(p) = least cost up to a point at candidate p with every window starting at or before p met;
 * from q it is g(q) + min(p − q, D), allowed when no window lies wholly between q and p.
 */
function gapChain(x: number, y: number | undefined, windows: readonly HitWindow[], D: number): number {
  if (windows.length === 0) return y === undefined ? 0 : Math.min(y - x, D);
  const c = [...new Set(windows.flatMap((w) => [w.startMs, w.endMs]))].sort((a, b) => a - b);
  const m = windows.length;
  const g = new Float64Array(c.length);
  // A(i): windows starting at or before c[i]; B(i): the first window ending at or after c[i].
  let A = 0;
  let B = 0;
  const lastMet: number[] = [];
  const far = new SlidingMin(); // q with c[q] ≤ c[p] − D: g(q) + D
  const near = new SlidingMin(); // q with c[q] > c[p] − D: g(q) − c[q] + c[p]
  let farTo = 0; // candidates pushed to `far` so far
  let q0 = 0; // the first q whose windows reach B(p) − 1
  let best = Infinity;
  for (let p = 0; p < c.length; p++) {
    const at = c[p]!;
    while (A < m && windows[A]!.startMs <= at) A++;
    while (B < m && windows[B]!.endMs < at) B++;
    lastMet[p] = A - 1;
    while (q0 < p && lastMet[q0]! < B - 1) q0++;
    for (; farTo < p && c[farTo]! <= at - D; farTo++) far.push(farTo, g[farTo]! + D);
    let v = B === 0 ? Math.min(at - x, D) : Infinity;
    v = Math.min(v, far.min(q0), near.min(Math.max(q0, farTo)) + at);
    g[p] = v;
    near.push(p, v - at);
    if (A === m) best = Math.min(best, v + (y === undefined ? 0 : Math.min(y - at, D)));
  }
  return best;
}

/** The least value among pushed entries whose index is ≥ a rising lower limit. */
class SlidingMin {
  readonly #index: number[] = [];
  readonly #value: number[] = [];
  #head = 0;
  push(index: number, value: number): void {
    while (this.#index.length > this.#head && this.#value[this.#value.length - 1]! >= value) {
      this.#index.pop();
      this.#value.pop();
    }
    this.#index.push(index);
    this.#value.push(value);
  }
  /** The least value with index ≥ from (from never falls between calls). */
  min(from: number): number {
    while (this.#head < this.#index.length && this.#index[this.#head]! < from) this.#head++;
    return this.#head < this.#index.length ? this.#value[this.#head]! : Infinity;
  }
}
