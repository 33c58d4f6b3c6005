import { describe, expect, it } from 'vitest';
import { BurstRhythm, burstsIn } from '../../../../src/core/autoscaler/burst-rhythm.js';
import type { LoadBucket } from '../../../../src/core/load-history.js';

const S = 1000;
const BUCKET = 10 * S;
const C = 30;

function bucket(startMs: number, arrivals: number, peak: number, peakWaiting = 0): LoadBucket {
  return {
    startMs,
    peak,
    mean: Math.min(peak, 3),
    peakWaiting,
    meanWaiting: peakWaiting / 10,
    ready: 1,
    arrivals,
    departures: arrivals,
    abandoned: 0,
    firstTokens: 0,
    firstTokenMs: 0,
    late: 0,
  };
}

/**
 * The history's last hour up to `nowMs`, 10 s buckets of 5 arrivals (0.5 req/s) standing at 3 in
 * flight, and a burst at each of `burstsAtS`: `size` requests in its first bucket (standing at
 * that many), served within the next.
 */
function history(nowMs: number, burstsAtS: readonly number[], size = 150): LoadBucket[] {
  const out: LoadBucket[] = [];
  for (let t = Math.max(0, nowMs - 3600 * S); t + BUCKET <= nowMs; t += BUCKET) {
    const burst = burstsAtS.find((b) => b * S === t);
    const after = burstsAtS.find((b) => b * S + BUCKET === t);
    out.push(
      burst !== undefined ? bucket(t, size, size) : after !== undefined ? bucket(t, 5, size / 3) : bucket(t, 5, 3),
    );
  }
  return out;
}

describe('burstsIn', () => {
  it('finds a burst over two buckets with the requests it brought above the median pace and where its load ends', () => {
    const h = [
      ...Array.from({ length: 20 }, (_, i) => bucket(i * BUCKET, 5, 3)),
      bucket(200 * S, 165, 120),
      bucket(210 * S, 65, 160),
      bucket(220 * S, 5, 40),
      bucket(230 * S, 5, 3),
      bucket(240 * S, 5, 3),
    ];
    expect(burstsIn(h, C)).toEqual([{ startMs: 200 * S, requests: 220, load: 157, untilMs: 230 * S }]);
  });

  it('leaves out a rise longer than 30 s (a change of load), a bump under a worker’s slots, and a run the history begins in', () => {
    const base = (from: number, n: number): LoadBucket[] =>
      Array.from({ length: n }, (_, i) => bucket((from + i) * BUCKET, 5, 3));
    const h = [
      bucket(0, 100, 100), // cut by the history's start
      ...base(1, 20),
      ...[21, 22, 23, 24].map((i) => bucket(i * BUCKET, 60, 60)), // 40 s of a higher load
      ...base(25, 20),
      bucket(45 * BUCKET, 25, 25), // 20 over the median, under C
      ...base(46, 20),
    ];
    expect(burstsIn(h, C)).toEqual([]);
  });

  it('a load that waits after its burst lasts until nothing waits', () => {
    const h = [
      ...Array.from({ length: 10 }, (_, i) => bucket(i * BUCKET, 5, 3)),
      bucket(100 * S, 150, 150, 60),
      bucket(110 * S, 5, 60, 20),
      bucket(120 * S, 5, 5, 1),
      bucket(130 * S, 5, 3),
    ];
    expect(burstsIn(h, C)[0]?.untilMs).toBe(130 * S);
  });
});

describe('BurstRhythm', () => {
  const LEAD = 90 * S;
  // Bursts 500-700 s apart: the shortest seen is 500, the longest 700.
  const starts = [300, 900, 1400, 2100, 2700];

  it('knows no rhythm before two gaps are seen', () => {
    const now = 1000 * S;
    expect(new BurstRhythm().at(history(now, starts.slice(0, 2)), BUCKET, C, now, LEAD)).toBeUndefined();
    const later = 1500 * S;
    expect(new BurstRhythm().at(history(later, starts.slice(0, 3)), BUCKET, C, later, LEAD)?.phase).toBe('quiet');
  });

  it('between bursts: quiet until a launch started now would be ready after the earliest next burst, then due', () => {
    const r = new BurstRhythm();
    const at = (t: number) => r.at(history(t * S, starts), BUCKET, C, t * S, LEAD);
    // Four gaps: 600, 500, 700, 600; the soonest a gap can be: (4·500 − 700)/3 ≈ 433 s, 90% of it 390 s.
    const quiet = at(2800);
    expect(quiet?.phase).toBe('quiet');
    expect(quiet!.earliestNextMs / S).toBeCloseTo(2700 + 0.9 * ((4 * 500 - 700) / 3), 6);
    expect(quiet!.bursts.map((b) => b.startMs / S)).toEqual(starts.filter((s) => s > 2800 - 3600));
    // 150 requests a burst, 5 of them the base's: 145 over the median pace, standing 147 above it.
    expect(quiet!.burstExcess).toBeGreaterThan(100);
    expect(quiet!.burstExcess).toBeLessThanOrEqual(147);
    expect(at(2990)?.phase).toBe('quiet');
    expect(at(3010)?.phase).toBe('due');
  });

  it('says nothing while a burst is under way, and the rhythm lapses past the longest gap by a quarter', () => {
    const r = new BurstRhythm();
    expect(r.at(history(2710 * S, starts), BUCKET, C, 2710 * S, LEAD)).toBeUndefined();
    expect(r.at(history(3500 * S, starts), BUCKET, C, 3500 * S, LEAD)?.phase).toBe('due');
    // Longest gap 700 s: no burst by 2700 + 875 s and the schedule has stopped.
    expect(r.at(history(3580 * S, starts), BUCKET, C, 3580 * S, LEAD)).toBeUndefined();
  });

  it('remembers the bursts the hour of history no longer holds', () => {
    const r = new BurstRhythm();
    const far = [300, 1500, 2600, 3800, 4900];
    for (let t = 400; t < 6300; t += 30) r.at(history(t * S, far), BUCKET, C, t * S, LEAD);
    // At 6300 s the history begins at 2700 s: two bursts are in it, five remembered (four gaps),
    // the soonest next 90% of (4·1100 − 1200)/3 s after the last.
    const now = 6300 * S;
    const phase = r.at(history(now, far), BUCKET, C, now, LEAD);
    expect(phase?.bursts.length).toBe(2);
    expect(phase?.earliestNextMs).toBeCloseTo((4900 + 0.9 * ((4 * 1100 - 1200) / 3)) * S, 6);
    expect(phase?.phase).toBe('due');
    // A fresh rhythm sees only the two (one gap): none yet.
    expect(new BurstRhythm().at(history(now, far), BUCKET, C, now, LEAD)).toBeUndefined();
  });

  it('follows no rhythm whose bursts come too close to shed their workers between them', () => {
    const r = new BurstRhythm();
    const close = [300, 500, 700, 900, 1100];
    const now = 1150 * S;
    expect(r.at(history(now, close), BUCKET, C, now, LEAD)).toBeUndefined();
  });
});
