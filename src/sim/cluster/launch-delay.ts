import type { Random } from '../../core/clock.js';

/** How long a simulated launch takes, from `sky launch` to a worker answering its readiness probe. */
export const LAUNCH_DELAY_DISTRIBUTIONS = ['fixed', 'uniform', 'exponential', 'lognormal'] as const;
export type LaunchDelayDistribution = (typeof LAUNCH_DELAY_DISTRIBUTIONS)[number];

export interface LaunchDelaySpec {
  readonly distribution: LaunchDelayDistribution;
  /** Mean delay, ms. */
  readonly meanMs: number;
  /** Coefficient of variation (standard deviation / mean) for uniform and lognormal; exponential's is 1. */
  readonly cv: number;
}

/**
 * Draws launch delays with the given mean.
 *
 * - fixed: always the mean.
 * - uniform: mean·(1 ± √3·cv) (a uniform's sd is half-width/√3). cv 0.2, mean 300 s → 196…404 s.
 * - exponential: mean·(−ln U); sd = mean.
 * - lognormal: σ² = ln(1 + cv²), μ = ln(mean) − σ²/2, so the mean stays the mean. cv 0.25, mean
 *   300 s → median 291 s, 5% of launches over ~440 s: the long tail cloud launches have.
 */
export function launchDelaySampler(spec: LaunchDelaySpec, random: Random): () => number {
  const { meanMs, cv } = spec;
  if (!(meanMs >= 0) || !Number.isFinite(meanMs)) throw new RangeError(`launch delay mean must be >= 0, got ${meanMs}`);
  if (!(cv >= 0) || !Number.isFinite(cv)) throw new RangeError(`launch delay cv must be >= 0, got ${cv}`);
  switch (spec.distribution) {
    case 'fixed':
      return () => meanMs;
    case 'uniform': {
      const half = Math.min(1, Math.sqrt(3) * cv) * meanMs;
      return () => meanMs - half + 2 * half * random();
    }
    case 'exponential':
      return () => -meanMs * Math.log(1 - random());
    case 'lognormal': {
      const sigma2 = Math.log(1 + cv * cv);
      const mu = Math.log(Math.max(meanMs, Number.MIN_VALUE)) - sigma2 / 2;
      const sigma = Math.sqrt(sigma2);
      return () => (meanMs === 0 ? 0 : Math.exp(mu + sigma * standardNormal(random)));
    }
  }
}

/** Box–Muller: one standard normal draw from two uniforms. */
function standardNormal(random: Random): number {
  const u = 1 - random(); // (0, 1]: ln(u) is finite
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
