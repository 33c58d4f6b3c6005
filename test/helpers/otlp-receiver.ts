import {
  Server,
  ServerCredentials,
  loadPackageDefinition,
  type ServiceDefinition,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { join } from 'node:path';
import { ROOT } from './gateway.js';

/** A number data point, or a histogram one, as decoded from OTLP. */
export interface OtlpPoint {
  attributes: Record<string, string | number | boolean>;
  value?: number;
  count?: number;
  sum?: number;
  bucketCounts?: number[];
  explicitBounds?: number[];
}

export interface OtlpMetric {
  name: string;
  unit: string;
  kind: 'gauge' | 'sum' | 'histogram';
  monotonic?: boolean;
  /** Sums and histograms: the points hold the totals, or what changed since the export before. */
  temporality?: 'cumulative' | 'delta';
  points: OtlpPoint[];
}

/** A span as decoded from OTLP, ids in hex as in `traceparent`. */
export interface OtlpSpan {
  name: string;
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  kind: string;
  status: string;
  attributes: Record<string, string | number | boolean>;
}

interface Decoded {
  resourceMetrics: {
    resource?: { attributes: KeyValue[] };
    scopeMetrics: { metrics: RawMetric[] }[];
  }[];
}
interface DecodedSpans {
  resourceSpans: {
    resource?: { attributes: KeyValue[] };
    scopeSpans: { spans: RawSpan[] }[];
  }[];
}
interface RawSpan {
  name: string;
  traceId: Buffer;
  spanId: Buffer;
  parentSpanId: Buffer;
  kind: string;
  attributes: KeyValue[];
  status?: { code: string };
}
interface KeyValue {
  key: string;
  value?: { stringValue?: string; intValue?: number; doubleValue?: number; boolValue?: boolean };
}
interface RawPoint {
  attributes: KeyValue[];
  asDouble?: number;
  asInt?: number;
  count?: number;
  sum?: number;
  bucketCounts?: number[];
  explicitBounds?: number[];
}
interface RawMetric {
  name: string;
  unit: string;
  gauge?: { dataPoints: RawPoint[] };
  sum?: { dataPoints: RawPoint[]; isMonotonic: boolean; aggregationTemporality: string };
  histogram?: { dataPoints: RawPoint[]; aggregationTemporality: string };
}

type Service = { service: ServiceDefinition };

/**
 * A real OTLP/gRPC receiver: a grpc-js server implementing the collector's
 * `opentelemetry.proto.collector.metrics.v1.MetricsService/Export` and
 * `opentelemetry.proto.collector.trace.v1.TraceService/Export`, decoded with the
 * OTLP proto subset in test/fixtures/otlp.
 */
export class OtlpReceiver {
  /** Metric exports, in arrival order. */
  readonly exports: Decoded[] = [];
  readonly traceExports: DecodedSpans[] = [];
  readonly #server = new Server();
  port = 0;

  /** Listens on 127.0.0.1:`port` (0: a free one); resolves with its endpoint URL. */
  async start(port = 0): Promise<string> {
    const def = loadSync(
      [
        'opentelemetry/proto/collector/metrics/v1/metrics_service.proto',
        'opentelemetry/proto/collector/trace/v1/trace_service.proto',
      ],
      {
        includeDirs: [join(ROOT, 'test/fixtures/otlp')],
        longs: Number,
        enums: String,
        defaults: true,
        arrays: true,
      },
    );
    const pkg = loadPackageDefinition(def) as unknown as {
      opentelemetry: {
        proto: {
          collector: { metrics: { v1: { MetricsService: Service } }; trace: { v1: { TraceService: Service } } };
        };
      };
    };
    const { metrics, trace } = pkg.opentelemetry.proto.collector;
    this.#server.addService(metrics.v1.MetricsService.service, {
      Export: (call: { request: Decoded }, cb: sendUnaryData<object>) => {
        this.exports.push(call.request);
        cb(null, {});
      },
    });
    this.#server.addService(trace.v1.TraceService.service, {
      Export: (call: { request: DecodedSpans }, cb: sendUnaryData<object>) => {
        this.traceExports.push(call.request);
        cb(null, {});
      },
    });
    this.port = await new Promise<number>((resolve, reject) =>
      this.#server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, bound) =>
        err ? reject(err) : resolve(bound),
      ),
    );
    return `http://127.0.0.1:${this.port}`;
  }

  /** The metrics of the latest export, by name (cumulative temporality: the latest holds the totals). */
  latest(): Map<string, OtlpMetric> {
    const out = new Map<string, OtlpMetric>();
    const last = this.exports.at(-1);
    for (const rm of last?.resourceMetrics ?? [])
      for (const sm of rm.scopeMetrics) for (const m of sm.metrics) out.set(m.name, toMetric(m));
    return out;
  }

  /** The metric `name` in every export that had it, in arrival order (delta temporality: they add up). */
  every(name: string): OtlpMetric[] {
    return this.exports.flatMap((e) =>
      e.resourceMetrics.flatMap((rm) =>
        rm.scopeMetrics.flatMap((sm) => sm.metrics.filter((m) => m.name === name).map(toMetric)),
      ),
    );
  }

  /** The resource attributes of the latest export. */
  resource(): Record<string, string | number | boolean> {
    return attrs(this.exports.at(-1)?.resourceMetrics[0]?.resource?.attributes ?? []);
  }

  /** Every span received, in arrival order. */
  spans(): OtlpSpan[] {
    const hex = (b: Buffer): string => b.toString('hex');
    return this.traceExports.flatMap((e) =>
      e.resourceSpans.flatMap((rs) =>
        rs.scopeSpans.flatMap((ss) =>
          ss.spans.map((s) => ({
            name: s.name,
            traceId: hex(s.traceId),
            spanId: hex(s.spanId),
            parentSpanId: hex(s.parentSpanId),
            kind: s.kind,
            status: s.status?.code ?? 'STATUS_CODE_UNSET',
            attributes: attrs(s.attributes),
          })),
        ),
      ),
    );
  }

  /** The resource attributes of the first trace export. */
  spanResource(): Record<string, string | number | boolean> {
    return attrs(this.traceExports[0]?.resourceSpans[0]?.resource?.attributes ?? []);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.tryShutdown(() => resolve()));
  }
}

function attrs(kvs: KeyValue[]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of kvs) {
    const v = kv.value;
    out[kv.key] = v?.stringValue ?? v?.intValue ?? v?.doubleValue ?? v?.boolValue ?? '';
  }
  return out;
}

function toMetric(m: RawMetric): OtlpMetric {
  const points = (ps: RawPoint[]): OtlpPoint[] =>
    ps.map((p) => ({
      attributes: attrs(p.attributes),
      ...(p.asDouble !== undefined || p.asInt !== undefined ? { value: p.asDouble ?? p.asInt } : {}),
      ...(m.histogram
        ? { count: p.count, sum: p.sum, bucketCounts: p.bucketCounts, explicitBounds: p.explicitBounds }
        : {}),
    }));
  const temporality = (t: string): 'cumulative' | 'delta' =>
    t === 'AGGREGATION_TEMPORALITY_DELTA' ? 'delta' : 'cumulative';
  if (m.histogram)
    return {
      name: m.name,
      unit: m.unit,
      kind: 'histogram',
      temporality: temporality(m.histogram.aggregationTemporality),
      points: points(m.histogram.dataPoints),
    };
  if (m.sum)
    return {
      name: m.name,
      unit: m.unit,
      kind: 'sum',
      monotonic: m.sum.isMonotonic,
      temporality: temporality(m.sum.aggregationTemporality),
      points: points(m.sum.dataPoints),
    };
  return { name: m.name, unit: m.unit, kind: 'gauge', points: points(m.gauge?.dataPoints ?? []) };
}
