import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../../src/core/clock.js';
import { LAUNCH_DELAY_DISTRIBUTIONS, launchDelaySampler } from '../../../../src/sim/cluster/launch-delay.js';

const draw = (n: number, f: () => number): number[] => Array.from({ length: n }, f);
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]): number => {
  const m = mean(xs);
  return Math.sqrt(mean(xs.map((x) => (x - m) ** 2)));
};

describe('launchDelaySampler', () => {
  it.each(LAUNCH_DELAY_DISTRIBUTIONS)('%s keeps the mean (300 s, 20000 draws within 2%%)', (distribution) => {
    const xs = draw(20_000, launchDelaySampler({ distribution, meanMs: 300_000, cv: 0.25 }, seededRandom(3)));
    expect(mean(xs) / 300_000).toBeCloseTo(1, 1);
    expect(Math.abs(mean(xs) / 300_000 - 1)).toBeLessThan(0.02);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
  });

  it('spreads as asked: fixed 0, uniform and lognormal cv 0.25, exponential cv 1', () => {
    const cvOf = (distribution: (typeof LAUNCH_DELAY_DISTRIBUTIONS)[number]): number => {
      const xs = draw(20_000, launchDelaySampler({ distribution, meanMs: 100, cv: 0.25 }, seededRandom(9)));
      return sd(xs) / mean(xs);
    };
    expect(cvOf('fixed')).toBe(0);
    expect(cvOf('uniform')).toBeCloseTo(0.25, 1);
    expect(cvOf('lognormal')).toBeCloseTo(0.25, 1);
    expect(cvOf('exponential')).toBeCloseTo(1, 1);
  });

  it('uniform stays within mean·(1 ± √3·cv)', () => {
    const xs = draw(5000, launchDelaySampler({ distribution: 'uniform', meanMs: 300, cv: 0.2 }, seededRandom(1)));
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(300 * (1 - Math.sqrt(3) * 0.2));
    expect(Math.max(...xs)).toBeLessThanOrEqual(300 * (1 + Math.sqrt(3) * 0.2));
  });

  it('same seed, same delays', () => {
    const a = draw(10, launchDelaySampler({ distribution: 'lognormal', meanMs: 300, cv: 0.3 }, seededRandom(5)));
    const b = draw(10, launchDelaySampler({ distribution: 'lognormal', meanMs: 300, cv: 0.3 }, seededRandom(5)));
    expect(a).toEqual(b);
  });

  it('rejects a negative mean or cv', () => {
    expect(() => launchDelaySampler({ distribution: 'fixed', meanMs: -1, cv: 0 }, seededRandom(1))).toThrow(/mean/);
    expect(() => launchDelaySampler({ distribution: 'uniform', meanMs: 1, cv: -1 }, seededRandom(1))).toThrow(/cv/);
  });
});
