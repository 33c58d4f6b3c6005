/**
 * Draws for the generated workloads, from an injected uniform source (core/clock.ts's
 * seededRandom), so a seed fixes every draw.
 */
import type { Random } from '../../core/clock.js';

/** A whole number in [lo, hi], uniformly. */
export function between(random: Random, [lo, hi]: readonly [number, number]): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}

/** Exponential with mean 1. */
export function unitExponential(random: Random): number {
  return -Math.log(1 - random());
}

/**
 * Gaps with mean 1 and coefficient of variation `cv`: exponential at cv 1 (a Poisson process),
 * Gamma(shape 1/cv², scale cv²) otherwise. cv 2 gives clumps of arrivals and long lulls at the
 * same mean rate; cv 0.5 is more regular than Poisson.
 */
export function renewalGaps(random: Random, cv: number): () => number {
  if (!(cv > 0)) throw new RangeError(`arrival cv must be > 0, got ${cv}`);
  if (cv === 1) return () => unitExponential(random);
  const shape = 1 / (cv * cv);
  return () => gamma(random, shape) / shape;
}

/** Gamma(shape, 1) by Marsaglia and Tsang (2000); shape < 1 through Gamma(shape + 1)·U^(1/shape). */
function gamma(random: Random, shape: number): number {
  if (shape < 1) return gamma(random, shape + 1) * Math.pow(1 - random(), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = normal(random);
    const v = (1 + c * x) ** 3;
    if (v <= 0) continue;
    const u = 1 - random();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Standard normal (Box–Muller; the second value is dropped to keep draws stateless). */
function normal(random: Random): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}
