import type { Worker } from '../types.js';
import type { BalancerPolicy, Candidates, PickContext } from './types.js';

/**
 * Each pick takes the next worker with a free slot, blind to load. O(1): a cursor over the
 * candidates; when workers fill up or free a slot the candidate order shifts, so the cycle is
 * fair over time rather than a strict a, b, c, a, b, c.
 */
export class RoundRobin implements BalancerPolicy {
  readonly name = 'round-robin';
  #next = 0;

  pick(candidates: Candidates, _ctx: PickContext): Worker | undefined {
    if (candidates.size === 0) return undefined;
    const i = this.#next % candidates.size;
    this.#next = i + 1;
    return candidates.at(i);
  }
}
