import type { LoadBucket } from './load-history.js';

/** Finished buckets a replica publishes with its load: the last minute's, so a few lost writes lose no bucket. */
export const PUBLISHED_BUCKETS = 6;

/** A replica's history as the leader merges it: its finished buckets, oldest first. */
export interface ReplicaBuckets {
  readonly replica: string;
  readonly buckets?: readonly LoadBucket[] | undefined;
}

/**
 * The whole fleet's load history, as the leader's autoscaler reads it: this replica's finished
 * buckets (a LoadHistory aligned to multiples of its bucket on the wall clock, as every
 * replica's is) plus the ones each other live replica publishes with its load, summed by start
 * time. Behind an L4 balancer each replica sees a share of the arrivals; the sum is the load the
 * fleet serves, so the leader sizes the fleet as one gateway with all the load would.
 *
 * Arrivals, departures, first tokens and the time-weighted means add up exactly. Peaks add up
 * to at least the fleet's peak (exact when the replicas peak together, as a burst spread by a
 * balancer does; above it when they peak apart, which errs toward more workers). Ready workers
 * are the same fleet on every replica: the largest count is taken, not the sum. A replica that
 * is gone (its load key went with its lease) drops out with its past, and the buckets it
 * published never reach a replica that starts after it.
 *
 * The newest bucket appears once every replica that publishes has sent it (a second or so after
 * it closes); a replica more than a bucket behind (its writes failing) holds nothing back.
 */
export class FleetHistory {
  readonly bucketMs: number;
  readonly #local: { readonly bucketMs: number; buckets(): readonly LoadBucket[] };
  readonly #keep: number;
  readonly #remote = new Map<string, LoadBucket[]>();
  #version = 0;
  #cache: { version: number; ownNewest: number | undefined; merged: readonly LoadBucket[] } | undefined;

  constructor(local: { readonly bucketMs: number; buckets(): readonly LoadBucket[] }, keep = 360) {
    this.#local = local;
    this.bucketMs = local.bucketMs;
    this.#keep = keep;
  }

  /** This replica's newest finished buckets, for the others. */
  recent(): readonly LoadBucket[] {
    return this.#local.buckets().slice(-PUBLISHED_BUCKETS);
  }

  /** What the other replicas published, all of them: a replica left out is gone, its history with it. */
  setRemote(others: readonly ReplicaBuckets[]): void {
    const live = new Set<string>();
    for (const o of others) {
      live.add(o.replica);
      if (!o.buckets || o.buckets.length === 0) continue;
      let kept = this.#remote.get(o.replica);
      if (!kept) this.#remote.set(o.replica, (kept = []));
      let added = false;
      for (const b of o.buckets) {
        // Published oldest first; the ones already kept come again with every write.
        if (b.startMs <= (kept.at(-1)?.startMs ?? -Infinity)) continue;
        kept.push(b);
        added = true;
      }
      if (kept.length > this.#keep) kept.splice(0, kept.length - this.#keep);
      if (added) this.#version++;
    }
    for (const id of this.#remote.keys()) {
      if (live.has(id)) continue;
      this.#remote.delete(id);
      this.#version++;
    }
  }

  /** The fleet's finished buckets, oldest first (at most `keep`). */
  buckets(): readonly LoadBucket[] {
    const own = this.#local.buckets();
    if (this.#remote.size === 0) return own;
    const ownNewest = own.at(-1)?.startMs;
    const c = this.#cache;
    if (c && c.version === this.#version && c.ownNewest === ownNewest) return c.merged;
    const merged = this.#merge(own);
    this.#cache = { version: this.#version, ownNewest, merged };
    return merged;
  }

  #merge(own: readonly LoadBucket[]): readonly LoadBucket[] {
    const sources = [own, ...this.#remote.values()].filter((s) => s.length > 0);
    let newest = -Infinity;
    for (const s of sources) newest = Math.max(newest, s.at(-1)!.startMs);
    // A replica one bucket behind has not published the newest yet: it waits for it.
    const end = sources.some((s) => s.at(-1)!.startMs === newest - this.bucketMs) ? newest - this.bucketMs : newest;
    const byStart = new Map<number, Sum>();
    for (const s of sources) {
      for (const b of s) {
        if (b.startMs > end) continue;
        const acc = byStart.get(b.startMs);
        if (acc) add(acc, b);
        else byStart.set(b.startMs, { ...b });
      }
    }
    const out = [...byStart.values()].sort((a, b) => a.startMs - b.startMs);
    return out.length > this.#keep ? out.slice(-this.#keep) : out;
  }
}

type Sum = { -readonly [K in keyof LoadBucket]: LoadBucket[K] };

function add(acc: Sum, b: LoadBucket): void {
  acc.peak += b.peak;
  acc.mean += b.mean;
  acc.peakWaiting += b.peakWaiting;
  acc.meanWaiting += b.meanWaiting;
  acc.ready = Math.max(acc.ready, b.ready);
  acc.arrivals += b.arrivals;
  acc.departures += b.departures;
  acc.abandoned += b.abandoned;
  acc.firstTokens += b.firstTokens;
  acc.firstTokenMs += b.firstTokenMs;
  acc.late += b.late;
}
