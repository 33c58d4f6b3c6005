import { randomUUID } from 'node:crypto';
import {
  detectResources,
  envDetector,
  hostDetector,
  processDetector,
  resourceFromAttributes,
  type Resource,
} from '@opentelemetry/resources';
import { VERSION } from '../version.js';

/**
 * OpenTelemetry's standard environment variables, read where FlockServe's own options leave a
 * setting open: a flag (or its FLOCKSERVE_* variable) wins, then the OTEL_* variable, then
 * FlockServe's default. See https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/
 *
 * These are what the SDK's NodeSDK reads too; FlockServe does not use NodeSDK itself because it
 * registers its providers as the process's global ones, and a process may run several gateways
 * (tests, embedding), each with its own meters.
 */

/** FlockServe's default collector: an OpenTelemetry collector on this machine, OTLP over gRPC. */
export const DEFAULT_OTLP_ENDPOINT = 'http://localhost:4317';
/** FlockServe's default export interval, seconds. */
export const DEFAULT_EXPORT_INTERVAL = 120;

export interface OtlpSettings {
  /** OTEL_SDK_DISABLED=true: nothing is exported over OTLP (GET /metrics still answers). */
  readonly disabled: boolean;
  readonly metricsEndpoint: string;
  readonly tracesEndpoint: string;
  /** Seconds between metric exports. */
  readonly exportInterval: number;
  /** How long the periodic reader waits for one export: the interval, at most 30 s. */
  readonly readerTimeoutMs: number;
  /**
   * How long the exporter waits for the collector (OTEL_EXPORTER_OTLP_METRICS_TIMEOUT, else
   * OTEL_EXPORTER_OTLP_TIMEOUT, else the SDK's 10 s), kept within the reader's wait: a collector
   * that does not answer is then a failed export (counted) rather than the reader giving up on
   * the exporter (which the SDK logs at every export).
   */
  readonly exporterTimeoutMs: number;
  /** Settings FlockServe cannot follow, each with why: logged once at startup. */
  readonly ignored: readonly string[];
}

/**
 * FlockServe's options (undefined: not given) and the environment → where and how often to export.
 * E.g. OTEL_EXPORTER_OTLP_ENDPOINT=http://otel:4317 and OTEL_METRIC_EXPORT_INTERVAL=15000 with no
 * flags → metrics and spans to http://otel:4317, every 15 s.
 */
export function otlpSettings(
  options: { readonly otelCollectorEndpoint: string | undefined; readonly otelExportInterval: number | undefined },
  env: NodeJS.ProcessEnv,
): OtlpSettings {
  const set = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v ? v : undefined;
  };
  const ignored: string[] = [];
  let exportInterval = options.otelExportInterval;
  const intervalMs = set('OTEL_METRIC_EXPORT_INTERVAL');
  if (exportInterval === undefined && intervalMs !== undefined) {
    const ms = Number(intervalMs);
    if (Number.isFinite(ms) && ms >= 100) exportInterval = ms / 1000;
    else ignored.push(`OTEL_METRIC_EXPORT_INTERVAL=${intervalMs}: not a number of milliseconds >= 100`);
  }
  const interval = exportInterval ?? DEFAULT_EXPORT_INTERVAL;
  const readerTimeoutMs = Math.min(30_000, interval * 1000);
  const timeout = Number(set('OTEL_EXPORTER_OTLP_METRICS_TIMEOUT') ?? set('OTEL_EXPORTER_OTLP_TIMEOUT') ?? 10_000);
  const protocol = set('OTEL_EXPORTER_OTLP_METRICS_PROTOCOL') ?? set('OTEL_EXPORTER_OTLP_PROTOCOL');
  if (protocol !== undefined && protocol !== 'grpc')
    ignored.push(`OTEL_EXPORTER_OTLP_PROTOCOL=${protocol}: FlockServe exports OTLP over gRPC only`);
  return {
    disabled: set('OTEL_SDK_DISABLED')?.toLowerCase() === 'true',
    metricsEndpoint:
      options.otelCollectorEndpoint ??
      set('OTEL_EXPORTER_OTLP_METRICS_ENDPOINT') ??
      set('OTEL_EXPORTER_OTLP_ENDPOINT') ??
      DEFAULT_OTLP_ENDPOINT,
    tracesEndpoint:
      options.otelCollectorEndpoint ??
      set('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') ??
      set('OTEL_EXPORTER_OTLP_ENDPOINT') ??
      DEFAULT_OTLP_ENDPOINT,
    exportInterval: interval,
    readerTimeoutMs,
    exporterTimeoutMs: Math.min(
      Number.isFinite(timeout) && timeout > 0 ? timeout : 10_000,
      Math.floor(readerTimeoutMs * 0.9),
    ),
    ignored,
  };
}

/**
 * Process attributes that are safe to export: the process detector also reports the command
 * line, which holds --node_control_key when the key is given as a flag.
 */
const PROCESS_ATTRIBUTES = [
  'process.pid',
  'process.executable.name',
  'process.runtime.name',
  'process.runtime.version',
  'process.runtime.description',
];

/**
 * The resource every metric and span of this gateway carries: service.name `flockserve`,
 * service.version, a service.instance.id new at each start (two gateways' streams stay apart),
 * the host (host.name, host.arch, host.id) and the process (pid, runtime), then
 * OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME over those (their values win, as the
 * specification says).
 */
export function gatewayResource(): Resource {
  // The process detector's attributes are all known at once; the host's id is read from a file
  // later (an async attribute the exporter waits for), so the host resource is merged as it is.
  const detected = detectResources({ detectors: [processDetector] }).attributes;
  const processAttributes = Object.fromEntries(
    PROCESS_ATTRIBUTES.flatMap((k) => (k in detected ? [[k, detected[k]]] : [])),
  );
  return resourceFromAttributes({
    'service.name': 'flockserve',
    'service.version': VERSION,
    'service.instance.id': randomUUID(),
    ...processAttributes,
  })
    .merge(detectResources({ detectors: [hostDetector] }))
    .merge(detectResources({ detectors: [envDetector] }));
}
