/**
 * The gateway's error catalogue: one row per code with its HTTP status, gRPC status,
 * OpenAI error `type` and default message. The HTTP adapters and the gRPC service both
 * translate a GatewayError from this table, so a code means the same on every transport;
 * the README's table of error codes is generated from it (`npm run docs`, held by a test).
 */

/**
 * gRPC status codes by name, numbered as @grpc/grpc-js's `status` enum numbers them (core does
 * not import grpc; test/unit/core/errors.test.ts checks every number against the enum).
 */
export const GRPC_STATUS = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type GrpcStatusName = keyof typeof GRPC_STATUS;

export type OpenAIErrorType =
  'invalid_request_error' | 'authentication_error' | 'permission_error' | 'rate_limit_error' | 'server_error';

/** A worker status a catalogue row stands for: one status, or any other of its class. */
export type WorkerStatus = number | '4xx' | '5xx';

export interface ErrorSpec {
  readonly status: number;
  readonly grpc: GrpcStatusName;
  readonly type: OpenAIErrorType;
  readonly message: string;
  /** Default Retry-After (seconds) for codes that tell the client to come back. */
  readonly retryAfterSeconds?: number;
  /**
   * Set on the codes of a worker's own error answers (and only there): the worker statuses the
   * code stands for. The client gets the worker's status and message in the catalogue's shape
   * (see workerErrorCode); `status` is then only the usual one.
   */
  readonly workerStatuses?: readonly WorkerStatus[];
}

export const ERRORS = {
  bad_request: {
    status: 400,
    grpc: 'INVALID_ARGUMENT',
    type: 'invalid_request_error',
    message: 'The request is not valid.',
  },
  invalid_json: {
    status: 400,
    grpc: 'INVALID_ARGUMENT',
    type: 'invalid_request_error',
    message: 'The request body is not valid JSON.',
  },
  json_too_deep: {
    status: 400,
    grpc: 'INVALID_ARGUMENT',
    type: 'invalid_request_error',
    message: 'The request body nests JSON deeper than the gateway accepts.',
  },
  // A gRPC request message that does not decode as its type: the client's fault, not the server's.
  undecodable: {
    status: 400,
    grpc: 'INVALID_ARGUMENT',
    type: 'invalid_request_error',
    message: 'The request message could not be decoded.',
  },
  unauthorized: {
    status: 401,
    grpc: 'UNAUTHENTICATED',
    type: 'authentication_error',
    message: 'A valid bearer key is required.',
  },
  // FAILED_PRECONDITION, not PERMISSION_DENIED: no key would be accepted until the gateway's
  // configuration changes, which is what the message tells the operator to do.
  node_control_disabled: {
    status: 403,
    grpc: 'FAILED_PRECONDITION',
    type: 'permission_error',
    message:
      'Node control is disabled: start the gateway with --node_control_key (or FLOCKSERVE_NODE_CONTROL_KEY) to enable it.',
  },
  // A browser's preflight from a page whose origin cors_allow_origins does not list.
  origin_not_allowed: {
    status: 403,
    grpc: 'PERMISSION_DENIED',
    type: 'permission_error',
    message: 'Pages of this origin may not call the gateway.',
  },
  not_found: {
    status: 404,
    grpc: 'NOT_FOUND',
    type: 'invalid_request_error', // as OpenAI answers an unknown model or URL
    message: 'Not found.',
  },
  // An inference route asked with another method than POST (OpenAI answers "Invalid method for URL").
  method_not_allowed: {
    status: 405,
    grpc: 'UNIMPLEMENTED',
    type: 'invalid_request_error',
    message: 'The route takes POST only.',
  },
  unknown_worker: {
    status: 404,
    grpc: 'NOT_FOUND',
    type: 'invalid_request_error', // as OpenAI answers an unknown model or URL
    message: 'No worker has that name.',
  },
  client_timeout: {
    status: 408,
    grpc: 'DEADLINE_EXCEEDED',
    type: 'invalid_request_error',
    message: 'The request was not received in time.',
  },
  worker_exists: {
    status: 409,
    grpc: 'ALREADY_EXISTS',
    type: 'invalid_request_error',
    message: 'A worker with that name already exists.',
  },
  at_max_workers: {
    status: 409,
    grpc: 'FAILED_PRECONDITION',
    type: 'invalid_request_error',
    message: 'The fleet is at max_workers; raise it first (flockctl scale --max N, or SetScaleBounds).',
  },
  body_too_large: {
    status: 413,
    grpc: 'RESOURCE_EXHAUSTED', // what gRPC uses for an oversized message
    type: 'invalid_request_error',
    message: 'The request body is larger than the gateway accepts.',
  },
  // A Content-Encoding the gateway cannot decode. UNIMPLEMENTED is what gRPC answers a
  // compression it does not support.
  unsupported_encoding: {
    status: 415,
    grpc: 'UNIMPLEMENTED',
    type: 'invalid_request_error',
    message: 'The request body is encoded in a way the gateway cannot decode.',
  },
  headers_too_large: {
    status: 431,
    grpc: 'RESOURCE_EXHAUSTED', // what gRPC uses for oversized metadata
    type: 'invalid_request_error',
    message: 'The request headers are larger than the gateway accepts.',
  },
  queue_full: {
    status: 429,
    grpc: 'RESOURCE_EXHAUSTED',
    type: 'rate_limit_error',
    message: 'The gateway queue is full; retry later.',
    retryAfterSeconds: 1,
  },
  // A WatchEvents subscriber that does not read fast enough: its stream ends rather than
  // the gateway buffering events for it without bound (it may reconnect and re-list).
  watcher_too_slow: {
    status: 429,
    grpc: 'RESOURCE_EXHAUSTED',
    type: 'rate_limit_error',
    message: 'The event watcher fell too far behind; reconnect and list the workers again.',
  },
  // 499 is nginx's "client closed request": nobody reads the answer, it is for logs and metrics.
  client_closed: {
    status: 499,
    grpc: 'CANCELLED',
    type: 'invalid_request_error',
    message: 'The client closed the request.',
  },
  internal: {
    status: 500,
    grpc: 'INTERNAL',
    type: 'server_error',
    message: 'Internal gateway error.',
  },
  queue_timeout: {
    status: 503,
    grpc: 'UNAVAILABLE',
    type: 'server_error',
    message: 'No worker slot became free in time; retry later.',
    retryAfterSeconds: 5,
  },
  no_workers: {
    status: 503,
    grpc: 'UNAVAILABLE',
    type: 'server_error',
    message: 'No worker is ready to serve; retry later.',
    retryAfterSeconds: 10,
  },
  // Several gateway replicas: node control that changes the fleet runs on the leader, and right
  // now none leads (an election is under way, or this replica cannot reach etcd).
  no_leader: {
    status: 503,
    grpc: 'UNAVAILABLE',
    type: 'server_error',
    message:
      'No gateway replica leads the fleet right now (an election is under way, or etcd is unreachable); retry shortly.',
    retryAfterSeconds: 2,
  },
  shutting_down: {
    status: 503,
    grpc: 'UNAVAILABLE',
    type: 'server_error',
    message: 'The gateway is shutting down.',
  },
  // The client's own deadline (gRPC's grpc-timeout) passed: waiting, or the worker's answer, was cut there.
  deadline_exceeded: {
    status: 504,
    grpc: 'DEADLINE_EXCEEDED',
    type: 'server_error',
    message: "The request's deadline passed before its answer was complete.",
  },
  upstream_unavailable: {
    status: 502,
    grpc: 'UNAVAILABLE', // no worker could be reached; safe to retry
    type: 'server_error',
    message: 'No worker could be reached.',
  },
  upstream_timeout: {
    status: 504,
    grpc: 'DEADLINE_EXCEEDED',
    type: 'server_error',
    message: 'The worker did not answer in time.',
  },
  // Failures after the worker's answer began (its headers arrived). Nothing is retried then;
  // a stream ends with an error event (HTTP) or UNAVAILABLE (gRPC), a whole answer with 502/504.
  upstream_interrupted: {
    status: 502,
    grpc: 'UNAVAILABLE',
    type: 'server_error',
    message: 'The worker failed while sending its answer.',
  },
  upstream_malformed: {
    status: 502,
    grpc: 'UNAVAILABLE',
    type: 'server_error',
    message: 'The worker sent an answer that is not valid JSON or server-sent events.',
  },
  upstream_stalled: {
    status: 504,
    grpc: 'UNAVAILABLE',
    type: 'server_error',
    message: 'The worker stopped sending before its answer was complete.',
  },
  // The worker's own error answers, by its status: its message and status reach the client.
  upstream_bad_request: {
    status: 400,
    grpc: 'INVALID_ARGUMENT',
    type: 'invalid_request_error',
    message: 'The worker rejected the request as invalid.',
    workerStatuses: [400, 422, '4xx'],
  },
  upstream_unauthorized: {
    status: 401,
    grpc: 'UNAUTHENTICATED',
    type: 'authentication_error',
    message: "The worker did not accept the request's credentials.",
    workerStatuses: [401],
  },
  upstream_forbidden: {
    status: 403,
    grpc: 'PERMISSION_DENIED',
    type: 'permission_error',
    message: 'The worker does not allow this request.',
    workerStatuses: [403],
  },
  upstream_not_found: {
    status: 404,
    grpc: 'NOT_FOUND',
    type: 'invalid_request_error',
    message: 'The worker has no such route or model.',
    workerStatuses: [404],
  },
  upstream_too_large: {
    status: 413,
    grpc: 'RESOURCE_EXHAUSTED',
    type: 'invalid_request_error',
    message: 'The request is larger than the worker accepts.',
    workerStatuses: [413],
  },
  upstream_rate_limited: {
    status: 429,
    grpc: 'RESOURCE_EXHAUSTED',
    type: 'rate_limit_error',
    message: 'The worker is over its rate limit; retry later.',
    workerStatuses: [429],
  },
  upstream_error: {
    status: 500,
    grpc: 'INTERNAL', // the worker failed; retrying the same request may not help
    type: 'server_error',
    message: 'The worker failed to answer the request.',
    workerStatuses: [500, '5xx'],
  },
  upstream_unimplemented: {
    status: 501,
    grpc: 'UNIMPLEMENTED',
    type: 'server_error',
    message: 'The worker does not implement this request.',
    workerStatuses: [501],
  },
  // UNAVAILABLE for all three, as gRPC's HTTP-to-status mapping has it.
  upstream_overloaded: {
    status: 503,
    grpc: 'UNAVAILABLE',
    type: 'server_error',
    message: 'The worker cannot serve the request now; retry later.',
    workerStatuses: [502, 503, 504],
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERRORS, code);
}

/** Worker status (or '4xx'/'5xx') → the catalogue code that stands for it, from ERRORS' workerStatuses. */
const BY_WORKER_STATUS: ReadonlyMap<WorkerStatus, ErrorCode> = new Map(
  (Object.entries(ERRORS) as [ErrorCode, ErrorSpec][]).flatMap(([code, spec]) =>
    (spec.workerStatuses ?? []).map((s): [WorkerStatus, ErrorCode] => [s, code]),
  ),
);

/**
 * The catalogue code of a worker's own error answer with HTTP `status`: the row that names the
 * status, else the row for its class (a 418 is upstream_bad_request, a 507 upstream_error).
 */
export function workerErrorCode(status: number): ErrorCode {
  return BY_WORKER_STATUS.get(status) ?? (status < 500 ? 'upstream_bad_request' : 'upstream_error');
}

export interface GatewayErrorOptions {
  /** Overrides the catalogue's default message. */
  readonly message?: string;
  /** The request field at fault (OpenAI's `param`). */
  readonly param?: string;
  readonly retryAfterSeconds?: number;
  readonly cause?: unknown;
  /** The worker's status, for a worker's own error answer (a code with workerStatuses). */
  readonly status?: number;
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
    const status = opts.status ?? spec.status;
    // A 4xx is an answer about the request, not a fault to trace: its stack is only its first
    // line, and its frames are not even captured. Capturing them costs more than the rest of
    // answering a 408 or a 400, which come by the thousand from slow or broken clients.
    const stackTraceLimit = Error.stackTraceLimit;
    if (status < 500) Error.stackTraceLimit = 0;
    super(opts.message ?? spec.message, opts.cause === undefined ? undefined : { cause: opts.cause });
    Error.stackTraceLimit = stackTraceLimit;
    if (status < 500) this.stack = `${this.name}: ${this.message}`;
    this.code = code;
    this.status = status;
    this.grpcCode = GRPC_STATUS[spec.grpc];
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

/** TGI's error body: `error` the message, `error_type` what TGI's clients raise on. */
export interface TgiErrorBody {
  readonly error: string;
  readonly error_type: string;
}

/**
 * TGI's `error_type` for a catalogue code, where one of TGI's fits (its router's validation,
 * overloaded, generation and incomplete_generation, which huggingface_hub raises as
 * ValidationError, OverloadedError, GenerationError, IncompleteGenerationError); other codes are
 * their own type, which TGI's clients raise as an unknown error with its message.
 */
const TGI_ERROR_TYPES: Partial<Record<ErrorCode, string>> = {
  bad_request: 'validation',
  invalid_json: 'validation',
  json_too_deep: 'validation',
  body_too_large: 'validation',
  unsupported_encoding: 'validation',
  queue_full: 'overloaded',
  queue_timeout: 'overloaded',
  upstream_overloaded: 'overloaded',
  upstream_rate_limited: 'overloaded',
  upstream_unavailable: 'generation',
  upstream_timeout: 'generation',
  upstream_error: 'generation',
  upstream_interrupted: 'incomplete_generation',
  upstream_stalled: 'incomplete_generation',
  upstream_malformed: 'incomplete_generation',
};

/** The TGI-shaped body for any error (TGI's routes), as toOpenAIError is for OpenAI's. */
export function toTgiError(err: unknown): TgiErrorBody {
  const g = toGatewayError(err);
  return { error: g.message, error_type: TGI_ERROR_TYPES[g.code] ?? g.code };
}

/**
 * The README's table of error codes (code, HTTP status, gRPC status, meaning), one row per
 * catalogue entry in catalogue order; `npm run docs` writes it, a test holds the README to it.
 */
export function errorsMarkdownTable(): string {
  const rows = (Object.entries(ERRORS) as [ErrorCode, ErrorSpec][]).map(([code, spec]) => {
    const worker = spec.workerStatuses?.map((s) => (typeof s === 'number' ? String(s) : `other ${s}`)).join(', ');
    const status = worker ? `the worker's: ${worker}` : String(spec.status);
    const retry = spec.retryAfterSeconds === undefined ? '' : ` (\`Retry-After: ${spec.retryAfterSeconds}\`)`;
    return `| \`${code}\` | ${status} | \`${spec.grpc}\` (${GRPC_STATUS[spec.grpc]}) | ${spec.message}${retry} |`;
  });
  return ['| code | HTTP status | gRPC status | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** The message of anything thrown, for logs and worker details. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
