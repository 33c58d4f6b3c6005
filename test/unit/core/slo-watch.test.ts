import { describe, expect, it } from 'vitest';
import { sloStanding, type SloStanding } from '../../../src/core/autoscaler/history-readings.js';
import type { LoadBucket } from '../../../src/core/load-history.js';
import { SloWatch } from '../../../src/core/slo-watch.js';

const BUCKET_MS = 10_000;

/** `n` buckets of `arrivals` requests each, `late` of them late in the last bucket. */
function history(n: number, arrivals: number, late = 0): LoadBucket[] {
  return Array.from({ length: n }, (_, i) => ({
    startMs: i * BUCKET_MS,
    peak: arrivals,
    mean: arrivals / 2,
    peakWaiting: 0,
    meanWaiting: 0,
    ready: 2,
    arrivals,
    departures: arrivals,
    abandoned: 0,
    firstTokens: 0,
    firstTokenMs: 0,
    late: i === n - 1 ? late : 0,
  }));
}

describe('sloStanding: the p99 queue wait against queue_wait_slo over the history', () => {
  it('an hour of 8,820 requests: 88 late is within the 1% a p99 allows, 89 is over it', () => {
    expect(sloStanding(history(360, 24.5, 88), BUCKET_MS)).toEqual({
      requests: 8820,
      late: 88,
      budget: expect.closeTo(88.2, 6) as number,
      verdict: 'held',
      windowMs: 3_600_000,
    });
    expect(sloStanding(history(360, 24.5, 89), BUCKET_MS).verdict).toBe('missed');
  });

  it('under 100 requests say nothing of a p99, even with one late (over 1%)', () => {
    expect(sloStanding(history(33, 3, 1), BUCKET_MS)).toMatchObject({ requests: 99, late: 1, verdict: 'unknown' });
    expect(sloStanding(history(50, 2, 2), BUCKET_MS)).toMatchObject({ requests: 100, verdict: 'missed' });
    expect(sloStanding([], BUCKET_MS)).toMatchObject({ requests: 0, late: 0, verdict: 'unknown', windowMs: 0 });
  });

  it('nor does a history under 5 minutes: a cold start’s first workers coming up, not the service', () => {
    expect(sloStanding(history(29, 100, 500), BUCKET_MS)).toMatchObject({ windowMs: 290_000, verdict: 'unknown' });
    expect(sloStanding(history(30, 100, 500), BUCKET_MS)).toMatchObject({ windowMs: 300_000, verdict: 'missed' });
  });
});

describe('SloWatch: says when the SLO begins to miss and when it holds again', () => {
  const reading = (late: number, budget = 10): SloStanding => ({
    requests: budget * 100,
    late,
    budget,
    verdict: late > budget ? 'missed' : 'held',
    windowMs: 3_600_000,
  });

  it('once per change; holding again needs the late requests under 80% of what is allowed', () => {
    const watch = new SloWatch();
    const said = [5, 12, 15, 9.5, 8, 7, 11, 3].map((late) => watch.update(reading(late)));
    expect(said).toEqual([undefined, 'missed', undefined, undefined, 'held-again', undefined, 'missed', 'held-again']);
  });

  it('a history emptied of requests after a miss holds again (nothing is late in it)', () => {
    const watch = new SloWatch();
    expect(watch.update(reading(20))).toBe('missed');
    expect(watch.update({ requests: 0, late: 0, budget: 0, verdict: 'unknown', windowMs: 0 })).toBe('held-again');
  });
});
