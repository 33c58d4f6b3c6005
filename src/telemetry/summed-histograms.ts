import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { emptyResource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  type CollectionResult,
  type DataPoint,
  type Histogram,
  type HistogramMetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import { SeriesMap, type SeriesKey } from './series-map.js';

export interface HistogramSpec {
  readonly name: string;
  readonly description: string;
  readonly unit: string;
  /** Upper bounds of the buckets, ascending; a value equal to a bound falls in that bound's bucket. */
  readonly boundaries: readonly number[];
  /** The attributes each series is keyed by, in the order `record` takes their values. */
  readonly attributes: readonly string[];
}

/** One series' running sums, from the gateway's start. */
class Sums {
  readonly counts: number[];
  sum = 0;
  count = 0;
  min = Infinity;
  max = -Infinity;

  constructor(
    buckets: number,
    readonly startTime: HrTime,
  ) {
    this.counts = new Array<number>(buckets).fill(0);
  }
}

/**
 * A histogram summed in process and read by the metric readers at collection time: what the
 * SDK's histogram instrument does, without hashing the attributes on every record (see
 * SeriesMap). For the histograms recorded on every request.
 */
export class SummedHistogram {
  readonly spec: HistogramSpec;
  readonly #series: SeriesMap<Sums>;

  constructor(spec: HistogramSpec, now: () => HrTime) {
    this.spec = spec;
    const buckets = spec.boundaries.length + 1;
    this.#series = new SeriesMap(spec.attributes, () => new Sums(buckets, now()));
  }

  /** As the SDK's: NaN and negative values are dropped (a histogram takes non-negative values). */
  record(value: number, k0?: SeriesKey, k1?: SeriesKey, k2?: SeriesKey, k3?: SeriesKey, k4?: SeriesKey): void {
    if (!(value >= 0)) return;
    const s = this.#series.get(k0, k1, k2, k3, k4);
    s.count++;
    s.sum += value;
    if (value < s.min) s.min = value;
    if (value > s.max) s.max = value;
    // Linear: the bounds are few and most values land in the first buckets.
    const bounds = this.spec.boundaries;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    s.counts[i]!++;
  }

  series(): IterableIterator<[Attributes, Sums]> {
    return this.#series.entries();
  }
}

/**
 * The gateway's summed histograms, and a MetricProducer per metric reader that hands them to it
 * with the rest of a collection: cumulative (Prometheus, and OTLP by default), or delta (OTLP with
 * `temporalityPreference: delta`), where each reader gets what was recorded since its last
 * collection. Delta points carry no min and max: they are kept from the start only.
 */
export class SummedHistograms {
  readonly #all: SummedHistogram[] = [];
  readonly #now: () => HrTime;
  readonly #scope: string;

  /** `now` is wall-clock time (points carry timestamps); `scope` names the instrumentation scope. */
  constructor(scope: string, now: () => HrTime = wallClockHrTime) {
    this.#scope = scope;
    this.#now = now;
  }

  create(spec: HistogramSpec): SummedHistogram {
    const h = new SummedHistogram(spec, this.#now);
    this.#all.push(h);
    return h;
  }

  producer(temporality: AggregationTemporality): MetricProducer {
    return temporality === AggregationTemporality.DELTA ? this.#deltaProducer() : this.#cumulativeProducer();
  }

  #cumulativeProducer(): MetricProducer {
    return {
      collect: () => {
        const endTime = this.#now();
        return this.#result(AggregationTemporality.CUMULATIVE, (bounds, attributes, s) => ({
          attributes,
          startTime: s.startTime,
          endTime,
          value: histogramValue(bounds, s.counts.slice(), s.sum, s.count, s.min, s.max),
        }));
      },
    };
  }

  #deltaProducer(): MetricProducer {
    const last = new WeakMap<Sums, { counts: number[]; sum: number; count: number }>();
    let lastCollection: HrTime | undefined;
    return {
      collect: () => {
        const endTime = this.#now();
        const since = lastCollection;
        lastCollection = endTime;
        return this.#result(AggregationTemporality.DELTA, (bounds, attributes, s) => {
          const before = last.get(s);
          last.set(s, { counts: s.counts.slice(), sum: s.sum, count: s.count });
          if (before?.count === s.count) return undefined;
          const counts = before ? s.counts.map((n, i) => n - before.counts[i]!) : s.counts.slice();
          return {
            attributes,
            startTime: since && before ? since : s.startTime,
            endTime,
            value: histogramValue(bounds, counts, s.sum - (before?.sum ?? 0), s.count - (before?.count ?? 0)),
          };
        });
      },
    };
  }

  #result(
    temporality: AggregationTemporality,
    point: (bounds: readonly number[], attributes: Attributes, s: Sums) => DataPoint<Histogram> | undefined,
  ): Promise<CollectionResult> {
    const metrics: HistogramMetricData[] = [];
    for (const h of this.#all) {
      const dataPoints: DataPoint<Histogram>[] = [];
      for (const [attributes, s] of h.series()) {
        const p = point(h.spec.boundaries, attributes, s);
        if (p) dataPoints.push(p);
      }
      if (dataPoints.length === 0) continue;
      const { name, description, unit } = h.spec;
      metrics.push({
        descriptor: { name, description, unit, valueType: ValueType.DOUBLE },
        aggregationTemporality: temporality,
        dataPointType: DataPointType.HISTOGRAM,
        dataPoints,
      });
    }
    return Promise.resolve({
      // The reader keeps the SDK's resource and takes only the scopes from a producer.
      resourceMetrics: { resource: emptyResource(), scopeMetrics: [{ scope: { name: this.#scope }, metrics }] },
      errors: [],
    });
  }
}

function histogramValue(
  boundaries: readonly number[],
  counts: number[],
  sum: number,
  count: number,
  min?: number,
  max?: number,
): Histogram {
  return {
    buckets: { boundaries: [...boundaries], counts },
    sum,
    count,
    ...(min !== undefined && count > 0 ? { min, max } : {}),
  };
}

function wallClockHrTime(): HrTime {
  const ms = Date.now();
  return [Math.floor(ms / 1000), (ms % 1000) * 1e6];
}
