/**
 * Bursts that recur with gaps longer than a launch (a batch job every quarter of an hour, a
 * dashboard refreshed on a schedule): the workers a burst needs are wasted for most of each gap
 * when kept, and missing at the next burst when shed after the last one. The gaps seen so far
 * say how soon the next burst can come, so the burst's workers can go once it is served and be
 * launched again in time for the earliest next one.
 */
import type { LoadBucket } from '../load-history.js';
import { LATE_SHARE, median, weightedQuantile } from './history-readings.js';

/** One burst found in the load history: when it began, how many requests it brought above the base pace, and how high they stood. */
export interface Burst {
  readonly startMs: number;
  readonly requests: number;
  /**
   * The most requests in flight and waiting above the median bucket's peak, while it arrived:
   * its requests less those answered meanwhile (a burst spread over seconds is partly served
   * as it comes).
   */
  readonly load: number;
  /** Where its load ends: the start of the first bucket after it back at the base load (or the history's end). */
  readonly untilMs: number;
}

/** A burst is over within this many buckets (30 s at 10 s buckets); a longer rise is a change of load, not a burst. */
const MAX_BURST_BUCKETS = 3;
/** A bucket is in a burst when its arrivals exceed the median bucket's by this many times the median... */
const HOT_FACTOR = 1;
/** ...and by a third of a worker's slots at least (a handful of requests over an idle base is no burst). */
const HOT_MIN_SHARE_OF_C = 1 / 3;

/**
 * The bursts in the history, oldest first: runs of at most MAX_BURST_BUCKETS buckets whose
 * arrivals stand well above the median bucket's (by the median again, and a third of a worker's
 * slots), bringing at least a worker's slots (C) of requests above the median pace. A run cut
 * by the history's start is left out: its start is not known. Its load lasts until nothing
 * waits and the peak is back within a third of a worker's slots of the median bucket's.
 * E.g. 5 arrivals a bucket, then 160 and 60 in two buckets: one burst of 210 requests.
 */
export function burstsIn(buckets: readonly LoadBucket[], C: number): Burst[] {
  const arrivals = median(buckets.map((b) => b.arrivals)) ?? 0;
  const peak = median(buckets.map((b) => b.peak)) ?? 0;
  const margin = HOT_MIN_SHARE_OF_C * C;
  const hot = (b: LoadBucket): boolean => b.arrivals - arrivals >= Math.max(HOT_FACTOR * arrivals, margin);
  const calm = (b: LoadBucket): boolean => b.peakWaiting === 0 && b.peak <= peak + margin;
  const bursts: Burst[] = [];
  let i = 0;
  while (i < buckets.length) {
    if (!hot(buckets[i]!)) {
      i++;
      continue;
    }
    let j = i;
    let requests = 0;
    let load = 0;
    for (; j < buckets.length && hot(buckets[j]!); j++) {
      requests += buckets[j]!.arrivals - arrivals;
      load = Math.max(load, buckets[j]!.peak - peak);
    }
    let k = j;
    while (k < buckets.length && !calm(buckets[k]!)) k++;
    const untilMs = k < buckets.length ? buckets[k]!.startMs : Infinity;
    if (i > 0 && j - i <= MAX_BURST_BUCKETS && requests >= C)
      bursts.push({ startMs: buckets[i]!.startMs, requests, load, untilMs });
    i = j;
  }
  return bursts;
}

/** Bursts remembered this long: a day holds a schedule's rhythm at any hour. */
const MEMORY_MS = 24 * 3600_000;
/** Gaps seen before the rhythm is followed: the fewest the soonest gap is estimated from (one is only itself). */
const MIN_GAPS = 2;
/** The next burst is expected no sooner than this share of the soonest gap estimated. */
const GAP_SHARE = 0.9;
/** Past the longest gap seen by this much, the rhythm has stopped (the job was cancelled, the schedule changed). */
const LAPSE_SHARE = 1.25;
/** A burst's requests, for the quantile: in this many equal shares, the k-th having seen k/SHARES of the burst before it. */
const SHARES = 8;

/** Where the load stands in its rhythm of bursts (BurstRhythm.at). */
export interface RhythmPhase {
  /**
   * quiet: the last burst is over and the next cannot come before a launch started now would be
   * ready; due: it may come any time now (or before a launch started now is ready).
   */
  readonly phase: 'quiet' | 'due';
  /**
   * The excess load the next burst is met with: of the bursts' requests, all but the 1% of all
   * requests a p99 allows arrive into at most this many others of their burst.
   */
  readonly burstExcess: number;
  /** When the next burst may come at the earliest, clock ms. */
  readonly earliestNextMs: number;
  /** The history's bursts: their buckets, from start to `untilMs`, are not the base load's. */
  readonly bursts: readonly Burst[];
}

/**
 * The bursts seen over the last day (remembered beyond the hour of history a snapshot holds)
 * and where the load stands between them. A rhythm is followed once MIN_GAPS gaps are seen, if
 * they leave a quiet stretch of a lead or more, until the longest gap seen has passed by
 * LAPSE_SHARE with no burst.
 * Pure: fed the history and the time by its caller (SloPolicy).
 */
export class BurstRhythm {
  readonly #bursts: Burst[] = [];
  /** The bursts' share of all requests, in the last history that held one. */
  #share = 1;

  /**
   * Where the load stands at `now`, the history's bursts remembered first. `leadMs`: how long
   * before a burst its workers must be launched (the slowest recent launch and a decision's
   * interval). undefined: no rhythm (too few bursts, too close, or lapsed), or a burst not yet over.
   */
  at(
    buckets: readonly LoadBucket[],
    bucketMs: number,
    C: number,
    now: number,
    leadMs: number,
  ): RhythmPhase | undefined {
    const inHistory = burstsIn(buckets, C);
    this.#remember(inHistory, bucketMs, now);
    if (inHistory.length > 0) {
      let all = 0;
      for (const b of buckets) all += b.arrivals;
      let inBursts = 0;
      for (const b of inHistory) inBursts += b.requests;
      this.#share = Math.min(1, inBursts / Math.max(all, 1));
    }
    const bursts = this.#bursts;
    if (bursts.length < MIN_GAPS + 1) return undefined;
    let shortest = Infinity;
    let longest = 0;
    for (let k = 1; k < bursts.length; k++) {
      const gap = bursts[k]!.startMs - bursts[k - 1]!.startMs;
      shortest = Math.min(shortest, gap);
      longest = Math.max(longest, gap);
    }
    const last = bursts.at(-1)!;
    if (now > last.startMs + LAPSE_SHARE * longest) return undefined;
    // The shortest gap there can be, from the k seen: a few gaps' shortest is longer than the
    // law's (the k gaps of a uniform law fall, on average, a k + 1-th of its range above its
    // lower end), so that lower end is estimated as (k·shortest − longest)/(k − 1).
    const k = bursts.length - 1;
    const soonest = Math.max(0, (k * shortest - longest) / (k - 1));
    // Shedding a burst's workers pays when they would idle for a lead or more before the next;
    // closer bursts are left to the usual rules, which keep the workers of bursts that recur.
    const quietMs = GAP_SHARE * soonest - leadMs - MAX_BURST_BUCKETS * bucketMs;
    if (quietMs < leadMs) return undefined;
    // The last burst is not over while its load is the history's last.
    const lastBucket = buckets.at(-1);
    const lastInHistory = inHistory.at(-1);
    if (lastBucket === undefined || lastBucket.startMs < last.startMs + MAX_BURST_BUCKETS * bucketMs) return undefined;
    if (lastInHistory !== undefined && lastInHistory.untilMs > lastBucket.startMs) return undefined;
    const earliestNextMs = last.startMs + GAP_SHARE * soonest;
    return {
      phase: now + leadMs < earliestNextMs ? 'quiet' : 'due',
      burstExcess: this.#excess(),
      earliestNextMs,
      bursts: inHistory,
    };
  }

  /**
   * The load the remembered bursts' requests arrived into (a burst's requests in equal shares
   * from none of its load to all of it), at the quantile that leaves above it the 1% of all
   * requests a p99 allows (bursts a fifth of the requests: their 95th percentile).
   * E.g. bursts standing 50 to 200 requests high, a fifth of all requests: ≈ 160.
   */
  #excess(): number {
    const q = 1 - LATE_SHARE / this.#share;
    if (q <= 0) return 0;
    const pairs: [number, number][] = [];
    for (const b of this.#bursts)
      for (let k = 1; k <= SHARES; k++) pairs.push([(b.load * k) / SHARES, b.requests / SHARES]);
    return weightedQuantile(pairs, q);
  }

  /** Adds the history's bursts not yet remembered (the same start within a bucket), keeps a burst's largest count, forgets past a day. */
  #remember(found: readonly Burst[], bucketMs: number, now: number): void {
    const bursts = this.#bursts;
    for (const b of found) {
      const same = bursts.findIndex((r) => Math.abs(r.startMs - b.startMs) <= bucketMs);
      if (same >= 0) {
        if (b.requests > bursts[same]!.requests) bursts[same] = b;
      } else if (bursts.length === 0 || b.startMs > bursts.at(-1)!.startMs) bursts.push(b);
    }
    while (bursts.length > 0 && bursts[0]!.startMs < now - MEMORY_MS) bursts.shift();
  }
}
