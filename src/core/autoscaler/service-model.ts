/**
 * slo's model of a worker's service time under load, S(b) = a0 + a1·b, fitted on the load
 * history's minutes, and what the streamed answers' first tokens say of a1 where the history
 * cannot.
 */
import type { LoadBucket } from '../load-history.js';

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
