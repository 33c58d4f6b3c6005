import { describe, expect, it } from 'vitest';
import { BURSTY_DEFAULTS, burstyArrivals, type BurstyOptions } from '../../../../src/sim/workloads/bursty.js';

const HOUR: BurstyOptions = { ...BURSTY_DEFAULTS, seed: 1 };

describe('burstyArrivals', () => {
  it('bursts of 50-200 requests within their width, every few minutes, over the base rate', () => {
    const arrivals = [...burstyArrivals(HOUR)];
    const bursts = new Map<number, number[]>();
    for (const a of arrivals)
      if (a.burst !== undefined) (bursts.get(a.burst) ?? bursts.set(a.burst, []).get(a.burst)!).push(a.atMs);
    // An hour at ~300 s apart (gaps 150-450 s): 8 to 24 bursts.
    expect(bursts.size).toBeGreaterThanOrEqual(8);
    expect(bursts.size).toBeLessThanOrEqual(24);
    const starts: number[] = [];
    for (const times of bursts.values()) {
      expect(times.length).toBeGreaterThanOrEqual(50);
      expect(times.length).toBeLessThanOrEqual(200);
      expect(times.at(-1)! - times[0]!).toBeLessThanOrEqual(5000);
      starts.push(times[0]!);
    }
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThan(150_000 - 5000);
    const base = arrivals.filter((a) => a.burst === undefined).length;
    // 0.5 req/s for an hour: 1,800, sd ≈ 42.
    expect(base).toBeGreaterThan(1600);
    expect(base).toBeLessThan(2000);
    // Time order, all inside the hour.
    for (let i = 1; i < arrivals.length; i++) expect(arrivals[i]!.atMs).toBeGreaterThanOrEqual(arrivals[i - 1]!.atMs);
    expect(arrivals.at(-1)!.atMs).toBeLessThan(3_600_000);
  });

  it('the knobs move what they name', () => {
    const sizes = (o: BurstyOptions): number[] => {
      const n = new Map<number, number>();
      for (const a of burstyArrivals(o)) if (a.burst !== undefined) n.set(a.burst, (n.get(a.burst) ?? 0) + 1);
      return [...n.values()];
    };
    const fixed = sizes({ ...HOUR, burstSize: [120, 120], baseRate: 0 });
    expect(fixed.every((n) => n === 120)).toBe(true);
    expect([...burstyArrivals({ ...HOUR, baseRate: 0 })].every((a) => a.burst !== undefined)).toBe(true);
    const often = sizes({ ...HOUR, burstEveryS: 60, burstWidthS: 2 });
    expect(often.length).toBeGreaterThan(40);
  });

  it('same seed, same arrivals; another seed, others', () => {
    const a = [...burstyArrivals({ ...HOUR, seed: 5, durationS: 900 })];
    expect([...burstyArrivals({ ...HOUR, seed: 5, durationS: 900 })]).toEqual(a);
    expect([...burstyArrivals({ ...HOUR, seed: 6, durationS: 900 })]).not.toEqual(a);
  });

  it.each([
    [{ burstSize: [0, 10] as const }, /burst size must be MIN-MAX with 1 <= MIN <= MAX, got 0-10/],
    [{ burstWidthS: 200 }, /burst width must be >= 0 and under half the burst spacing \(150 s\), got 200/],
    [{ durationS: 0 }, /duration must be > 0 s/],
    [{ baseRate: -1 }, /base rate must be >= 0/],
  ])('%j is refused, naming the knob', (bad, message) => {
    expect(() => [...burstyArrivals({ ...HOUR, ...bad })]).toThrow(message);
  });
});
