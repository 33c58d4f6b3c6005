import type {
  AggregationOption,
  AggregationTemporality,
  InstrumentType,
  PushMetricExporter,
  ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { Logger } from './logger.js';

/** An exporter's result, as the SDK hands it to its callback (ExportResultCode: 0 success, 1 failed). */
type ExportResult = Parameters<Parameters<PushMetricExporter['export']>[1]>[0];
const SUCCESS = 0 as ExportResult['code'];

/**
 * Export towards a collector that may not be there (export is on by default, to
 * localhost:4317): the first failure is one warning line, the next ones are only counted
 * (flockserve_otlp_export_failures), and the first success after them is logged at info.
 * Failures are handled here: passed on, the SDK's reader and span processor hand them to the
 * global error handler, which logs a stack trace at every export and at exit.
 */
export class ExportWatch {
  readonly signal: 'metrics' | 'traces';
  readonly endpoint: string;
  /** Failed exports since the start. */
  failures = 0;
  readonly #log: Logger;
  /** Failures in a row: 0 while exports work. */
  #run = 0;

  constructor(signal: 'metrics' | 'traces', endpoint: string, log: Logger) {
    this.signal = signal;
    this.endpoint = endpoint;
    this.#log = log;
  }

  /** Takes one export's result; returns the result to hand on: a success, the failure being handled. */
  result(r: ExportResult): ExportResult {
    if (r.code === SUCCESS) {
      if (this.#run > 0)
        this.#log.info(
          { signal: this.signal, endpoint: this.endpoint, failed: this.#run },
          `OTLP ${this.signal} export to ${this.endpoint} works again, after ${this.#run} failed`,
        );
      this.#run = 0;
      return r;
    }
    this.failures++;
    if (this.#run++ === 0)
      this.#log.warn(
        { signal: this.signal, endpoint: this.endpoint, error: firstLine(r.error) },
        `OTLP ${this.signal} export to ${this.endpoint} failed (${firstLine(r.error)}); retrying without further warnings until it works, failures are counted in flockserve_otlp_export_failures`,
      );
    return { code: SUCCESS };
  }
}

function firstLine(err: Error | undefined): string {
  const text = err?.message ?? 'unknown error';
  const line = text.split('\n', 1)[0] ?? text;
  return line.length > 200 ? `${line.slice(0, 200)}...` : line;
}

/** `inner`'s export, with each result passed through `watch`. */
function watchedExport<T>(
  inner: { export(items: T, done: (result: ExportResult) => void): void },
  watch: ExportWatch,
): (items: T, done: (result: ExportResult) => void) => void {
  return (items, done) => inner.export(items, (r) => done(watch.result(r)));
}

/** A metric exporter whose results go through an ExportWatch. */
export class WatchedMetricExporter implements PushMetricExporter {
  readonly export: (metrics: ResourceMetrics, done: (result: ExportResult) => void) => void;
  readonly #inner: PushMetricExporter;

  constructor(inner: PushMetricExporter, watch: ExportWatch) {
    this.#inner = inner;
    this.export = watchedExport(inner, watch);
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush();
  }

  selectAggregationTemporality(type: InstrumentType): AggregationTemporality {
    return this.#inner.selectAggregationTemporality!(type);
  }

  selectAggregation(type: InstrumentType): AggregationOption {
    return this.#inner.selectAggregation!(type);
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }
}

/** A span exporter whose results go through an ExportWatch. */
export class WatchedSpanExporter implements SpanExporter {
  readonly export: (spans: ReadableSpan[], done: (result: ExportResult) => void) => void;
  readonly #inner: SpanExporter;

  constructor(inner: SpanExporter, watch: ExportWatch) {
    this.#inner = inner;
    this.export = watchedExport(inner, watch);
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve();
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }
}
