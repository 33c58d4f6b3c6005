import { hashString } from '../hashing.js';
import type { Worker } from '../pool.js';
import { HashRing } from './ring.js';
import type { BalancerOptions, BalancerPolicy, Candidates, PickContext } from './types.js';

export const SESSION_AFFINITY_DEFAULTS = {
  /** c in "consistent hashing with bounded loads": no worker takes more than ⌈c × its share⌉. */
  sessionLoadFactor: 1.25,
} as const;

/**
 * Session affinity: the session key (`user`, or the x-session-id header) on a consistent-hash
 * ring with bounded loads (src/core/balancer/ring.ts): a session sticks to one worker while
 * that worker is within c × its share of the load, and spills to the next on the ring beyond.
 * No session key → least-connection.
 */
export class SessionAffinity implements BalancerPolicy {
  readonly name = 'session-affinity';
  readonly #ring: HashRing;

  constructor(opts: BalancerOptions = {}) {
    this.#ring = new HashRing(
      opts.sessionLoadFactor ?? SESSION_AFFINITY_DEFAULTS.sessionLoadFactor,
      'session_load_factor',
    );
  }

  onMembershipChange(ready: readonly Worker[]): void {
    this.#ring.setWorkers(ready);
  }

  /** The worker owning `key` when no bound applies (tests use it to check key movement). */
  home(key: string): Worker | undefined {
    return this.#ring.home(hashString(key));
  }

  pick(candidates: Candidates, ctx: PickContext): Worker | undefined {
    if (ctx.sessionKey === undefined) return candidates.leastLoaded(ctx.random);
    return this.#ring.pick(hashString(ctx.sessionKey), candidates) ?? candidates.leastLoaded(ctx.random);
  }
}
