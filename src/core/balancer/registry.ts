import { EngineLoad } from './engine-load.js';
import { LeastConnection } from './least-connection.js';
import { PowerOfTwo } from './power-of-two.js';
import { PrefixCache } from './prefix-cache.js';
import { PrefixHash } from './prefix-hash.js';
import { RandomPick } from './random.js';
import { RoundRobin } from './round-robin.js';
import { SessionAffinity } from './session-affinity.js';
import type { Clock } from '../clock.js';
import { ENGINE_LOAD_DEFAULTS } from './engine-load.js';
import type { BalancerFactory, BalancerOptions, BalancerPolicy } from './types.js';

/**
 * The one table of balancer policies. The `--load_balancer` choices (src/config/options.ts)
 * are its keys; add a policy here and it is selectable everywhere.
 * This file must not import src/config (options.ts imports it).
 */
export const BALANCERS = {
  'least-connection': () => new LeastConnection(),
  'round-robin': () => new RoundRobin(),
  random: () => new RandomPick(),
  'power-of-two': () => new PowerOfTwo(),
  'session-affinity': (opts) => new SessionAffinity(opts),
  'prefix-cache': (opts) => new PrefixCache(opts),
  'prefix-hash': (opts) => new PrefixHash(opts),
  'engine-load': (opts) => new EngineLoad(opts),
} satisfies Record<string, BalancerFactory>;

export type BalancerName = keyof typeof BALANCERS;

export const BALANCER_NAMES = Object.keys(BALANCERS) as BalancerName[];

export function isBalancerName(name: string): name is BalancerName {
  return Object.hasOwn(BALANCERS, name);
}

/** Builds the named policy; an unknown name throws, listing the valid ones. */
export function createBalancer(name: string, opts: BalancerOptions = {}): BalancerPolicy {
  if (!isBalancerName(name)) throw new Error(`unknown load balancer "${name}"; one of ${BALANCER_NAMES.join(', ')}`);
  return BALANCERS[name](opts);
}

/** The policies' knobs from the resolved options (seconds → ms), for the gateway and the simulation alike. */
export function balancerOptions(
  c: {
    readonly cacheThreshold: number;
    readonly cacheMinChars: number;
    readonly balanceAbsThreshold: number;
    readonly balanceRelThreshold: number;
    readonly prefixTreeMaxChars: number;
    readonly sessionLoadFactor: number;
    readonly prefixHashChars: number;
    readonly prefixHashLoadFactor: number;
    readonly engineMetricsInterval: number;
  },
  clock: Clock,
): BalancerOptions {
  return {
    clock,
    cacheThreshold: c.cacheThreshold,
    cacheMinChars: c.cacheMinChars,
    balanceAbsThreshold: c.balanceAbsThreshold,
    balanceRelThreshold: c.balanceRelThreshold,
    prefixTreeMaxChars: c.prefixTreeMaxChars,
    sessionLoadFactor: c.sessionLoadFactor,
    prefixHashChars: c.prefixHashChars,
    prefixHashLoadFactor: c.prefixHashLoadFactor,
    engineMetricsStaleMs: ENGINE_LOAD_DEFAULTS.staleIntervals * c.engineMetricsInterval * 1000,
  };
}
