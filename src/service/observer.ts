import type { Headers } from '../upstream/client.js';

/**
 * What the HTTP and gRPC adapters tell telemetry about each inference request. The
 * adapters call it at three moments (arrival, worker answered, finished) and hand over
 * the answer's body chunks they copy anyway; all measuring happens behind this
 * interface, so the adapters stay free of metrics, tracing and request-log code.
 */
export interface RequestObserver {
  begin(start: RequestStart): RequestRecord;
}

export interface RequestStart {
  readonly transport: 'http' | 'grpc';
  readonly method: string;
  /** A route name of bounded cardinality: a known inference path, or `other`. */
  readonly route: string;
  /** The client's headers (HTTP) or metadata (gRPC): read for an incoming `traceparent`. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export interface RequestAnswered {
  readonly worker: string;
  readonly status: number;
  /** The worker's body is an SSE stream (chunks arrive token by token). */
  readonly stream: boolean;
  /** Time the request waited in the gateway queue for a slot. */
  readonly queueWaitMs: number;
  /** The worker's response headers (TGI reports its token counts in x-generated-tokens and x-prompt-tokens). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

export interface RequestEnd {
  /** The status the client got (HTTP status; gRPC calls report the HTTP status they map from). */
  readonly status: number;
  /** The client went away before the answer was complete. */
  readonly aborted?: boolean;
  /** The request's `user` field, when it has one (request log). */
  readonly user?: string | undefined;
  /** The request's `model` field, when it has one (the metrics' model label). */
  readonly model?: string | undefined;
  /** The request body as received (request log with bodies). */
  readonly requestBody?: Buffer | undefined;
  readonly error?: string | undefined;
}

/** One request in flight. `finish` may be called more than once; only the first counts. */
export interface RequestRecord {
  /** Extra headers for the worker (W3C `traceparent` when tracing is on), or undefined. */
  readonly upstreamHeaders: Headers | undefined;
  answered(info: RequestAnswered): void;
  /** A piece of the answer's body on its way to the client (tokens are counted from these). */
  chunk(data: Buffer): void;
  finish(end: RequestEnd): void;
}

const NOOP_RECORD: RequestRecord = {
  upstreamHeaders: undefined,
  answered: () => {},
  chunk: () => {},
  finish: () => {},
};

/** Observes nothing: the default when no telemetry is wired (tests, embedding). */
export const NOOP_OBSERVER: RequestObserver = { begin: () => NOOP_RECORD };
