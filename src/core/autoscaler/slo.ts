import type { LoadBucket } from '../load-history.js';
import { BurstRhythm, type RhythmPhase } from './burst-rhythm.js';
import {
  NO_BACKLOG_ACCOUNT,
  backlogAccount,
  burstExcess,
  median,
  sustainedRise,
  type BacklogAccount,
} from './history-readings.js';
import { fitServiceModel, meanFirstTokenS, type ServiceModel } from './service-model.js';
import { settle } from './settle.js';
import { activeWorkers } from './snapshot.js';
import type { AutoscalerOptions, AutoscalerPolicy, ScaleDecision, ScaleSnapshot } from './types.js';

/** Default of `queue_wait_slo`: the p99 gateway queue wait, seconds, an interactive endpoint holds. */
export const DEFAULT_QUEUE_WAIT_SLO_S = 1;

/** The arrival rate planned for: over this long. */
const RATE_WINDOW_MS = 5 * 60_000;
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
 *   R    the largest rise of the rate the hour has shown within a launch delay (at least 5
 *        minutes) that held, beyond the counts' noise (sustainedRise); planned for as λ + R.
 *        A lone rise counts until a window has passed since it (a flash crowd's is not held for the hour)
 *   S(b) = a0 + a1·b  a request's time on a worker carrying b in flight: a0 its own work, a1 what
 *        each other request adds (its prefill, longer steps), fitted on the hour's minutes
 *        (fitServiceModel); at r workers each carries b(r) = (λ/r)·a0 / (1 − λ·a1/r)
 *   E    how far above the load just before it the load that 99% of requests arrived into
 *        stood: bursts and fluctuations (burstExcess)
 *   need the fewest r with λ·a1/r ≤ 0.95 (not saturated by prefills), b(r) ≤ C, and peaks
 *        r·b(r) + E within what r·C slots drain inside the SLO, r·C·(1 + slo/S(C)): in a
 *        peak every slot is taken, so they free at the full-load pace S(C), not the mean's;
 *        λ read as λ + R: a fleet sized on the rate alone meets a step of the rate short by
 *        its launch delay, and a step held for minutes makes more requests late than a p99
 *        allows
 *
 * Up at once to `need` when more requests wait than the ready slots take in within the SLO,
 * and still do one SLO later (checked between evaluations too, every 2 s), unless the backlog
 * is not this fleet's overload (backlogAccount: carried from a smaller fleet and drained before
 * a launch lands, or a spike within the 1% a p99 allows); on the model's word alone only when the
 * mean load outgrows the fleet (prefills over its whole time, or in flight over its slots) and
 * two decisions in a row say so. Down one worker at a time, two
 * minutes apart, once the history covers five minutes, and only when the load of the last D
 * fits one worker fewer with 10% to spare: an idle worker costs less kept than relaunched
 * until it has been idle for about a launch.
 *
 * Bursts that recur far apart (BurstRhythm: two gaps seen, the soonest leaving a quiet
 * stretch longer than a lead, the slowest launch and a decision's interval) are met on a
 * schedule instead: once a burst is served, down at once to what the base load needs; up,
 * before any request waits, to what the bursts need when the next may come before a launch
 * started later would be ready.
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
  readonly #rhythm = new BurstRhythm();
  #lastDecisionAt: number | undefined;
  /** The longest time between two decisions seen, ms. */
  #interval = 0;

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
    const rhythm = this.#rhythmAt(s, now);
    const e = estimate(s, this.sloS, rhythm);
    const needs = this.#needs;
    needs.push([now, e.needDown]);
    while (needs.length > 0 && needs[0]![0] < now - e.launchMs) needs.shift();
    let held = 0;
    for (const [, n] of needs) held = Math.max(held, n);
    const W = activeWorkers(s);
    if (rhythm) {
      const d = this.#betweenBursts(s, now, e, rhythm, W);
      if (d) return d;
    }
    const seenMs = (s.history?.length ?? 0) * (s.historyBucketMs ?? 10_000);
    // Up to what the load needs at once; down one worker at a time (the next decision sees the
    // load on the smaller fleet), only when even the last launch delay's load fits with room to
    // spare, and not before the history has seen a few minutes of load.
    // An idle fleet (nothing arrived in the rate window) needs no more history to go down. A
    // lull of a launch delay between spikes is not idle: its workers go one at a time, at the
    // pace of any other scale-down, so the next spike does not meet one worker. The last
    // worker of a lull goes at once: scale-to-zero has its own guard, an idle
    // queue_tracking_window (settle).
    const lastOfLull = W === 1 && e.need === 0; // need 0: nothing queued either
    const down =
      held < W &&
      !e.sustained &&
      (e.idle || lastOfLull || (seenMs >= MIN_HISTORY_MS && now - this.#lastDownAt >= DOWN_PACE_MS));
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

  /**
   * Where the load stands between recurring bursts (BurstRhythm), judged against a launch
   * started now: ready after the slowest recent launch, and started up to the longest interval
   * between decisions late (urgent checks come closer, but only while requests wait).
   */
  #rhythmAt(s: ScaleSnapshot, now: number): RhythmPhase | undefined {
    if (this.#lastDecisionAt !== undefined) this.#interval = Math.max(this.#interval, now - this.#lastDecisionAt);
    this.#lastDecisionAt = now;
    const launches = s.launchDurationsMs ?? [];
    const slowest = launches.length > 0 ? Math.max(...launches) : s.config.downscaleDelayMs;
    return this.#rhythm.at(
      s.history ?? [],
      s.historyBucketMs ?? 10_000,
      s.config.workerCapacity,
      now,
      slowest + this.#interval,
    );
  }

  /**
   * Between recurring bursts: the burst's workers go at once when it has been served and the
   * next cannot come for longer than a launch (kept, they would idle longer than relaunching
   * them costs), and are launched again, without waiting for requests to queue, when it may come
   * before a launch started later would be ready. undefined: the usual rules decide.
   */
  #betweenBursts(
    s: ScaleSnapshot,
    now: number,
    e: Estimate,
    rhythm: RhythmPhase,
    W: number,
  ): ScaleDecision | undefined {
    const C = s.config.workerCapacity;
    const nextS = ((rhythm.earliestNextMs - now) / 1000).toFixed(0);
    if (rhythm.phase === 'due')
      return e.need > W
        ? { desired: e.need, reason: `scale up: ${e.why}; the next burst may come in ${nextS} s` }
        : undefined;
    const served = (s.waiting ?? 0) === 0 && s.queueLength <= e.needDown * C * DOWN_MARGIN;
    const idleMs = rhythm.earliestNextMs - now - e.launchMs;
    if (!served || e.needDown >= W || idleMs < e.launchMs) return undefined;
    return {
      desired: e.needDown,
      reason: `scale down: ${e.why}; the last burst served, the next not before ${nextS} s from now`,
    };
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
  /** Nothing arrived in the rate window and nothing is queued: no load to judge a scale-down on. */
  readonly idle: boolean;
  readonly sustained: boolean;
  readonly backlog: BacklogAccount;
  /**
   * Requests that may wait now and still reach a slot within the SLO: the ready slots free
   * ready·C·slo/S of them in that time, at the pace of the load now (a short spike over the
   * slots does not slow them to the full-load pace). A wait that short is no overload to launch
   * for: a launch lands long after it has drained.
   */
  readonly drainable: number;
  readonly launchMs: number;
  readonly why: string;
}

/** The share of a worker's time load-induced work (a1·arrival rate per worker) may take: queues grow fast above it. */
const UTILISATION_MAX = 0.95;
/** A scale-down must leave this much room (10%): the load moves between decisions, a relaunch costs a launch. */
const DOWN_MARGIN = 0.9;

/**
 * The workers the load needs now (see SloPolicy), and what that was worked out from. Between
 * recurring bursts (`rhythm`), quiet: the base load's alone, the bursts' buckets left out; due:
 * the excess the next burst is met with (BurstRhythm) if the history's is lower.
 */
export function estimate(s: ScaleSnapshot, sloS: number, rhythm?: RhythmPhase): Estimate {
  const C = s.config.workerCapacity;
  const launchMs = median(s.launchDurationsMs) ?? s.config.downscaleDelayMs;
  const bucketMs = s.historyBucketMs ?? 10_000;
  const bucketS = bucketMs / 1000;
  const all = s.history ?? [];
  const rateWindow = all.slice(-Math.ceil(RATE_WINDOW_MS / bucketMs));
  const last = all.slice(-SUSTAINED_BUCKETS);
  const sustained = (s.waiting ?? 0) > 0 && last.length === SUSTAINED_BUCKETS && last.every((b) => b.peakWaiting > 0);
  const idle = s.queueLength === 0 && sum(rateWindow, (b) => b.arrivals) === 0;
  const model = fitServiceModel(all, bucketMs);
  if (!model || all.length === 0) {
    // Nothing finished yet: slots for what is queued, at most twice the workers ready.
    const need = Math.min(Math.ceil(s.queueLength / C), 2 * Math.max(1, s.workers.ready));
    return {
      need,
      needMean: need,
      needDown: Math.max(need, activeWorkers(s)),
      idle,
      sustained,
      backlog: NO_BACKLOG_ACCOUNT,
      drainable: 0,
      launchMs,
      why: `no finished request yet: ${s.queueLength} in the queue → ${need}`,
    };
  }
  // The arrival rate to plan for: the last few minutes' (fluctuations above it are the excess).
  const quiet = rhythm?.phase === 'quiet';
  const base = quiet ? withoutBursts(all, rhythm.bursts) : all;
  // Quiet, the rate window's bursts are left out of its arrivals, not of its length.
  const lambda =
    sum(quiet ? withoutBursts(rateWindow, rhythm.bursts) : rateWindow, (b) => b.arrivals) /
    (rateWindow.length * bucketS);
  const usual = burstExcess(base, C);
  const due = rhythm?.phase === 'due';
  const excess = due ? Math.max(usual, rhythm.burstExcess) : usual;
  const cap = Math.max(s.maxWorkers, 1) * 4;
  // Ski rental: an idle worker is kept about as long as relaunching it would take, not for the
  // whole rate window (sparse traffic on a fast launch would keep a worker for minutes).
  const sinceLaunch = all.slice(-Math.max(1, Math.ceil(launchMs / bucketMs)));
  if (s.queueLength === 0 && (lambda === 0 || sum(sinceLaunch, (b) => b.arrivals) === 0))
    return {
      need: 0,
      needMean: 0,
      needDown: 0,
      idle,
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
  // Ready for a rise of the rate as steep as the history's before a launch bought for it lands.
  // Read over at least the rate window: a batch of a minute or two is the burst excess's.
  const rise = sustainedRise(base, bucketMs, Math.max(launchMs, RATE_WINDOW_MS));
  const planned = lambda + rise;
  const up = smallestFleet(model, planned, excess, C, sloS, 1, cap);
  // The next burst's workers are kept as sized, without the room a scale-down leaves: its excess
  // is already the quantile a p99 allows.
  const down = due
    ? Math.max(up.r, smallestFleet(cautious, planned, usual, C, sloS, DOWN_MARGIN, cap).r)
    : smallestFleet(cautious, planned, excess, C, sloS, DOWN_MARGIN, cap).r;
  // The model alone launches only for a load the fleet cannot hold at all (its prefills would
  // take every worker's whole time, or the mean outgrow the slots): the 5% kept spare in sizing
  // is a margin, and a launch bought for it while nothing waits is paid for the rest of the load.
  const mean = smallestFleet(model, planned, 0, C, sloS, 1, cap, 1);
  const { a0, a1 } = model;
  const why =
    `${lambda.toFixed(2)} req/s${rise > 0 ? ` + a rise of ${rise.toFixed(2)}` : ''}, S(b) = ${a0.toFixed(2)} + ${a1.toFixed(3)}·b s, excess ${excess.toFixed(0)}: ` +
    (up.fits
      ? `${up.r} workers hold ${up.b.toFixed(1)} each, peaks ${up.peak.toFixed(0)} of ${up.r * C} slots`
      : `more than ${cap} workers`);
  const ready = s.workers.ready;
  const u = (lambda / Math.max(ready, 1)) * a1;
  const bNow = u < 1 ? ((lambda / Math.max(ready, 1)) * a0) / (1 - u) : Infinity;
  const drainable = ready > 0 && u < 1 ? (ready * C * sloS) / Math.max(a0 + a1 * Math.min(bNow, C), 1e-3) : 0;
  const backlog = backlogAccount(all, s.waiting ?? 0, ready);
  // A carried backlog drains at the full-load pace of the ready workers less the arrivals.
  const drainRate = (ready * C) / Math.max(a0 + a1 * C, 1e-3) - lambda;
  const transient = backlog.carried && drainRate > 0 && (s.waiting ?? 0) / drainRate <= launchMs / 1000;
  return {
    need: up.r,
    needMean: mean.r,
    needDown: down,
    idle,
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

/** The buckets outside the bursts' spans (from a burst's start to where its load ends). */
function withoutBursts(buckets: readonly LoadBucket[], bursts: RhythmPhase['bursts']): LoadBucket[] {
  return buckets.filter((b) => !bursts.some((u) => b.startMs >= u.startMs && b.startMs < u.untilMs));
}

function sum(bs: readonly LoadBucket[], f: (b: LoadBucket) => number): number {
  let t = 0;
  for (const b of bs) t += f(b);
  return t;
}
