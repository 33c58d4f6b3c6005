import type { Random } from './clock.js';
import type { Worker } from './types.js';

/**
 * What a balancer chooses from: the ready workers, indexed by load so that every question
 * below is answered in O(1) (O(number of distinct capacities), which is 1 when all workers
 * share `worker_capacity`) and without allocating.
 */
export interface Candidates {
  /** Ready workers with a free slot. */
  readonly size: number;
  /** The i-th worker with a free slot, 0 ≤ i < size. The order is arbitrary and changes as loads change. */
  at(i: number): Worker;
  /** Whether `w` is ready and has a free slot. */
  has(w: Worker): boolean;
  /** A worker with the lowest load/capacity among those with a free slot; ties uniformly at random. */
  leastLoaded(random: Random): Worker | undefined;
  /** Ready workers, full ones included. */
  readonly readyCount: number;
  /** Requests in flight on ready workers (from every gateway replica, as everywhere here). */
  readonly totalInFlight: number;
  /** Fewest and most requests in flight on one ready worker, each capped at its capacity (0 when none is ready). */
  readonly minInFlight: number;
  readonly maxInFlight: number;
  /** Lowest and highest inFlight/capacity of one ready worker (0 when none is ready). */
  readonly minLoad: number;
  readonly maxLoad: number;
}

/** Requests in flight on `w` from every gateway replica: what balancing and capacity count. */
export function load(w: Worker): number {
  return w.inFlight + w.remoteInFlight;
}

interface Entry {
  readonly worker: Worker;
  readonly group: CapacityGroup;
  /** min(load, capacity): the bucket it sits in. */
  level: number;
  /** Position in its bucket and in `room` (-1 when full): swap-removal in O(1). */
  bucketPos: number;
  roomPos: number;
}

/** Workers of one capacity, bucketed by load (requests in flight from every replica) 0..capacity. */
interface CapacityGroup {
  readonly capacity: number;
  readonly buckets: Entry[][];
  count: number;
  /** Lowest and highest non-empty bucket while count > 0. */
  min: number;
  max: number;
}

/**
 * The index behind `Candidates`, kept by WorkerPool: it is told when a worker becomes ready
 * or stops being ready (`add`/`remove`) and when its load changes (`update`).
 *
 * Workers sit in buckets by load, one bucket array per capacity. The least-loaded
 * bucket of a group is tracked as `min`: taking a slot moves a worker up one bucket, giving
 * one back moves it down one, so `min` and `max` move by at most one step per change (a
 * removal, or the other replicas' load arriving, about once a second, may scan up to
 * `capacity` buckets: 30 by default, independent of the fleet size).
 *
 * Worked example, capacity 4, in flight [1, 1, 3]: buckets 1 → {a, b}, 3 → {c}; min 1.
 * leastLoaded draws a or b with probability ½ each; a takes a slot → bucket 1 {b}, 2 {a}.
 */
export class LoadIndex implements Candidates {
  readonly #entries = new Map<Worker, Entry>();
  readonly #groups: CapacityGroup[] = [];
  /** Entries with a free slot, dense, for uniform sampling (random, power-of-two, round-robin). */
  readonly #room: Entry[] = [];
  #totalInFlight = 0;

  get size(): number {
    return this.#room.length;
  }

  get readyCount(): number {
    return this.#entries.size;
  }

  get totalInFlight(): number {
    return this.#totalInFlight;
  }

  get minInFlight(): number {
    let m = Infinity;
    for (const g of this.#groups) if (g.count > 0 && g.min < m) m = g.min;
    return m === Infinity ? 0 : m;
  }

  get maxInFlight(): number {
    let m = 0;
    for (const g of this.#groups) if (g.count > 0 && g.max > m) m = g.max;
    return m;
  }

  get minLoad(): number {
    let m = Infinity;
    for (const g of this.#groups) if (g.count > 0 && g.min / g.capacity < m) m = g.min / g.capacity;
    return m === Infinity ? 0 : m;
  }

  get maxLoad(): number {
    let m = 0;
    for (const g of this.#groups) if (g.count > 0 && g.max / g.capacity > m) m = g.max / g.capacity;
    return m;
  }

  at(i: number): Worker {
    const e = this.#room[i];
    if (!e) throw new RangeError(`candidate ${i} of ${this.#room.length}`);
    return e.worker;
  }

  has(w: Worker): boolean {
    const e = this.#entries.get(w);
    return e !== undefined && e.roomPos >= 0;
  }

  leastLoaded(random: Random): Worker | undefined {
    // The group whose least-loaded bucket has the lowest min/capacity (cross-multiplied, so 1/3
    // and 2/6 tie exactly); workers in tied groups share the draw in proportion to their number.
    let best: CapacityGroup | undefined;
    let tied = 0;
    for (const g of this.#groups) {
      if (g.count === 0 || g.min >= g.capacity) continue;
      const size = g.buckets[g.min]!.length;
      const cmp = best === undefined ? -1 : g.min * best.capacity - best.min * g.capacity;
      if (cmp < 0) {
        best = g;
        tied = size;
      } else if (cmp === 0) {
        tied += size;
      }
    }
    if (best === undefined) return undefined;
    let r = Math.floor(random() * tied);
    for (const g of this.#groups) {
      if (g.count === 0 || g.min >= g.capacity || g.min * best.capacity !== best.min * g.capacity) continue;
      const bucket = g.buckets[g.min]!;
      if (r < bucket.length) return bucket[r]!.worker;
      r -= bucket.length;
    }
    return undefined; // unreachable: r < tied
  }

  /** Ready workers, in no particular order (allocates; for membership changes, not the request path). */
  workers(): Worker[] {
    return [...this.#entries.keys()];
  }

  add(w: Worker): void {
    if (this.#entries.has(w)) return;
    const group = this.#group(w.capacity);
    const e: Entry = { worker: w, group, level: levelOf(w, group), bucketPos: -1, roomPos: -1 };
    this.#entries.set(w, e);
    this.#totalInFlight += load(w);
    this.#place(e);
  }

  remove(w: Worker): void {
    const e = this.#entries.get(w);
    if (!e) return;
    this.#entries.delete(w);
    this.#totalInFlight -= load(w);
    this.#unplace(e);
  }

  /** The worker's load changed by `delta` (±1 from WorkerPool.acquire/release; any from setRemoteInFlight). */
  update(w: Worker, delta: number): void {
    const e = this.#entries.get(w);
    if (!e) return;
    this.#totalInFlight += delta;
    const level = levelOf(w, e.group);
    if (level === e.level) return;
    this.#unplace(e);
    e.level = level;
    this.#place(e);
  }

  #group(capacity: number): CapacityGroup {
    for (const g of this.#groups) if (g.capacity === capacity) return g;
    const g: CapacityGroup = {
      capacity,
      buckets: Array.from({ length: capacity + 1 }, () => []),
      count: 0,
      min: 0,
      max: 0,
    };
    this.#groups.push(g);
    return g;
  }

  #place(e: Entry): void {
    const g = e.group;
    const bucket = g.buckets[e.level]!;
    e.bucketPos = bucket.length;
    bucket.push(e);
    if (g.count === 0) {
      g.min = e.level;
      g.max = e.level;
    } else {
      if (e.level < g.min) g.min = e.level;
      if (e.level > g.max) g.max = e.level;
    }
    g.count++;
    if (e.level < g.capacity) {
      e.roomPos = this.#room.length;
      this.#room.push(e);
    }
  }

  #unplace(e: Entry): void {
    const g = e.group;
    swapRemove(g.buckets[e.level]!, e.bucketPos, setBucketPos);
    e.bucketPos = -1;
    if (e.roomPos >= 0) {
      swapRemove(this.#room, e.roomPos, setRoomPos);
      e.roomPos = -1;
    }
    g.count--;
    if (g.count === 0) return;
    while (g.buckets[g.min]!.length === 0) g.min++;
    while (g.buckets[g.max]!.length === 0) g.max--;
  }
}

function levelOf(w: Worker, g: CapacityGroup): number {
  return Math.max(0, Math.min(load(w), g.capacity));
}

// Module-level, so acquire/release allocate no closures.
function setBucketPos(e: Entry, pos: number): void {
  e.bucketPos = pos;
}

function setRoomPos(e: Entry, pos: number): void {
  e.roomPos = pos;
}

/** Removes arr[pos] by moving the last element into its place; O(1). */
function swapRemove(arr: Entry[], pos: number, moved: (e: Entry, pos: number) => void): void {
  const last = arr.pop()!;
  if (pos < arr.length) {
    arr[pos] = last;
    moved(last, pos);
  }
}
