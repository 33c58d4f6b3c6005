/**
 * The gateway's error catalogue: one row per code with its HTTP status, gRPC status,
 * OpenAI error `type` and default message. The HTTP adapters and the gRPC service both
 * translate a GatewayError from this table, so a code means the same on every transport.
 *
 * gRPC codes are the numbers of @grpc/grpc-js's `status` enum (core does not import
 * grpc; test/unit/core/errors.test.ts checks the numbers against the enum):
 *   CANCELLED 1, INVALID_ARGUMENT 3, DEADLINE_EXCEEDED 4, NOT_FOUND 5, ALREADY_EXISTS 6,
 *   PERMISSION_DENIED 7, RESOURCE_EXHAUSTED 8, FAILED_PRECONDITION 9, INTERNAL 13, UNAVAILABLE 14,
 *   UNAUTHENTICATED 16.
 */

export type OpenAIErrorType =
  'invalid_request_error' | 'authentication_error' | 'permission_error' | 'rate_limit_error' | 'server_error';

export interface ErrorSpec {
  readonly status: number;
  readonly grpcCode: number;
  readonly type: OpenAIErrorType;
  readonly message: string;
  /** Default Retry-After (seconds) for codes that tell the client to come back. */
  readonly retryAfterSeconds?: number;
}

export const ERRORS = {
  bad_request: {
    status: 400,
    grpcCode: 3, // INVALID_ARGUMENT
    type: 'invalid_request_error',
    message: 'The request is not valid.',
  },
  invalid_json: {
    status: 400,
    grpcCode: 3, // INVALID_ARGUMENT
    type: 'invalid_request_error',
    message: 'The request body is not valid JSON.',
  },
  unauthorized: {
    status: 401,
    grpcCode: 16, // UNAUTHENTICATED
    type: 'authentication_error',
    message: 'A valid bearer key is required.',
  },
  // FAILED_PRECONDITION, not PERMISSION_DENIED: no key would be accepted until the gateway's
  // configuration changes, which is what the message tells the operator to do.
  node_control_disabled: {
    status: 403,
    grpcCode: 9, // FAILED_PRECONDITION
    type: 'permission_error',
    message:
      'Node control is disabled: start the gateway with --node_control_key (or FLOCKSERVE_NODE_CONTROL_KEY) to enable it.',
  },
  not_found: {
    status: 404,
    grpcCode: 5, // NOT_FOUND
    type: 'invalid_request_error', // as OpenAI answers an unknown model or URL
    message: 'Not found.',
  },
  unknown_worker: {
    status: 404,
    grpcCode: 5, // NOT_FOUND
    type: 'invalid_request_error', // as OpenAI answers an unknown model or URL
    message: 'No worker has that name.',
  },
  json_too_deep: {
    status: 400,
    grpcCode: 3, // INVALID_ARGUMENT
    type: 'invalid_request_error',
    message: 'The request body nests JSON deeper than the gateway accepts.',
  },
  client_timeout: {
    status: 408,
    grpcCode: 4, // DEADLINE_EXCEEDED
    type: 'invalid_request_error',
    message: 'The request was not received in time.',
  },
  worker_exists: {
    status: 409,
    grpcCode: 6, // ALREADY_EXISTS
    type: 'invalid_request_error',
    message: 'A worker with that name already exists.',
  },
  at_max_workers: {
    status: 409,
    grpcCode: 9, // FAILED_PRECONDITION
    type: 'invalid_request_error',
    message: 'The fleet is at max_workers; raise it first (flockctl scale --max N, or SetScaleBounds).',
  },
  body_too_large: {
    status: 413,
    grpcCode: 8, // RESOURCE_EXHAUSTED (what gRPC uses for an oversized message)
    type: 'invalid_request_error',
    message: 'The request body is larger than the gateway accepts.',
  },
  headers_too_large: {
    status: 431,
    grpcCode: 8, // RESOURCE_EXHAUSTED (what gRPC uses for oversized metadata)
    type: 'invalid_request_error',
    message: 'The request headers are larger than the gateway accepts.',
  },
  queue_full: {
    status: 429,
    grpcCode: 8, // RESOURCE_EXHAUSTED
    type: 'rate_limit_error',
    message: 'The gateway queue is full; retry later.',
    retryAfterSeconds: 1,
  },
  // A WatchEvents subscriber that does not read fast enough: its stream ends rather than
  // the gateway buffering events for it without bound (it may reconnect and re-list).
  watcher_too_slow: {
    status: 429,
    grpcCode: 8, // RESOURCE_EXHAUSTED
    type: 'rate_limit_error',
    message: 'The event watcher fell too far behind; reconnect and list the workers again.',
  },
  // 499 is nginx's "client closed request": nobody reads the answer, it is for logs and metrics.
  client_closed: {
    status: 499,
    grpcCode: 1, // CANCELLED
    type: 'invalid_request_error',
    message: 'The client closed the request.',
  },
  internal: {
    status: 500,
    grpcCode: 13, // INTERNAL
    type: 'server_error',
    message: 'Internal gateway error.',
  },
  upstream_error: {
    status: 502,
    grpcCode: 13, // INTERNAL: the worker failed; retrying the same request may not help
    type: 'server_error',
    message: 'The worker failed to answer the request.',
  },
  upstream_unavailable: {
    status: 502,
    grpcCode: 14, // UNAVAILABLE: no worker could be reached; safe to retry
    type: 'server_error',
    message: 'No worker could be reached.',
  },
  queue_timeout: {
    status: 503,
    grpcCode: 14, // UNAVAILABLE
    type: 'server_error',
    message: 'No worker slot became free in time; retry later.',
    retryAfterSeconds: 5,
  },
  no_workers: {
    status: 503,
    grpcCode: 14, // UNAVAILABLE
    type: 'server_error',
    message: 'No worker is ready to serve; retry later.',
    retryAfterSeconds: 10,
  },
  // Several gateway replicas: node control that changes the fleet runs on the leader, and right
  // now none leads (an election is under way, or this replica cannot reach etcd).
  no_leader: {
    status: 503,
    grpcCode: 14, // UNAVAILABLE
    type: 'server_error',
    message:
      'No gateway replica leads the fleet right now (an election is under way, or etcd is unreachable); retry shortly.',
    retryAfterSeconds: 2,
  },
  shutting_down: {
    status: 503,
    grpcCode: 14, // UNAVAILABLE
    type: 'server_error',
    message: 'The gateway is shutting down.',
  },
  upstream_timeout: {
    status: 504,
    grpcCode: 4, // DEADLINE_EXCEEDED
    type: 'server_error',
    message: 'The worker did not answer in time.',
  },
  // Failures after the worker's answer began (its headers arrived). Nothing is retried then;
  // a stream ends with an error event (HTTP) or UNAVAILABLE (gRPC), a whole answer with 502/504.
  upstream_interrupted: {
    status: 502,
    grpcCode: 14, // UNAVAILABLE
    type: 'server_error',
    message: 'The worker failed while sending its answer.',
  },
  upstream_malformed: {
    status: 502,
    grpcCode: 14, // UNAVAILABLE
    type: 'server_error',
    message: 'The worker sent an answer that is not valid JSON or server-sent events.',
  },
  upstream_stalled: {
    status: 504,
    grpcCode: 14, // UNAVAILABLE
    type: 'server_error',
    message: 'The worker stopped sending before its answer was complete.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERRORS, code);
}

export interface GatewayErrorOptions {
  /** Overrides the catalogue's default message. */
  readonly message?: string;
  /** The request field at fault (OpenAI's `param`). */
  readonly param?: string;
  readonly retryAfterSeconds?: number;
  readonly cause?: unknown;
}

/** The one error type of the gateway; low-level errors are wrapped with their `cause` kept. */
export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly grpcCode: number;
  readonly type: OpenAIErrorType;
  readonly param: string | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, opts: GatewayErrorOptions = {}) {
    const spec: ErrorSpec = ERRORS[code];
    super(opts.message ?? spec.message, opts.cause === undefined ? undefined : { cause: opts.cause });
    // A 4xx is an answer about the request, not a fault to trace: its stack is only its first
    // line. Formatting the frames (node's stream destroy reads `stack`) cost tens of
    // microseconds per request when hundreds of clients left or sent bad requests at once.
    if (spec.status < 500) this.stack = `${this.name}: ${this.message}`;
    this.code = code;
    this.status = spec.status;
    this.grpcCode = spec.grpcCode;
    this.type = spec.type;
    this.param = opts.param;
    this.retryAfterSeconds = opts.retryAfterSeconds ?? spec.retryAfterSeconds;
  }
}

/**
 * Runs `fn` with stack capture off, for code that makes errors of an expected outcome (a
 * cancellation tearing down a socket): their stacks would explain nothing and node's stream
 * destroy formats them at once.
 */
export function untraced<T>(fn: () => T): T {
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return fn();
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}

export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof GatewayError;
}

/** A GatewayError as it is, anything else as 'internal' with the original as `cause`. */
export function toGatewayError(err: unknown): GatewayError {
  return err instanceof GatewayError ? err : new GatewayError('internal', { cause: err });
}

export interface OpenAIErrorBody {
  readonly error: {
    readonly message: string;
    readonly type: OpenAIErrorType;
    readonly param: string | null;
    readonly code: ErrorCode;
  };
}

/**
 * The OpenAI-shaped body for any error. Errors that are not GatewayErrors become
 * 'internal' with the catalogue's message: their own text may leak internals.
 */
export function toOpenAIError(err: unknown): OpenAIErrorBody {
  const g = toGatewayError(err);
  return { error: { message: g.message, type: g.type, param: g.param ?? null, code: g.code } };
}

/** The message of anything thrown, for logs and worker details. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
