import { hashString } from '../hashing.js';
import type { Worker } from '../types.js';
import type { BalancerOptions, BalancerPolicy, Candidates, PickContext } from './types.js';

export const SESSION_AFFINITY_DEFAULTS = {
  /** c in "consistent hashing with bounded loads": no worker takes more than ⌈c × average⌉. */
  sessionLoadFactor: 1.25,
} as const;

/** Points per worker on the ring: with 100, each worker's share of keys is within ~±20% of 1/n. */
const VIRTUAL_NODES = 100;

interface Point {
  readonly hash: number;
  readonly worker: Worker;
}

/**
 * Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam 2018) on the session
 * key (`user`, or the x-session-id header): a key goes to the first worker clockwise from its
 * hash on a ring of VIRTUAL_NODES points per ready worker, unless that worker is full or
 * already at its bound ⌈c × (in flight + 1) / ready workers⌉; then to the next on the ring.
 * A worker joining or leaving moves only the keys whose arc it takes or gives up (~1/n).
 *
 * Worked example, 4 workers, 10 in flight, c = 1.25: bound = ⌈1.25 × 11 / 4⌉ = 4, so a key's
 * home worker with 4 in flight passes the request to the next worker on the ring.
 *
 * Pick: O(log(n·V)) binary search, then a walk that is short while loads are bounded (the
 * paper's expected O(1/ε²) with c = 1 + ε). No session key → least-connection.
 */
export class SessionAffinity implements BalancerPolicy {
  readonly name = 'session-affinity';
  readonly #factor: number;
  #ring: Point[] = [];

  constructor(opts: BalancerOptions = {}) {
    this.#factor = opts.sessionLoadFactor ?? SESSION_AFFINITY_DEFAULTS.sessionLoadFactor;
    if (!(this.#factor >= 1)) throw new RangeError(`session_load_factor must be >= 1, got ${this.#factor}`);
  }

  onMembershipChange(ready: readonly Worker[]): void {
    const ring: Point[] = [];
    for (const worker of ready) {
      for (let v = 0; v < VIRTUAL_NODES; v++) ring.push({ hash: hashString(`${worker.name}#${v}`), worker });
    }
    // Ties on the hash are broken by name, so the ring does not depend on the order workers came in.
    ring.sort((a, b) => a.hash - b.hash || (a.worker.name < b.worker.name ? -1 : 1));
    this.#ring = ring;
  }

  /** The worker owning `key` when no bound applies (tests use it to check key movement). */
  home(key: string): Worker | undefined {
    return this.#ring[this.#start(hashString(key))]?.worker;
  }

  pick(candidates: Candidates, ctx: PickContext): Worker | undefined {
    const ring = this.#ring;
    if (ctx.sessionKey === undefined || ring.length === 0) return candidates.leastLoaded(ctx.random);
    const bound = Math.ceil((this.#factor * (candidates.totalInFlight + 1)) / Math.max(1, candidates.readyCount));
    let i = this.#start(hashString(ctx.sessionKey));
    for (let step = 0; step < ring.length; step++) {
      const w = ring[i]!.worker;
      if (w.inFlight + 1 <= bound && candidates.has(w)) return w;
      i = i + 1 === ring.length ? 0 : i + 1;
    }
    // Every worker is at its bound or full (the bound rounds up, so only when all are full).
    return candidates.leastLoaded(ctx.random);
  }

  /** Index of the first point with hash >= h, wrapping to 0. */
  #start(h: number): number {
    const ring = this.#ring;
    let lo = 0;
    let hi = ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ring[mid]!.hash < h) lo = mid + 1;
      else hi = mid;
    }
    return lo === ring.length ? 0 : lo;
  }
}
