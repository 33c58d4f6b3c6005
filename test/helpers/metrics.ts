import type { Attributes } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  MeterProvider,
  MetricReader,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { SummedHistograms } from '../../src/telemetry/summed-histograms.js';

/** A metric reader that only collects when asked: metrics asserted in memory, no exporter. */
export class InMemoryReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}

  /** Every metric of the last collection, by name. */
  async snapshot(): Promise<Map<string, MetricData>> {
    const { resourceMetrics } = await this.collect();
    const out = new Map<string, MetricData>();
    for (const scope of resourceMetrics.scopeMetrics) for (const m of scope.metrics) out.set(m.descriptor.name, m);
    return out;
  }
}

/** A meter and the summed histograms, both read by one in-memory reader (cumulative). */
export function meterWithReader(): { provider: MeterProvider; histograms: SummedHistograms; reader: InMemoryReader } {
  const histograms = new SummedHistograms('test');
  const reader = new InMemoryReader({ metricProducers: [histograms.producer(AggregationTemporality.CUMULATIVE)] });
  return { provider: new MeterProvider({ readers: [reader] }), histograms, reader };
}

const matches = (have: Attributes, want: Attributes): boolean => Object.entries(want).every(([k, v]) => have[k] === v);

/** The value of a counter/gauge point whose attributes include `attrs` (undefined when absent). */
export function pointValue(m: MetricData | undefined, attrs: Attributes = {}): number | undefined {
  if (!m || m.dataPointType === DataPointType.HISTOGRAM || m.dataPointType === DataPointType.EXPONENTIAL_HISTOGRAM)
    return undefined;
  const p = m.dataPoints.find((d) => matches(d.attributes, attrs));
  return p?.value;
}

/** The histogram point whose attributes include `attrs`. */
export function histogramPoint(m: MetricData | undefined, attrs: Attributes = {}): Histogram | undefined {
  if (!m || m.dataPointType !== DataPointType.HISTOGRAM) return undefined;
  return m.dataPoints.find((d) => matches(d.attributes, attrs))?.value;
}
