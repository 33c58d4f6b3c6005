import type { Worker } from '../types.js';
import type { BalancerPolicy, Candidates, PickContext } from './types.js';

/**
 * The default: the worker with the lowest load relative to its capacity, inFlight/capacity
 * (a worker with 3 of 30 slots busy, 0.1, beats one with 1 of 4, 0.25; 1/3 and 2/6 tie
 * exactly). Ties are broken uniformly at random, never by list order, so the first-listed
 * worker does not soak up every request when all are idle.
 *
 * O(1): the pool keeps ready workers in buckets by in-flight count (src/core/load-index.ts);
 * the pick draws from the lowest non-empty bucket.
 */
export class LeastConnection implements BalancerPolicy {
  readonly name = 'least-connection';

  pick(candidates: Candidates, ctx: PickContext): Worker | undefined {
    return candidates.leastLoaded(ctx.random);
  }
}
