import type { Worker } from '../pool.js';
import type { BalancerOptions, BalancerPolicy, PickContext } from './types.js';

/**
 * Picks the worker with the lowest load relative to its capacity, inFlight/capacity
 * (a worker with 3 of 30 slots busy, 0.1, beats one with 1 of 4, 0.25). Loads are compared
 * by cross-multiplying (a.inFlight·b.capacity vs b.inFlight·a.capacity), so 1/3 and 2/6
 * tie exactly instead of by float rounding.
 *
 * Ties are broken uniformly at random in one pass (reservoir sampling: the k-th tied
 * worker replaces the current choice with probability 1/k), never by list order, so the
 * first-listed worker does not soak up every request when all are idle.
 *
 * O(n) over the candidates, which the caller has already built in O(n).
 */
export class LeastConnection implements BalancerPolicy {
  readonly name = 'least-connection';

  constructor(_opts: BalancerOptions = {}) {}

  pick(candidates: readonly Worker[], ctx: PickContext): Worker | undefined {
    let best: Worker | undefined;
    let ties = 0;
    for (const w of candidates) {
      // Defensive: the pool filters these already, but a full worker must never be returned.
      if (w.state !== 'ready' || w.inFlight >= w.capacity) continue;
      if (best === undefined) {
        best = w;
        ties = 1;
        continue;
      }
      const cmp = w.inFlight * best.capacity - best.inFlight * w.capacity;
      if (cmp < 0) {
        best = w;
        ties = 1;
      } else if (cmp === 0) {
        ties++;
        if (ctx.random() * ties < 1) best = w;
      }
    }
    return best;
  }
}
