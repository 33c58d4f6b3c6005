import type { LoadBucket } from '../load-history.js';
import { settle } from './settle.js';
import { activeWorkers } from './snapshot.js';
import type { AutoscalerOptions, AutoscalerPolicy, ScaleDecision, ScaleSnapshot } from './types.js';

/** Default of `queue_wait_slo`: the p99 gateway queue wait, seconds, an interactive endpoint holds. */
export const DEFAULT_QUEUE_WAIT_SLO_S = 1;

/** The share of requests whose arrival-time load the fleet is sized for. */
const QUANTILE = 0.99;
/** The arrival rate planned for: over this long. */
const RATE_WINDOW_MS = 5 * 60_000;
/** The shares a bucket's arrivals are spread over between its mean load and its peak. */
const ARRIVAL_SHARES = 4;
/** A bucket's peak is measured above the mean of the buckets this long before it. */
const BASELINE_BUCKETS = 6;
/** Scale-downs at least this far apart: the smaller fleet's load is seen (two fit points) before the next. */
const DOWN_PACE_MS = 2 * 60_000;
/** No scale-down before the history covers this long (a gateway just started has not seen its load). */
const MIN_HISTORY_MS = 5 * 60_000;
/**
 * A scale-down reads the slope at its most while the history is shorter than this: a fleet that has
 * held this long has seen its load move, or been surplus for long enough to try one fewer.
 */
const CAUTIOUS_HISTORY_MS = 30 * 60_000;
/** Buckets in a row with requests waiting (and some waiting now) that make an overload sustained: no scale-down then. */
const SUSTAINED_BUCKETS = 3;

/**
 * Sizes the fleet for a p99 queue-wait SLO (queue_wait_slo) from the recent load, and keeps a
 * worker as long as a relaunch would cost (ski rental). The default policy.
 *
 * Inputs (ScaleSnapshot): the load history in 10 s buckets (LoadHistory: peak and mean of in
 * flight + waiting, waiting, ready workers, arrivals, departures, for the last hour), requests
 * waiting now, the observed launch durations, worker_capacity C.
 *
 *   D    the median observed launch duration (before any is seen: downscale_delay)
 *   λ    the arrival rate over the last 5 minutes
 *   S(b) = a0 + a1·b  a request's time on a worker carrying b in flight: a0 its own work, a1 what
 *        each other request adds (its prefill, longer steps), fitted on the hour's minutes
 *        (fitServiceModel); at r workers each carries b(r) = (λ/r)·a0 / (1 − λ·a1/r)
 *   E    how far above the load just before it the load that 99% of requests arrived into
 *        stood: bursts and fluctuations (burstExcess)
 *   need the fewest r with λ·a1/r ≤ 0.95 (not saturated by prefills), b(r) ≤ C, and peaks
 *        r·b(r) + E within what r·C slots drain inside the SLO, r·C·(1 + slo/S(C)): in a
 *        peak every slot is taken, so they free at the full-load pace S(C), not the mean's
 *
 * Up at once to `need` when more requests wait than the ready slots take in within the SLO (at S(C)),
 * and still do one SLO later (checked between evaluations too, every 2 s), unless the backlog
 * is not this fleet's overload (backlogAccount: carried from a smaller fleet and drained before
 * a launch lands, or a spike within the 1% a p99 allows); on the model's word alone only when the
 * mean load outgrows the fleet (prefills over its whole time, or in flight over its slots) and
 * two decisions in a row say so. Down one worker at a time, two
 * minutes apart, once the history covers five minutes, and only when the load of the last D
 * fits one worker fewer with 10% to spare: an idle worker costs less kept than relaunched
 * until it has been idle for about a launch.
 *
 * E.g. the conv trace's shape, S(b) = 2.6 + 0.13·b s, C = 30, slo = 1 s: at λ = 5.3 req/s one
 * worker would carry b = 44 > 30 slots; two carry 10.5 each, peaks 21 + E; with E = 30 that is
 * 51 ≤ 60·(1 + 1/6.5) = 69 → 2 workers. Bursts of 200 every 5 minutes over 0.5 req/s are half
 * the requests: E ≈ 200 → 6 workers (200 ≤ 6·30·(1 + 1/6.5) = 208), kept between bursts; one such burst in an hour of 5 req/s
 * (1% of the requests) moves nothing. A prefill-heavy load (S = 1.5 + 1.7·b) of 3.9 req/s: λ·a1
 * = 6.6 workers of prefill → 7.
 * Covered by test/unit/core/autoscaler/slo.test.ts; bench/results/autoscaling.md measures it.
 */
export class SloPolicy implements AutoscalerPolicy {
  readonly name = 'slo';
  readonly urgentIntervalMs = 2000;
  readonly sloS: number;
  /** Past needs (with room to spare) within the last launch delay: [clock ms, workers], oldest first. */
  readonly #needs: [number, number][] = [];
  #lastDownAt = -Infinity;
  /** The previous decision's model wanted more workers than there were. */
  #wantedUp = false;
  /** Since when more requests have waited than the ready slots take in within the SLO. */
  #overSince: number | undefined;

  constructor(opts: AutoscalerOptions = {}) {
    const slo = opts['queueWaitSlo'] ?? DEFAULT_QUEUE_WAIT_SLO_S;
    if (typeof slo !== 'number' || !(slo >= 0) || !Number.isFinite(slo))
      throw new RangeError(`slo: queue_wait_slo must be a number >= 0, got ${String(slo)}`);
    this.sloS = slo;
  }

  decide(s: ScaleSnapshot, now: number): ScaleDecision {
    const d = settle(this.#raw(s, now), s, now);
    if (d.desired < activeWorkers(s)) this.#lastDownAt = now;
    return d;
  }

  urgent(s: ScaleSnapshot, now: number): ScaleDecision | undefined {
    const waiting = s.waiting ?? 0;
    if (!(waiting > 0) || waiting <= estimate(s, this.sloS).drainable) {
      this.#overSince = undefined;
      return undefined;
    }
    const d = this.decide(s, now);
    return d.desired > activeWorkers(s) ? d : undefined;
  }

  #raw(s: ScaleSnapshot, now: number): ScaleDecision {
    const e = estimate(s, this.sloS);
    const needs = this.#needs;
    needs.push([now, e.needDown]);
    while (needs.length > 0 && needs[0]![0] < now - e.launchMs) needs.shift();
    let held = 0;
    for (const [, n] of needs) held = Math.max(held, n);
    const W = activeWorkers(s);
    const seenMs = (s.history?.length ?? 0) * (s.historyBucketMs ?? 10_000);
    // Up to what the load needs at once; down one worker at a time (the next decision sees the
    // load on the smaller fleet), only when even the last launch delay's load fits with room to
    // spare, and not before the history has seen a few minutes of load.
    // An idle fleet (nothing arrived in the rate window) needs no more history to go down;
    // scale-to-zero still waits for an idle queue_tracking_window (settle).
    const idle = e.need === 0 && s.queueLength === 0;
    const down =
      held < W && !e.sustained && (idle || (seenMs >= MIN_HISTORY_MS && now - this.#lastDownAt >= DOWN_PACE_MS));
    // Up at once when more requests wait than the slots take in within the SLO, and still do
    // one SLO later (or some have waited for three buckets): a shorter wait holds the SLO, and a
    // launch lands too late for it. On the model's word alone (a rise it sees coming) only when the mean load outgrows the
    // fleet's slots, the previous decision said so too and the fleet did not just shrink: a
    // model fitted on a minute of the smaller fleet's load is not yet sure, and headroom for
    // bursts is bought when they make requests wait.
    // A spike whose wait the slots clear within the SLO is gone long before a launch lands,
    // which would then be paid for a launch delay or more after it.
    const over = (s.waiting ?? 0) > e.drainable;
    if (!over) this.#overSince = undefined;
    else this.#overSince ??= now;
    // A backlog is launched for only when it is an overload of the fleet there is: not one
    // carried from a smaller fleet that the ready workers drain before a launch could land (a
    // cold start's), and not a spike whose late requests, with every other the fleet of this
    // size made late in the history, stay within the 1% a p99 SLO allows (a launch for it lands
    // after it and is then paid for a launch delay).
    const overloaded =
      !e.backlog.transient &&
      ((over && now - this.#overSince! >= this.sloS * 1000 && (e.backlog.carried || e.backlog.overBudget)) ||
        e.sustained);
    const foreseen = e.needMean > W;
    const up = e.need > W && (overloaded || (foreseen && this.#wantedUp && now - this.#lastDownAt >= DOWN_PACE_MS));
    this.#wantedUp = foreseen;
    const desired = up ? e.need : down ? W - 1 : W;
    const verb = desired > W ? 'scale up' : desired < W ? 'scale down' : 'no change';
    const hold =
      desired === W && held > e.need
        ? `; kept ${W} (${held} needed with room to spare within the last ${(e.launchMs / 1000).toFixed(0)} s launch)`
        : '';
    return { desired, reason: `${verb}: ${e.why}${hold}` };
  }
}

interface Estimate {
  /** Workers that hold the load now: below it, scale up. */
  readonly need: number;
  /**
   * Workers that hold the mean load at all (prefills within their time, in flight within their
   * slots), bursts and margins aside: a rise the model sees coming is
   * launched for only when this grows past the fleet (headroom for bursts is bought when they
   * make requests wait, and kept).
   */
  readonly needMean: number;
  /** Workers that hold it with room to spare (DOWN_MARGIN): the most a scale-down goes to. */
  readonly needDown: number;
  readonly sustained: boolean;
  readonly backlog: BacklogAccount;
  /**
   * Requests that may wait now and still reach a slot within the SLO: the ready slots free
   * ready·C·slo/S(C) of them in that time. A request waits only when every slot is taken, so
   * they free at the full-load pace, as sizing assumes of a peak (a burst fills them with
   * fresh requests, all prefilling at once). A wait that short is no overload to launch for: a
   * launch lands long after it has drained.
   */
  readonly drainable: number;
  readonly launchMs: number;
  readonly why: string;
}

/**
 * Time a request spends on a worker as the worker's load grows: S(b) = a0 + a1·b seconds, b the
 * requests in flight per ready worker. a0 is a request's own time (its decode steps, its prefill),
 * a1 what each other request in flight adds (the prefills it brings, longer steps). An engine
 * with continuous batching is close to this line (a prefill-heavy one has a large a1).
 */
export interface ServiceModel {
  readonly a0: number;
  readonly a1: number;
}

/** Buckets per point of the fit: a minute. */
const FIT_BUCKETS = 6;
/** The lighter and heavier halves' b must differ by this share of b̄ for their slope to be taken alone. */
const FULL_TRUST_SPREAD = 0.5;
/** At least this share of the mean service time is a request's own (a0 ≥ 10% of S̄). */
const MIN_OWN_SHARE = 0.1;
/** Before the data can tell, a third of the service time is taken to come from the load. */
const PRIOR_LOAD_SHARE = 0.3;
/** The share of a worker's time load-induced work (a1·arrival rate per worker) may take: queues grow fast above it. */
const UTILISATION_MAX = 0.95;
/** A scale-down must leave this much room (10%): the load moves between decisions, a relaunch costs a launch. */
const DOWN_MARGIN = 0.9;

/**
 * Fits S(b) on minute aggregates of the buckets (in flight only: waiting is not engine time;
 * aligned to the clock, so a new decision sees the same points plus new ones): b = mean in
 * flight per ready worker, S = in-flight time over the requests that went through (Little's
 * law; through = served, without the requests that gave up waiting, plus half the rise in
 * flight). The slope is the grouped (Wald) estimate: the S difference between the lighter and
 * the heavier half of the minutes (by b, weighted by requests) over their b difference, which
 * noise in b biases far less than least squares does; minutes with every slot taken (requests
 * waited throughout) all sit at b = C and go whole to one half (halves). When the two halves'
 * b differ by less than half of b̄, the slope is blended toward a prior (fully at no spread):
 * PRIOR_LOAD_SHARE of S̄ from the load, or, `cautious`, the most the load can add (a1 = a0, or
 * the mean time to first token if less: a batching engine's load is its prefills). a0
 * keeps at least a tenth of S̄ (a request's own work). Undefined before any request has taken
 * a slot.
 * The history's first bucket counts its requests in flight as risen from none, as they did
 * when the gateway started (an hour later, a bias of one point in sixty).
 * E.g. minutes at b = 6.5, S = 3.4 s (3 workers) and b = 12, S = 4.2 s (2 workers):
 * a1 = 0.8/5.5 = 0.145, a0 = 2.5.
 */
export function fitServiceModel(
  buckets: readonly LoadBucket[],
  bucketMs: number,
  o: { cautious?: boolean } = {},
): ServiceModel | undefined {
  const slotMs = FIT_BUCKETS * bucketMs;
  const slots = new Map<number, { inflight: number; ready: number; through: number; waited: number }>();
  let inflightBefore = 0;
  for (const k of buckets) {
    const key = Math.floor(k.startMs / slotMs);
    let a = slots.get(key);
    if (!a) slots.set(key, (a = { inflight: 0, ready: 0, through: 0, waited: 0 }));
    const inflight = k.mean - k.meanWaiting;
    a.inflight += (inflight * bucketMs) / 1000;
    a.ready += (k.ready * bucketMs) / 1000;
    a.waited += (k.meanWaiting * bucketMs) / 1000;
    // The throughput of a stretch is half-way between the requests that took a slot in it and
    // the ones that left one: served (departures less the ones that gave up waiting, which took
    // no worker time) plus half the rise of the requests in flight. A worker that lands on a
    // backlog fills every slot at once and serves none of them for a service time: counted by
    // its departures alone, its first minute would look twice as slow as it is.
    a.through += k.departures - k.abandoned + (inflight - inflightBefore) / 2;
    inflightBefore = inflight;
  }
  const pts: FitPoint[] = [];
  // Little's law holds for a stretch its requests turned over in (S within the minute): a minute
  // of a growing backlog whose requests have not finished yet says nothing about S.
  for (const a of slots.values()) {
    const s = a.through > 0 ? a.inflight / a.through : Infinity;
    // Requests waited throughout the minute (one on average, or more): every slot was taken.
    const full = a.waited >= slotMs / 1000;
    if (a.ready > 0 && s <= slotMs / 1000) pts.push([a.inflight / a.ready, s, a.through, full]);
  }
  const mean = (g: readonly FitPoint[], i: 0 | 1): number =>
    g.reduce((t, p) => t + p[i] * p[2], 0) / g.reduce((t, p) => t + p[2], 0);
  if (pts.length === 0) return undefined;
  const bBar = mean(pts, 0);
  const sBar = mean(pts, 1);
  if (!(bBar > 0)) return { a0: sBar, a1: 0 };
  pts.sort((x, y) => x[0] - y[0]);
  const split = halves(pts);
  const lo = pts.slice(0, split);
  const hi = pts.slice(split);
  // Cautious, the prior is the most the load can add, so a flat history cannot talk a
  // prefill-bound fleet into shrinking: each request in flight as much as a request's own work
  // (a0 = a1, an engine that shares its time and batches nothing: processor sharing), but no
  // more than the streamed answers' mean time to first token where they show it. What another
  // request in flight takes from a worker that batches its decodes is its prefill, and a
  // prompt's prefill is done by its first token.
  const ordinary = (PRIOR_LOAD_SHARE * sBar) / bBar;
  const prior = o.cautious ? Math.max(ordinary, Math.min(sBar / (1 + bBar), meanFirstTokenS(buckets))) : ordinary;
  let slope = prior;
  if (lo.length > 0 && hi.length > 0) {
    const db = mean(hi, 0) - mean(lo, 0);
    const trust = Math.min(1, (db / bBar / FULL_TRUST_SPREAD) ** 2);
    if (db > 0) slope = trust * ((mean(hi, 1) - mean(lo, 1)) / db) + (1 - trust) * prior;
  }
  const a1 = Math.min((1 - MIN_OWN_SHARE) * (sBar / bBar), Math.max(0, slope));
  return { a0: sBar - a1 * bBar, a1 };
}

/** Streamed answers a mean time to first token is read from; fewer say nothing. */
const MIN_FIRST_TOKENS = 30;

/** The mean time to first token of the streamed answers in `buckets`, seconds; Infinity for fewer than MIN_FIRST_TOKENS. */
export function meanFirstTokenS(buckets: readonly LoadBucket[]): number {
  let n = 0;
  let ms = 0;
  for (const b of buckets) {
    n += b.firstTokens;
    ms += b.firstTokenMs;
  }
  return n >= MIN_FIRST_TOKENS ? ms / n / 1000 : Infinity;
}

/** A minute of the fit: b in flight per ready worker, S, requests through (its weight), every slot taken. */
type FitPoint = [b: number, s: number, w: number, full: boolean];

/** Full minutes whose b differs by less than this share are at one load (the cap). */
const SAME_LOAD = 0.005;

/**
 * Where the points (sorted by b) split into the lighter and the heavier half by weight, never
 * inside a run of minutes that had every slot taken: they all sit at b = C whatever the load
 * was, and a split among them would read the noise between their S as the slope (after a
 * saturated start, a1 = 0.41 where the line through the lighter minutes has 1). Such a run goes
 * whole to the side that leaves the halves closer to even; 0 or the length when it is every
 * point (no slope to read).
 * E.g. weights at b = 13.5 (221), 28.2 (28) and five full minutes at 30 (979): [13.5, 28.2 | 30 ×5].
 */
function halves(pts: readonly FitPoint[]): number {
  const total = pts.reduce((t, p) => t + p[2], 0);
  const before: number[] = [0];
  for (const p of pts) before.push(before.at(-1)! + p[2]);
  let k = pts.findIndex((_, i) => before[i]! >= total / 2);
  if (k < 0) k = pts.length;
  const tied = (i: number): boolean =>
    i > 0 && i < pts.length && pts[i]![3] && pts[i - 1]![3] && pts[i]![0] - pts[i - 1]![0] <= SAME_LOAD * pts[i]![0];
  if (!tied(k)) return k;
  let left = k;
  while (tied(left)) left--;
  let right = k;
  while (tied(right)) right++;
  if (left === 0) return right;
  if (right === pts.length) return left;
  return Math.abs(before[left]! - total / 2) <= Math.abs(before[right]! - total / 2) ? left : right;
}

/** The workers the load needs now (see SloPolicy), and what that was worked out from. */
export function estimate(s: ScaleSnapshot, sloS: number): Estimate {
  const C = s.config.workerCapacity;
  const launchMs = median(s.launchDurationsMs) ?? s.config.downscaleDelayMs;
  const bucketMs = s.historyBucketMs ?? 10_000;
  const bucketS = bucketMs / 1000;
  const all = s.history ?? [];
  const rateWindow = all.slice(-Math.ceil(RATE_WINDOW_MS / bucketMs));
  const last = all.slice(-SUSTAINED_BUCKETS);
  const sustained = (s.waiting ?? 0) > 0 && last.length === SUSTAINED_BUCKETS && last.every((b) => b.peakWaiting > 0);
  const model = fitServiceModel(all, bucketMs);
  if (!model || all.length === 0) {
    // Nothing finished yet: slots for what is queued, at most twice the workers ready.
    const need = Math.min(Math.ceil(s.queueLength / C), 2 * Math.max(1, s.workers.ready));
    return {
      need,
      needMean: need,
      needDown: Math.max(need, activeWorkers(s)),
      sustained,
      backlog: NO_BACKLOG_ACCOUNT,
      drainable: 0,
      launchMs,
      why: `no finished request yet: ${s.queueLength} in the queue → ${need}`,
    };
  }
  // The arrival rate to plan for: the last few minutes' (fluctuations above it are the excess).
  const rateOf = (bs: readonly LoadBucket[]): number => sum(bs, (b) => b.arrivals) / (bs.length * bucketS);
  const lambda = rateOf(rateWindow);
  const excess = burstExcess(all, C);
  const cap = Math.max(s.maxWorkers, 1) * 4;
  // Ski rental: an idle worker is kept about as long as relaunching it would take, not for the
  // whole rate window (sparse traffic on a fast launch would keep a worker for minutes).
  const sinceLaunch = all.slice(-Math.max(1, Math.ceil(launchMs / bucketMs)));
  if (s.queueLength === 0 && (lambda === 0 || sum(sinceLaunch, (b) => b.arrivals) === 0))
    return {
      need: 0,
      needMean: 0,
      needDown: 0,
      sustained,
      backlog: NO_BACKLOG_ACCOUNT,
      drainable: 0,
      launchMs,
      why: `no requests in the last ${(Math.max(launchMs, bucketMs) / 1000).toFixed(0)} s`,
    };
  // In a young history a scale-down is judged on the slope at its most where the data has not
  // pinned it down (cautious): shed on a guess, a worker a prefill-bound load needs costs a
  // launch delay of late requests before it is back, while one kept costs its time until the
  // data shows the spread or the history is CAUTIOUS_HISTORY_MS long.
  const young = all.length * bucketMs < CAUTIOUS_HISTORY_MS;
  const cautious = (young && fitServiceModel(all, bucketMs, { cautious: true })) || model;
  const up = smallestFleet(model, lambda, excess, C, sloS, 1, cap);
  const down = smallestFleet(cautious, lambda, excess, C, sloS, DOWN_MARGIN, cap);
  // The model alone launches only for a load the fleet cannot hold at all (its prefills would
  // take every worker's whole time, or the mean outgrow the slots): the 5% kept spare in sizing
  // is a margin, and a launch bought for it while nothing waits is paid for the rest of the load.
  const mean = smallestFleet(model, lambda, 0, C, sloS, 1, cap, 1);
  const { a0, a1 } = model;
  const why =
    `${lambda.toFixed(2)} req/s, S(b) = ${a0.toFixed(2)} + ${a1.toFixed(3)}·b s, excess ${excess.toFixed(0)}: ` +
    (up.fits
      ? `${up.r} workers hold ${up.b.toFixed(1)} each, peaks ${up.peak.toFixed(0)} of ${up.r * C} slots`
      : `more than ${cap} workers`);
  const ready = s.workers.ready;
  const u = (lambda / Math.max(ready, 1)) * a1;
  const fullLoadS = Math.max(a0 + a1 * C, 1e-3);
  const drainable = ready > 0 && u < 1 ? (ready * C * sloS) / fullLoadS : 0;
  const backlog = backlogAccount(all, s.waiting ?? 0, ready, bucketS, sloS);
  // A carried backlog drains at the full-load pace of the ready workers less the arrivals.
  const drainRate = (ready * C) / fullLoadS - lambda;
  const transient = backlog.carried && drainRate > 0 && (s.waiting ?? 0) / drainRate <= launchMs / 1000;
  return {
    need: up.r,
    needMean: mean.r,
    needDown: down.r,
    sustained,
    backlog: { ...backlog, transient },
    drainable,
    launchMs,
    why: `${why}; ${backlog.late.toFixed(0)} late of ${backlog.budget.toFixed(0)} allowed${transient ? ', backlog carried from a smaller fleet drains before a launch lands' : ''}${young ? youngNote(cautious, all) : ''}`,
  };
}

/** What a scale-down in a young history reads the slope as, and from what: said in the decision's reason. */
function youngNote(cautious: ServiceModel, buckets: readonly LoadBucket[]): string {
  const firstToken = meanFirstTokenS(buckets);
  const from = Number.isFinite(firstToken) ? `, streams' first token ${firstToken.toFixed(2)} s` : '';
  return `; history under ${CAUTIOUS_HISTORY_MS / 60_000} min: a scale-down reads a1 as ${cautious.a1.toFixed(3)}${from}`;
}

/**
 * What the requests waiting now are, for a scale-up: the gateway's history cut into backlog
 * episodes (runs of buckets in which some request waited), each belonging to the ready workers
 * at its start.
 */
export interface BacklogAccount {
  /**
   * At most how many requests waited past the SLO on a fleet at least this size over the
   * history (Σ its episodes' waiting-seconds ÷ slo: each late request waited slo or more), plus
   * every request waiting now unless the backlog was carried in.
   */
  readonly late: number;
  /** The late requests a p99 allows over the history: 1% of its arrivals. */
  readonly budget: number;
  readonly overBudget: boolean;
  /** The requests waiting now are a backlog that began on fewer ready workers than now (a cold start's). */
  readonly carried: boolean;
  /** Carried, and the ready workers drain it (at the full-load pace, less the arrivals) within a launch delay. */
  readonly transient: boolean;
}

const NO_BACKLOG_ACCOUNT: BacklogAccount = { late: 0, budget: 0, overBudget: true, carried: false, transient: false };

/**
 * Counts the history's backlog episodes against the p99 (see BacklogAccount). An episode that
 * began on fewer ready workers than now (half a worker's margin, ready being a bucket's mean) is
 * another fleet's: it does not count, and when it goes on now, the waiting is carried.
 * E.g. 2 ready, 13 waiting now, the hour's episodes on 2 workers 30 waiting-seconds, 9,000
 * arrivals, slo 1 s: 30 + 13 = 43 late of 90 allowed: not over budget.
 */
export function backlogAccount(
  buckets: readonly LoadBucket[],
  waitingNow: number,
  readyNow: number,
  bucketS: number,
  sloS: number,
): Omit<BacklogAccount, 'transient'> {
  let waitedS = 0;
  let arrivals = 0;
  let episodeReady: number | undefined;
  for (const b of buckets) {
    arrivals += b.arrivals;
    if (b.peakWaiting > 0) episodeReady ??= b.ready;
    else episodeReady = undefined;
    if (episodeReady !== undefined && episodeReady >= readyNow - 0.5) waitedS += b.meanWaiting * bucketS;
  }
  // Waiting now goes on the last bucket's episode, if it had one.
  const carried = waitingNow > 0 && episodeReady !== undefined && episodeReady < readyNow - 0.5;
  const late = waitedS / Math.max(sloS, 1e-3) + (carried ? 0 : waitingNow);
  const budget = (1 - QUANTILE) * arrivals;
  return { late, budget, overBudget: late > budget, carried };
}

/**
 * The fewest workers r that hold the load: utilisation λ·a1/r ≤ UTILISATION_MAX, the mean in
 * flight per worker b(r) = (λ/r)·a0 / (1 − λ·a1/r) within its C slots, and the peaks, r·b(r) +
 * excess, within `margin` of what r·C slots drain inside the SLO, r·C·(1 + slo/S(C)) (a
 * request over the slots waits for one of them to free, one every S(C)/(r·C): all are taken).
 * E.g. λ 5.3 req/s, S(b) = 2.6 + 0.13·b, excess 29, C 30, slo 1 s: r = 1 is over utilisation…
 * b(1) = 5.3·2.6/(1 − 0.69) = 44 > 30; r = 2: b = 10.6, peaks 50 ≤ 60·(1 + 1/6.5) = 69 → 2.
 */
function smallestFleet(
  m: ServiceModel,
  lambda: number,
  excess: number,
  C: number,
  sloS: number,
  margin: number,
  cap: number,
  utilisationMax = UTILISATION_MAX,
): { r: number; b: number; peak: number; fits: boolean } {
  for (let r = 1; r <= cap; r++) {
    const perWorker = lambda / r;
    const utilisation = perWorker * m.a1;
    const b = utilisation < 1 ? (perWorker * m.a0) / (1 - utilisation) : Infinity;
    const peak = r * b + excess;
    // Requests over the slots arrive in a peak, when every slot is taken: a slot frees at the
    // full-load pace, one every S(C)/(r·C), not the mean load's S(b).
    const serviceS = Math.max(m.a0 + m.a1 * C, 1e-3);
    if (utilisation <= utilisationMax * margin && b <= C * margin && peak <= margin * r * C * (1 + sloS / serviceS))
      return { r, b, peak, fits: true };
  }
  return { r: cap, b: Infinity, peak: Infinity, fits: false };
}

/**
 * How far above the load just before it the load that 99% of requests arrived into stood:
 * bursts and fluctuations, over the whole history (an hour), weighted by arrivals. A bucket's
 * peak counts at most ready·C + its arrivals, and a bucket that opens on a backlog does not
 * count (a backlog carried in is not new load). The highest burst counts over the history only
 * while it lasts (its peak within the last minute) or when another like it shows that it recurs.
 * E.g. bursts of 200 over a base of 3 in flight, with 45% of the requests in bursts: ≈ 197;
 * one burst of 400 requests in 20 minutes of 5 req/s: 200 during it, the base's 10 a minute after.
 */
export function burstExcess(buckets: readonly LoadBucket[], C: number): number {
  const pairs: [value: number, weight: number, bucket: number][] = [];
  let top = -1;
  let topValue = -Infinity;
  let baseSum = 0;
  for (let i = 0; i < buckets.length; i++) {
    const b = buckets[i]!;
    const n = Math.min(i, BASELINE_BUCKETS);
    const base = n > 0 ? baseSum / n : b.mean;
    // A bucket that starts with a backlog carried in (requests waiting through the one before)
    // shows the backlog, not new load: it is left out.
    const carried = i > 0 && buckets[i - 1]!.meanWaiting >= 1;
    if (!carried) {
      // The bucket's arrivals saw loads between its mean and its peak, not all of them the peak:
      // its arrivals are spread in equal shares over that range, the last share at the peak
      // (a burst that is a large share of the requests keeps its peak as the quantile).
      const high = Math.min(b.peak, b.ready * C + b.arrivals);
      const low = Math.min(b.mean, high);
      for (let k = 1; k <= ARRIVAL_SHARES; k++)
        pairs.push([Math.max(0, low + ((high - low) * k) / ARRIVAL_SHARES - base), b.arrivals / ARRIVAL_SHARES, i]);
      if (b.arrivals > 0 && pairs.at(-1)![0] > topValue) [top, topValue] = [i, pairs.at(-1)![0]];
    }
    baseSum += b.mean;
    if (i >= BASELINE_BUCKETS) baseSum -= buckets[i - BASELINE_BUCKETS]!.mean;
  }
  // A burst counts over the whole history when it recurs: the history without the highest
  // burst (the minute around its peak) still shows it. A lone burst counts while it lasts; once
  // it has passed, the workers bought for it are kept about a launch delay (SloPolicy's ski
  // rental), not for as long as the history remembers it.
  const passed = top >= 0 && top < buckets.length - BASELINE_BUCKETS;
  const counted = passed ? pairs.filter(([, , i]) => Math.abs(i - top) > BASELINE_BUCKETS) : pairs;
  return weightedQuantile(counted, QUANTILE);
}

/** The value at or below which `q` of the total weight lies; [value, weight] pairs. */
export function weightedQuantile(pairs: readonly (readonly [number, number, ...number[]])[], q: number): number {
  const sorted = [...pairs].sort((a, b) => a[0] - b[0]);
  const total = sorted.reduce((t, [, w]) => t + w, 0);
  if (total <= 0) return sorted.at(-1)?.[0] ?? 0;
  let acc = 0;
  for (const [v, w] of sorted) {
    acc += w;
    if (acc >= q * total) return v;
  }
  return sorted.at(-1)![0];
}

function median(xs: readonly number[] | undefined): number | undefined {
  if (!xs || xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function sum(bs: readonly LoadBucket[], f: (b: LoadBucket) => number): number {
  let t = 0;
  for (const b of bs) t += f(b);
  return t;
}
