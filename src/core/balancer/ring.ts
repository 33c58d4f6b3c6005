import { hashString } from '../hashing.js';
import { load, type Candidates } from '../load-index.js';
import type { Worker } from '../types.js';
import type { BalancerPolicy, PickContext } from './types.js';

/** Points per worker on the ring: with 100, each worker's share of keys is within ~±20% of 1/n. */
const VIRTUAL_NODES = 100;

interface Point {
  readonly hash: number;
  readonly worker: Worker;
}

/**
 * Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam 2018), shared by the
 * policies that route a key (session-affinity, prefix-hash): a key goes to the first worker
 * clockwise from its hash on a ring of VIRTUAL_NODES points per ready worker, unless that
 * worker is full or already at its bound; then to the next on the ring. A worker's bound is
 * its share of the load, relative to its capacity, times the load factor c:
 *
 *   bound(w) = ⌈c × (in flight + 1) × capacity(w) / Σ capacity⌉
 *
 * where in flight counts every gateway replica's requests, on the worker and in the total.
 *
 * Worked example, 4 workers of capacity 30, 10 in flight, c = 1.25: bound = ⌈1.25 × 11 / 4⌉ = 4,
 * so a key's home worker with 4 in flight passes the request to the next worker on the ring. A
 * worker of capacity 10 beside three of 30 gets ⌈1.25 × 11 × 10 / 100⌉ = 2.
 *
 * The ring is a function of the workers' names alone (points hash `name#v`, ties broken by
 * name): every gateway replica with the same ready set builds the same ring, in any order the
 * workers came in. A worker joining or leaving moves only the keys whose arc it takes or gives
 * up (~1/n).
 *
 * Pick: O(log(n·V)) binary search, then a walk that is short while loads are bounded (the
 * paper's expected O(1/ε²) with c = 1 + ε).
 */
export class HashRing {
  readonly #factor: number;
  #points: Point[] = [];
  #capacity = 0;

  /** `factor` is c, ≥ 1; `option` names it in the error. */
  constructor(factor: number, option: string) {
    if (!(factor >= 1)) throw new RangeError(`${option} must be >= 1, got ${factor}`);
    this.#factor = factor;
  }

  /** Rebuilds the ring for the ready workers. */
  setWorkers(ready: readonly Worker[]): void {
    const points: Point[] = [];
    let capacity = 0;
    for (const worker of ready) {
      capacity += worker.capacity;
      for (let v = 0; v < VIRTUAL_NODES; v++) points.push({ hash: hashString(`${worker.name}#${v}`), worker });
    }
    points.sort(
      (a, b) => a.hash - b.hash || (a.worker.name < b.worker.name ? -1 : b.worker.name < a.worker.name ? 1 : 0),
    );
    this.#points = points;
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#points.length;
  }

  /** The worker owning a key's hash when no bound applies. */
  home(keyHash: number): Worker | undefined {
    return this.#points[this.#start(keyHash)]?.worker;
  }

  /** The key's home if it has a free slot and no worker is less loaded (relative to capacity), else undefined. */
  homeIfLeastLoaded(keyHash: number, candidates: Candidates): Worker | undefined {
    const w = this.home(keyHash);
    return w !== undefined && candidates.has(w) && load(w) / w.capacity <= candidates.minLoad ? w : undefined;
  }

  /**
   * The first worker clockwise from `keyHash` with a free slot and under its bound; undefined
   * when every worker is at its bound or full (the bounds round up, so only when all are full),
   * or the ring is empty.
   */
  pick(keyHash: number, candidates: Candidates): Worker | undefined {
    const points = this.#points;
    if (points.length === 0) return undefined;
    // The worker's requests from every gateway replica, as the total counts them: the fleet's bound.
    const share = this.#factor * (candidates.totalInFlight + 1);
    let i = this.#start(keyHash);
    for (let step = 0; step < points.length; step++) {
      const w = points[i]!.worker;
      if (load(w) + 1 <= Math.ceil((share * w.capacity) / this.#capacity) && candidates.has(w)) return w;
      i = i + 1 === points.length ? 0 : i + 1;
    }
    return undefined;
  }

  /** Index of the first point with hash >= h, wrapping to 0. */
  #start(h: number): number {
    const points = this.#points;
    let lo = 0;
    let hi = points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]!.hash < h) lo = mid + 1;
      else hi = mid;
    }
    return lo === points.length ? 0 : lo;
  }
}

/** What a keyed policy may route on. */
export type KeyContext = Pick<PickContext, 'sessionKey' | 'promptText'>;

/**
 * A policy that routes a request's key on a HashRing (session-affinity, prefix-hash): the
 * subclass says what the key is; no key → least-connection.
 */
export abstract class KeyedRingPolicy implements BalancerPolicy {
  abstract readonly name: string;
  readonly #ring: HashRing;

  /** `option` names the load factor in errors. */
  constructor(loadFactor: number, option: string) {
    this.#ring = new HashRing(loadFactor, option);
  }

  /** The hash a request routes on, or undefined (then: least-connection). */
  abstract keyOf(ctx: KeyContext): number | undefined;

  /**
   * Whether a request's key is worth keeping on its worker (the ring with its bound); when not,
   * the request goes to the least-loaded worker, its home on a tie. Always, unless a subclass
   * knows better.
   */
  protected sticks(_key: number, _ctx: KeyContext): boolean {
    return true;
  }

  onMembershipChange(ready: readonly Worker[]): void {
    this.#ring.setWorkers(ready);
  }

  /** The worker a request's key belongs to when no bound applies (the same on every replica). */
  home(ctx: KeyContext): Worker | undefined {
    const key = this.keyOf(ctx);
    return key === undefined ? undefined : this.#ring.home(key);
  }

  pick(candidates: Candidates, ctx: PickContext): Worker | undefined {
    const key = this.keyOf(ctx);
    if (key === undefined) return candidates.leastLoaded(ctx.random);
    const w = this.sticks(key, ctx) ? this.#ring.pick(key, candidates) : this.#ring.homeIfLeastLoaded(key, candidates);
    return w ?? candidates.leastLoaded(ctx.random);
  }
}
