import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readRateEnvelope, parseRateEnvelopeText } from '../../../../src/sim/cluster/rates.js';
import { TraceError } from '../../../../src/sim/cluster/trace.js';
import {
  envelopeArrivals,
  envelopeMeanRate,
  envelopeSpanS,
  type RateEnvelope,
} from '../../../../src/sim/workloads/envelope.js';

const TWO_DAYS = 'test/fixtures/traces/servegen-m-large-rates-2days.csv';

const count = (it: Iterable<unknown>): number => {
  let n = 0;
  for (const _ of it) n++;
  return n;
};

describe('readRateEnvelope', () => {
  it('reads the committed two days of the ServeGen envelope: 288 ten-minute windows of a provider-sized rate', () => {
    const env = readRateEnvelope(TWO_DAYS);
    expect(env.windowS).toBe(600);
    expect(env.rates).toHaveLength(288);
    expect(env.rates[0]).toBeCloseTo(212.78, 2);
    expect(envelopeSpanS(env)).toBe(2 * 86_400);
    expect(envelopeMeanRate(env, 86_400)).toBeGreaterThan(100);
  });

  const H = 'window_start_s,rate_rps';
  const bad: [string, string, RegExp][] = [
    ['empty', '', /^r\.csv: the rate envelope is empty/],
    ['no rate column', 'window_start_s,day\n0,0\n600,0', /^r\.csv:1: the header has no rate_rps column/],
    ['one window', `${H}\n0,5`, /^r\.csv: the rate envelope has 1 window\(s\); it needs at least 2/],
    ['negative rate', `${H}\n0,5\n600,-1`, /^r\.csv:3: expected rate_rps as a number >= 0, got "-1"/],
    ['non-numeric rate', `${H}\n0,5\n600,lots`, /^r\.csv:3: expected rate_rps as a number >= 0, got "lots"/],
    ['missing start', `${H}\n,5\n600,1`, /^r\.csv:2: expected window_start_s as seconds >= 0, got ""/],
    ['unsorted windows', `${H}\n0,5\n600,1\n0,1`, /^r\.csv:4: window_start_s 0 breaks the spacing.*\(expected 1200\)/],
    ['not from 0', `${H}\n600,5\n1200,1`, /^r\.csv:2: window_start_s 600 breaks the spacing/],
    ['all zero', `${H}\n0,0\n600,0`, /^r\.csv: every window's rate_rps is 0/],
  ];
  it.each(bad)('%s → a TraceError naming the file and line', (_label, text, message) => {
    expect(() => parseRateEnvelopeText(text, 'r.csv')).toThrow(TraceError);
    expect(() => parseRateEnvelopeText(text, 'r.csv')).toThrow(message);
  });

  it('names a missing file', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'rates-')), 'nope.csv');
    expect(() => readRateEnvelope(path)).toThrow(`${path}: cannot read the rate envelope (no such file)`);
  });

  it('ignores other columns, in any order', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'rates-')), 'r.csv');
    writeFileSync(path, 'day,rate_rps,window_start_s\n0,2,0\n0,4,60\n0,6,120\n');
    expect(readRateEnvelope(path)).toEqual({ windowS: 60, rates: [2, 4, 6] });
  });
});

describe('envelopeArrivals', () => {
  const env = readRateEnvelope(TWO_DAYS);
  const day = { seed: 1, meanRate: 5, durationS: 86_400, arrivalCv: 1 };

  it('a day at a mean of 5 req/s: ≈ 432,000 arrivals (within 1%), increasing, all inside the day', () => {
    let n = 0;
    let last = -1;
    let increasing = true;
    for (const t of envelopeArrivals(env, day)) {
      if (t < last) increasing = false;
      last = t;
      n++;
    }
    expect(increasing).toBe(true);
    expect(last).toBeLessThan(86_400_000);
    expect(Math.abs(n / 86_400 - 5) / 5).toBeLessThan(0.01);
  });

  it('follows the envelope: each hour’s count tracks the envelope’s rate in it', () => {
    const perHour = new Array<number>(24).fill(0);
    for (const t of envelopeArrivals(env, day)) perHour[Math.floor(t / 3_600_000)]!++;
    const scale = 5 / envelopeMeanRate(env, 86_400);
    for (let h = 0; h < 24; h++) {
      const expected = scale * env.rates.slice(6 * h, 6 * h + 6).reduce((a, b) => a + b, 0) * 600;
      // Poisson: sd ≈ √18,000 ≈ 134 on ≈ 18,000; 5% is many sd.
      expect(Math.abs(perHour[h]! - expected) / expected).toBeLessThan(0.05);
    }
    // The envelope is diurnal: the busiest hour has well over the quietest's traffic.
    expect(Math.max(...perHour) / Math.min(...perHour)).toBeGreaterThan(1.3);
  });

  it('same seed, same arrivals; another seed, others', () => {
    const take = (seed: number): number[] => {
      const out: number[] = [];
      for (const t of envelopeArrivals(env, { ...day, seed, durationS: 3600 })) out.push(t);
      return out;
    };
    expect(take(7)).toEqual(take(7));
    expect(take(8)).not.toEqual(take(7));
  });

  it('arrival cv: Gamma gaps have the asked coefficient of variation at the same mean rate', () => {
    const flat: RateEnvelope = { windowS: 600, rates: [10, 10, 10, 10, 10, 10] };
    for (const cv of [0.5, 1, 3]) {
      const gaps: number[] = [];
      let prev: number | undefined;
      for (const t of envelopeArrivals(flat, { seed: 3, meanRate: 20, durationS: 3600, arrivalCv: cv })) {
        if (prev !== undefined) gaps.push(t - prev);
        prev = t;
      }
      const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
      const sd = Math.sqrt(gaps.reduce((a, b) => a + (b - mean) ** 2, 0) / gaps.length);
      expect(Math.abs(gaps.length / 3600 - 20) / 20).toBeLessThan(0.05);
      expect(Math.abs(sd / mean - cv) / cv).toBeLessThan(0.1);
    }
  });

  it('windows of rate 0 get no arrivals; a span beyond the envelope is refused', () => {
    const gappy: RateEnvelope = { windowS: 100, rates: [5, 0, 5] };
    const ts = [...envelopeArrivals(gappy, { seed: 1, meanRate: 2, durationS: 300, arrivalCv: 1 })];
    expect(ts.some((t) => t >= 100_000 && t < 200_000)).toBe(false);
    expect(ts.length).toBeGreaterThan(400);
    expect(() => count(envelopeArrivals(gappy, { seed: 1, meanRate: 2, durationS: 301, arrivalCv: 1 }))).toThrow(
      /the span must be in \(0, 300\] s/,
    );
  });
});
