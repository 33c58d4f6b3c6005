/**
 * What slo reads from the load history against its p99, besides the service model: how far
 * above the load before it 99% of requests arrived (burstExcess), how steeply the rate has
 * risen within a launch delay (sustainedRise), and how many requests the
 * history's backlogs made late against the 1% a p99 allows (backlogAccount). And whether the
 * p99 held over the history at all (sloStanding), which the gateway reports whatever the policy.
 */
import type { LoadBucket } from '../load-history.js';

/** The share of requests the fleet is sized for: the p99 of the queue wait, of the load arrived into. */
const QUANTILE = 0.99;
/** The share of requests a p99 allows to be late: 1%. */
export const LATE_SHARE = 1 - QUANTILE;
/** The late requests a p99 allows among `requests`: 1% of them. */
const lateBudget = (requests: number): number => LATE_SHARE * requests;
/** The shares a bucket's arrivals are spread over between its mean load and its peak. */
const ARRIVAL_SHARES = 4;
/** A bucket's peak is measured above the mean of the buckets this long before it. */
const BASELINE_BUCKETS = 6;

/**
 * What the requests waiting now are, for a scale-up: the gateway's history cut into backlog
 * episodes (runs of buckets in which some request waited), each belonging to the ready workers
 * at its start.
 */
export interface BacklogAccount {
  /**
   * How many requests waited past the SLO on a fleet at least this size over the history (the
   * late requests of its episodes' buckets), plus every request waiting now unless the backlog
   * was carried in.
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

export const NO_BACKLOG_ACCOUNT: BacklogAccount = {
  late: 0,
  budget: 0,
  overBudget: true,
  carried: false,
  transient: false,
};

/**
 * Counts the history's backlog episodes against the p99 (see BacklogAccount). An episode that
 * began on fewer ready workers than now (half a worker's margin, ready being a bucket's mean) is
 * another fleet's: it does not count, and when it goes on now, the waiting is carried.
 * E.g. 2 ready, 13 waiting now, 30 late in the hour's episodes on 2 workers, 9,000 arrivals:
 * 30 + 13 = 43 late of 90 allowed: not over budget.
 */
export function backlogAccount(
  buckets: readonly LoadBucket[],
  waitingNow: number,
  readyNow: number,
): Omit<BacklogAccount, 'transient'> {
  let lateBefore = 0;
  let arrivals = 0;
  let episodeReady: number | undefined;
  for (const b of buckets) {
    arrivals += b.arrivals;
    if (b.peakWaiting > 0) episodeReady ??= b.ready;
    else episodeReady = undefined;
    if (episodeReady !== undefined && episodeReady >= readyNow - 0.5) lateBefore += b.late;
  }
  // Waiting now goes on the last bucket's episode, if it had one.
  const carried = waitingNow > 0 && episodeReady !== undefined && episodeReady < readyNow - 0.5;
  const late = lateBefore + (carried ? 0 : waitingNow);
  const budget = lateBudget(arrivals);
  return { late, budget, overBudget: late > budget, carried };
}

/** Fewer requests than this say nothing of a p99: one late request is already over 1%. */
const MIN_REQUESTS_FOR_P99 = 100;
/** A shorter history says more of the gateway's start (its first workers coming up) than of its service. */
const MIN_WINDOW_MS = 5 * 60_000;

/** How the queue wait stood against queue_wait_slo over the history (sloStanding). */
export interface SloStanding {
  /** Requests that came in over the history. */
  readonly requests: number;
  /** Requests that waited longer than queue_wait_slo for a slot (or left the queue after that long). */
  readonly late: number;
  /** The late requests a p99 allows: 1% of `requests`. */
  readonly budget: number;
  /** held: late within the budget; missed: over it; unknown: under 100 requests or 5 minutes, too few to judge. */
  readonly verdict: 'held' | 'missed' | 'unknown';
  /** The time the history spans, ms (an hour once the gateway has run that long). */
  readonly windowMs: number;
}

/**
 * Whether the p99 queue wait held queue_wait_slo over the history (an hour of buckets), from the
 * buckets' arrivals and late requests: what the gateway reports to its operator whatever the
 * policy, so a fleet that misses its SLO does not do so silently.
 * E.g. 8,819 requests, 241 of them late: 88 allowed, missed.
 */
export function sloStanding(buckets: readonly LoadBucket[], bucketMs: number): SloStanding {
  let requests = 0;
  let late = 0;
  for (const b of buckets) {
    requests += b.arrivals;
    late += b.late;
  }
  const budget = lateBudget(requests);
  const windowMs = buckets.length * bucketMs;
  const verdict =
    requests < MIN_REQUESTS_FOR_P99 || windowMs < MIN_WINDOW_MS ? 'unknown' : late > budget ? 'missed' : 'held';
  return { requests, late, budget, verdict, windowMs };
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

/**
 * A rise counts only beyond the arrivals' own noise: this many standard deviations of the
 * difference of two Poisson counts. Four, as the largest of an hour's hundreds of overlapping
 * windows is read: flat arrivals pass two deviations somewhere in most hours.
 */
const RISE_NOISE_SD = 4;

/**
 * The largest rise of the arrival rate (requests/s) within `windowMs` (a launch delay) that
 * held, over the history: each window's arrivals against the window's before it, a window read
 * as twice the smaller of its halves (a burst within one half is the burst excess's, not a rise),
 * less the counts' noise. 0 when the history is shorter than two windows or nothing rose.
 * A fleet sized on the rate now plus this is ready for a rise as steep as the history has shown
 * before a launch bought for it could land.
 * The steepest rise counts over the whole history when the rate rises more than once: some
 * window at least a window's length away from it (a half or less of the two it compares shared
 * with the steepest one's) shows a rise too: an evening whose rate steps up and down meets its
 * largest step again, and a ramp rises in every window along it. One step's rise shows only in
 * the windows nearer. A lone rise (a flash crowd, a one-off step, the rate flat otherwise)
 * counts until a window has passed since it: by then the rate window shows what of it stayed,
 * and a fleet held for it for the rest of the hour is paid for a rise that is not coming.
 * E.g. 10 s buckets, 300 s windows, a step from 10 to 16 req/s: windows of 3,000 then 4,800
 * requests, noise 4·√7,800 = 353: (4,800 − 3,000 − 353) / 300 = 4.8 req/s. Flat arrivals of
 * 1 req/s: windows of about 300, noise 4·√600 = 98, nothing rises.
 */
export function sustainedRise(buckets: readonly LoadBucket[], bucketMs: number, windowMs: number): number {
  const half = Math.max(1, Math.round(windowMs / 2 / bucketMs));
  const w = 2 * half;
  if (buckets.length < 2 * w) return 0;
  const sums = [0];
  for (const b of buckets) sums.push(sums.at(-1)! + b.arrivals);
  const count = (from: number, to: number): number => sums[to]! - sums[from]!;
  const rises: number[] = [];
  let top = 2 * w;
  for (let end = 2 * w; end < sums.length; end++) {
    const before = count(end - 2 * w, end - w);
    const after = 2 * Math.min(count(end - w, end - half), count(end - half, end));
    rises[end] = after - before - RISE_NOISE_SD * Math.sqrt(after + before);
    if (rises[end]! > rises[top]!) top = end;
  }
  let others = 0;
  for (let end = 2 * w; end < sums.length; end++) if (Math.abs(end - top) >= w) others = Math.max(others, rises[end]!);
  const lone = others <= 0 && top < sums.length - 1 - w;
  return lone ? 0 : Math.max(0, rises[top] ?? 0) / ((w * bucketMs) / 1000);
}

/** The middle value (the upper one of an even count); undefined for none. */
export function median(xs: readonly number[] | undefined): number | undefined {
  if (!xs || xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
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
