import { Metadata } from '@grpc/grpc-js';
import { DiagLogLevel, diag, type Tracer } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import {
  AggregationTemporality,
  InstrumentType,
  MeterProvider,
  PeriodicExportingMetricReader,
  type IMetricReader,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { performance } from 'node:perf_hooks';
import { ConfigError } from '../config/resolve.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from './logger.js';
import { ExportWatch, WatchedMetricExporter, WatchedSpanExporter } from './export-watch.js';
import { GatewayMetrics, type GatewayState } from './metrics.js';
import type { Resource } from '@opentelemetry/resources';
import { gatewayResource, otlpSettings } from './otel-env.js';
import { RequestLog } from './request-log.js';
import { TelemetryObserver } from './request-observer.js';
import { SummedHistograms } from './summed-histograms.js';
import { RequestTracer } from './tracing.js';

export interface TelemetryConfig {
  readonly metricsId: number;
  /** Unset: the OTEL_EXPORTER_OTLP_* variables, else FlockServe's default (see otel-env.ts). */
  readonly otelCollectorEndpoint: string | undefined;
  readonly otelMetricsExporterSettings: Record<string, unknown>;
  /** Seconds between OTLP exports; unset: OTEL_METRIC_EXPORT_INTERVAL, else 120. */
  readonly otelExportInterval: number | undefined;
  readonly otelTraces: boolean;
  readonly requestLog: string | undefined;
  readonly requestLogBodies: boolean;
}

export interface TelemetryOptions {
  readonly config: TelemetryConfig;
  readonly state: Omit<GatewayState, 'requestLogStats' | 'exportFailures'>;
  /** Where the OTEL_* variables are read (default: process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** Drives the request log's flushes. */
  readonly clock: Clock;
  readonly log: Logger;
  /**
   * Where request spans go when otel_traces is on; default: a tracer of our own whose
   * spans are batched and exported over OTLP gRPC to otel_collector_endpoint.
   */
  readonly tracer?: Tracer | undefined;
}

/** Longest wait for the last OTLP export on shutdown, so an absent collector cannot hold the exit. */
const SHUTDOWN_GRACE_MS = 3000;

/**
 * The gateway's telemetry, assembled from the options (and OpenTelemetry's OTEL_* variables
 * where the options leave a setting open: otel-env.ts): one MeterProvider whose meters
 * feed both a Prometheus reader (serialised on demand for `GET /metrics`) and, unless
 * metrics_id < 0 or OTEL_SDK_DISABLED, a periodic OTLP gRPC exporter; with otel_traces, a
 * tracer provider batching request spans to the collector; the request observer; the
 * request log. Export failures are watched (export-watch.ts): one warning, then a count.
 */
export class Telemetry {
  readonly metrics: GatewayMetrics;
  readonly observer: TelemetryObserver;
  readonly requestLog: RequestLog | undefined;
  readonly #provider: MeterProvider;
  /** Ours only when otel_traces is on and no tracer was given; not registered globally. */
  readonly #tracerProvider: BasicTracerProvider | undefined;
  readonly #prometheus: PrometheusExporter;
  readonly #resource: Resource;
  readonly #serializer = new PrometheusSerializer();

  constructor(opts: TelemetryOptions) {
    const c = opts.config;
    routeDiagnostics(opts.log);
    const otlp = otlpSettings(c, opts.env ?? process.env);
    for (const why of otlp.ignored) opts.log.warn(`opentelemetry: ignoring ${why}`);
    const histograms = new SummedHistograms('flockserve');
    // Served by the gateway's own HTTP listener: the exporter's server stays off.
    this.#prometheus = new PrometheusExporter({
      preventServerStart: true,
      metricProducers: [histograms.producer(AggregationTemporality.CUMULATIVE)],
    });
    const readers: IMetricReader[] = [this.#prometheus];
    const watches: ExportWatch[] = [];
    if (c.metricsId >= 0 && !otlp.disabled) {
      const watch = new ExportWatch('metrics', otlp.metricsEndpoint, opts.log);
      watches.push(watch);
      const exporter = new OTLPMetricExporter(
        otlpExporterConfig(otlp.metricsEndpoint, {
          timeoutMillis: otlp.exporterTimeoutMs,
          ...c.otelMetricsExporterSettings,
        }),
      );
      readers.push(
        new PeriodicExportingMetricReader({
          exporter: new WatchedMetricExporter(exporter, watch),
          exportIntervalMillis: otlp.exportInterval * 1000,
          exportTimeoutMillis: otlp.readerTimeoutMs,
          metricProducers: [histograms.producer(exporter.selectAggregationTemporality(InstrumentType.HISTOGRAM))],
        }),
      );
    }
    const resource = gatewayResource();
    this.#resource = resource;
    this.#provider = new MeterProvider({ resource, readers });
    // The exporter settings are shared with metrics (metadata, timeoutMillis, compression...);
    // metric-only keys such as temporalityPreference are ignored by the trace exporter.
    let spanWatch: ExportWatch | undefined;
    if (c.otelTraces && !opts.tracer && !otlp.disabled) {
      spanWatch = new ExportWatch('traces', otlp.tracesEndpoint, opts.log);
      watches.push(spanWatch);
    }
    this.#tracerProvider = spanWatch
      ? new BasicTracerProvider({
          resource,
          spanProcessors: [
            new BatchSpanProcessor(
              new WatchedSpanExporter(
                new OTLPTraceExporter(otlpExporterConfig(otlp.tracesEndpoint, c.otelMetricsExporterSettings)),
                spanWatch,
              ),
            ),
          ],
        })
      : undefined;
    const tracer = opts.tracer ?? this.#tracerProvider?.getTracer('flockserve');
    this.requestLog = c.requestLog
      ? new RequestLog({ path: c.requestLog, clock: opts.clock, log: opts.log })
      : undefined;
    const requestLog = this.requestLog;
    this.metrics = new GatewayMetrics(this.#provider.getMeter('flockserve'), histograms, c.metricsId, {
      ...opts.state,
      ...(requestLog ? { requestLogStats: () => requestLog.stats } : {}),
      exportFailures: () => watches,
    });
    this.observer = new TelemetryObserver({
      metrics: this.metrics,
      now: () => performance.now(),
      wallClock: () => Date.now(),
      log: opts.log,
      // OTEL_SDK_DISABLED turns the spans off with the rest: no traceparent either.
      tracer: c.otelTraces && !(otlp.disabled && !opts.tracer) ? new RequestTracer(tracer) : undefined,
      requestLog,
      logBodies: c.requestLogBodies,
    });
  }

  /** The metrics in Prometheus text format (for `GET /metrics`). */
  async prometheusText(): Promise<string> {
    // The host's id comes later than the rest of the resource (read from a file): a scrape
    // waits for it, as the OTLP exporter does, rather than read the resource half settled.
    await this.#resource.waitForAsyncAttributes?.();
    const { resourceMetrics } = await this.#prometheus.collect();
    return this.#serializer.serialize(resourceMetrics);
  }

  /** Sends the last OTLP exports of metrics and spans (bounded wait) and closes the request log. */
  async close(): Promise<void> {
    this.requestLog?.close();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([this.#provider.shutdown().catch(() => {}), this.#tracerProvider?.shutdown().catch(() => {})]),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_GRACE_MS))),
    ]);
    clearTimeout(timer);
  }
}

/**
 * The exporter's AggregationTemporalityPreference (exporter-metrics-otlp-http) by the names the
 * OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE variable takes: JSON settings cannot name an enum.
 */
const TEMPORALITY_PREFERENCE: Record<string, number> = { delta: 0, cumulative: 1, lowmemory: 2 };

/**
 * `otel_metrics_exporter_settings` go to the exporter as they are (its option names:
 * timeoutMillis, compression, concurrencyLimit, temporalityPreference, ...), except
 * that `metadata` or `headers` given as a JSON object become gRPC metadata (the gRPC
 * exporter ignores `headers`), `temporalityPreference` may be given by name ("delta",
 * "cumulative", "lowmemory"), and `url` comes from otel_collector_endpoint unless set here.
 */
export function otlpExporterConfig(
  endpoint: string,
  settings: Record<string, unknown>,
): ConstructorParameters<typeof OTLPMetricExporter>[0] {
  const { metadata, headers, temporalityPreference, ...rest } = settings;
  const pairs = { ...asStrings(headers), ...asStrings(metadata) };
  const md = new Metadata();
  for (const [k, v] of Object.entries(pairs)) md.set(k, v);
  let temporality = temporalityPreference;
  if (typeof temporalityPreference === 'string') {
    temporality = TEMPORALITY_PREFERENCE[temporalityPreference.toLowerCase()];
    if (temporality === undefined)
      throw new ConfigError(
        `otel_metrics_exporter_settings: temporalityPreference "${temporalityPreference}" is not one of ${Object.keys(TEMPORALITY_PREFERENCE).join(', ')}`,
      );
  }
  return {
    url: endpoint,
    ...rest,
    ...(temporality !== undefined ? { temporalityPreference: temporality } : {}),
    ...(Object.keys(pairs).length > 0 ? { metadata: md } : {}),
  } as ConstructorParameters<typeof OTLPMetricExporter>[0];
}

function asStrings(v: unknown): Record<string, string> {
  if (!v || typeof v !== 'object') return {};
  return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, String(x)]));
}

let diagRouted = false;

/** The SDK reports export failures through its diag logger: send warnings and errors to ours. */
function routeDiagnostics(log: Logger): void {
  if (diagRouted) return;
  diagRouted = true;
  diag.setLogger(
    {
      error: (msg, ...args) => log.warn({ detail: args.map(String) }, `opentelemetry: ${msg}`),
      warn: (msg, ...args) => log.warn({ detail: args.map(String) }, `opentelemetry: ${msg}`),
      info: () => {},
      debug: () => {},
      verbose: () => {},
    },
    DiagLogLevel.WARN,
  );
}
