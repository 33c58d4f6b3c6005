import { hashString } from '../hashing.js';
import { KeyedRingPolicy, type KeyContext } from './ring.js';
import type { BalancerOptions } from './types.js';

export const SESSION_AFFINITY_DEFAULTS = {
  /** c in "consistent hashing with bounded loads": no worker takes more than ⌈c × its share⌉. */
  sessionLoadFactor: 1.25,
} as const;

/**
 * Session affinity: the session key (`prompt_cache_key`, `user`, or the x-session-id header) on
 * a consistent-hash ring with bounded loads (src/core/balancer/ring.ts): a session sticks to one
 * worker while that worker is within c × its share of the load, and spills to the next on the
 * ring beyond.
 * No session key → least-connection.
 */
export class SessionAffinity extends KeyedRingPolicy {
  readonly name = 'session-affinity';

  constructor(opts: BalancerOptions = {}) {
    super(opts.sessionLoadFactor ?? SESSION_AFFINITY_DEFAULTS.sessionLoadFactor, 'session_load_factor');
  }

  keyOf(ctx: KeyContext): number | undefined {
    return ctx.sessionKey === undefined ? undefined : hashString(ctx.sessionKey);
  }
}
