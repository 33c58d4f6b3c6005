import fc from 'fast-check';
import { AggregationTemporality, DataPointType, MeterProvider, type MetricData } from '@opentelemetry/sdk-metrics';
import type { HrTime } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { SummedHistograms } from '../../../src/telemetry/summed-histograms.js';
import { InMemoryReader } from '../../helpers/metrics.js';

const BOUNDS = [0, 0.01, 0.5, 1, 10];
const ROUTES = ['/v1/chat/completions', '/generate'];
const WORKERS = ['w-0', 'w-1', 'w-2'];

/** One SDK histogram and one summed histogram over the same bounds, each read by its own reader. */
function pair(temporality: AggregationTemporality) {
  const sdkReader = new InMemoryReader({ aggregationTemporalitySelector: () => temporality });
  const sdk = new MeterProvider({ readers: [sdkReader] })
    .getMeter('t')
    .createHistogram('h', { advice: { explicitBucketBoundaries: BOUNDS } });
  let seconds = 1000;
  let magnitude = 0;
  const histograms = new SummedHistograms('t', (): HrTime => [seconds++, 0]);
  const ours = histograms.create({
    name: 'h',
    description: '',
    unit: '',
    boundaries: BOUNDS,
    attributes: ['route', 'worker'],
  });
  const ourReader = new InMemoryReader({ metricProducers: [histograms.producer(temporality)] });
  new MeterProvider({ readers: [ourReader] });
  return {
    record(value: number, route: string, worker: string): void {
      sdk.record(value, { route, worker });
      ours.record(value, route, worker);
      if (Number.isFinite(value)) magnitude += Math.abs(value);
    },
    /** Both sides' points, ours with each sum that is the SDK's to within rounding (sumsAgree) set to the SDK's. */
    async collect(): Promise<[Points, Points]> {
      const theirs = points((await sdkReader.snapshot()).get('h'));
      const mine = points((await ourReader.snapshot()).get('h'));
      for (const [key, p] of Object.entries(mine)) {
        const sum = theirs[key]?.sum;
        if (sum !== undefined && sumsAgree(p.sum, sum, magnitude)) p.sum = sum;
      }
      return [theirs, mine];
    },
  };
}

type Points = Record<string, { counts: number[]; count: number; sum: number; min?: number; max?: number }>;

/** Data points by their attributes, with what both sides must agree on. */
function points(m: MetricData | undefined): Points {
  const out: Points = {};
  if (!m) return out;
  if (m.dataPointType !== DataPointType.HISTOGRAM) throw new Error('not a histogram');
  for (const p of m.dataPoints) {
    const v = p.value;
    // The SDK makes the series before it drops a NaN, and reports it empty; ours makes none.
    if (v.count === 0) continue;
    expect(v.buckets.boundaries).toEqual(BOUNDS);
    out[JSON.stringify(p.attributes)] = {
      counts: v.buckets.counts,
      count: v.count,
      sum: v.sum ?? 0,
      ...(m.aggregationTemporality === AggregationTemporality.CUMULATIVE ? { min: v.min, max: v.max } : {}),
    };
  }
  return out;
}

/**
 * Whether two sums of the same records agree to within floating-point rounding. A delta sum is
 * the series' sum now less its sum at the last collection, where the SDK's adds up the new
 * records alone: after a large value the difference keeps the large sum's rounding (about
 * EPSILON × `magnitude`, the absolute values recorded so far), which a tiny delta shows.
 */
function sumsAgree(a: number, b: number, magnitude: number): boolean {
  return Math.abs(a - b) <= 4 * Number.EPSILON * Math.max(1, magnitude);
}

const value = fc.oneof(fc.constantFrom(...BOUNDS, -1, Number.NaN, 1e6), fc.double({ min: 0, max: 20, noNaN: true }));
const measurement = fc.tuple(value, fc.constantFrom(...ROUTES), fc.constantFrom(...WORKERS));

describe('SummedHistograms', () => {
  it('collects what the SDK histogram does over the same records: buckets (bounds inclusive), count, sum, min, max', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(measurement, { maxLength: 60 }), async (records) => {
        const h = pair(AggregationTemporality.CUMULATIVE);
        for (const [v, route, worker] of records) h.record(v, route, worker);
        const [sdk, ours] = await h.collect();
        expect(ours).toEqual(sdk);
      }),
      { numRuns: 100 },
    );
  });

  it('delta: each collection holds what was recorded since the one before, as the SDK’s', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(measurement, { maxLength: 20 }), { minLength: 1, maxLength: 4 }),
        async (rounds) => {
          const h = pair(AggregationTemporality.DELTA);
          for (const round of rounds) {
            for (const [v, route, worker] of round) h.record(v, route, worker);
            const [sdk, ours] = await h.collect();
            expect(ours).toEqual(sdk);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a delta point starts where the reader’s last collection ended; a cumulative one where its series began', async () => {
    let seconds = 100;
    const histograms = new SummedHistograms('t', (): HrTime => [seconds++, 0]);
    const h = histograms.create({ name: 'h', description: 'd', unit: 's', boundaries: [1], attributes: [] });
    const delta = histograms.producer(AggregationTemporality.DELTA);
    const cumulative = histograms.producer(AggregationTemporality.CUMULATIVE);
    const point = async (p: typeof delta) => {
      const m = (await p.collect()).resourceMetrics.scopeMetrics[0]!.metrics[0];
      return m?.dataPoints[0] ? { start: m.dataPoints[0].startTime[0], end: m.dataPoints[0].endTime[0] } : undefined;
    };
    h.record(0.5); // the series begins at 100
    expect(await point(delta)).toEqual({ start: 100, end: 101 });
    h.record(0.5);
    expect(await point(delta)).toEqual({ start: 101, end: 102 });
    expect(await point(cumulative)).toEqual({ start: 100, end: 103 });
    expect(await point(delta)).toBeUndefined(); // nothing recorded since
  });
});
