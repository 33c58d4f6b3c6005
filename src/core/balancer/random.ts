import type { Worker } from '../types.js';
import type { BalancerPolicy, Candidates, PickContext } from './types.js';

/**
 * A uniformly random worker with a free slot, blind to load: what the original FlockServe
 * actually did. Kept as the baseline the load-aware policies are measured against. O(1).
 */
export class RandomPick implements BalancerPolicy {
  readonly name = 'random';

  pick(candidates: Candidates, ctx: PickContext): Worker | undefined {
    if (candidates.size === 0) return undefined;
    return candidates.at(Math.floor(ctx.random() * candidates.size));
  }
}
