import { FlockServeClassic } from './flockserve-classic.js';
import { RunningMean } from './running-mean.js';
import { SloPolicy } from './slo.js';
import { TargetTracking } from './target-tracking.js';
import type { AutoscalerFactory, AutoscalerOptions, AutoscalerPolicy } from './types.js';

/**
 * The one table of autoscaler policies. The `--autoscaler` choices (src/config/options.ts)
 * are its keys. This file must not import src/config (options.ts imports it).
 * Factories get the resolved configuration (camelCase option names) and read their knobs.
 */
export const AUTOSCALERS = {
  'running-mean': (opts) => new RunningMean(opts),
  'flockserve-classic': (opts) => new FlockServeClassic(opts),
  'target-tracking': (opts) => new TargetTracking(opts),
  slo: (opts) => new SloPolicy(opts),
} satisfies Record<string, AutoscalerFactory>;

export type AutoscalerName = keyof typeof AUTOSCALERS;

export const AUTOSCALER_NAMES = Object.keys(AUTOSCALERS) as AutoscalerName[];

export function isAutoscalerName(name: string): name is AutoscalerName {
  return Object.hasOwn(AUTOSCALERS, name);
}

/** Builds the named policy; an unknown name throws, listing the valid ones. */
export function createAutoscaler(name: string, opts: AutoscalerOptions = {}): AutoscalerPolicy {
  if (!isAutoscalerName(name)) throw new Error(`unknown autoscaler "${name}"; one of ${AUTOSCALER_NAMES.join(', ')}`);
  return AUTOSCALERS[name](opts);
}
