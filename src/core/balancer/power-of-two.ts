import type { Worker } from '../types.js';
import type { BalancerPolicy, Candidates, PickContext } from './types.js';

/**
 * Power of two choices (Mitzenmacher): draw two distinct workers with a free slot at random;
 * the one with the lower inFlight/capacity wins, a tie goes to either with probability ½.
 * O(1), and it needs no global view of load (its strength when many gateways share workers).
 */
export class PowerOfTwo implements BalancerPolicy {
  readonly name = 'power-of-two';

  pick(candidates: Candidates, ctx: PickContext): Worker | undefined {
    const n = candidates.size;
    if (n === 0) return undefined;
    const i = Math.floor(ctx.random() * n);
    if (n === 1) return candidates.at(i);
    // A second index among the other n-1: skip over i so the two are distinct and uniform.
    let j = Math.floor(ctx.random() * (n - 1));
    if (j >= i) j++;
    const a = candidates.at(i);
    const b = candidates.at(j);
    const cmp = a.inFlight * b.capacity - b.inFlight * a.capacity;
    if (cmp !== 0) return cmp < 0 ? a : b;
    return ctx.random() < 0.5 ? a : b;
  }
}
