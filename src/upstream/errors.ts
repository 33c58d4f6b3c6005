import { GatewayError } from '../core/errors.js';

/**
 * The upstream's low-level failures (undici's UND_ERR_*, node's socket errors) in the error
 * catalogue, mapped where they arise with the original kept as `cause`. Errors that are already
 * GatewayErrors (a cancellation's reason) pass through.
 */

/**
 * Codes before the response headers that mean the request did not get a fair hearing
 * (refused, reset, connect timeout, name lookup): safe to retry on another worker. A first-byte
 * timeout is not: the worker may have been generating for minutes, and the client has waited
 * that long already.
 */
const RETRYABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
]);

/** The low-level code of `err` (ECONNRESET, UND_ERR_SOCKET...), or its text when it has none. */
export function lowLevelCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : String(err);
}

/** A failure before the worker's response headers, as the catalogue names it. */
export function beforeHeadersError(err: unknown, worker: string): GatewayError {
  if (err instanceof GatewayError) return err;
  const code = lowLevelCode(err);
  // undici refused to send it (a method, path or header no HTTP request may carry: a gRPC
  // Forward can ask for one): the request's fault, not the worker's.
  if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED') {
    return new GatewayError('bad_request', {
      message: `The request cannot be sent to a worker: ${(err as Error).message}`,
      cause: err,
    });
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new GatewayError('upstream_timeout', { message: `worker ${worker} timed out (${code})`, cause: err });
  }
  return new GatewayError('upstream_unavailable', { message: `worker ${worker} unreachable (${code})`, cause: err });
}

/** Whether a failure before the headers may be retried on another worker (see RETRYABLE_CODES). */
export function isRetryable(err: GatewayError): boolean {
  return err.cause !== undefined && RETRYABLE_CODES.has(lowLevelCode(err.cause));
}

/** A failure of the worker's body after its headers, as the catalogue names it. */
export function afterHeadersError(err: unknown, worker: string): GatewayError {
  if (err instanceof GatewayError) return err;
  const code = lowLevelCode(err);
  if (code === 'UND_ERR_BODY_TIMEOUT') {
    return new GatewayError('upstream_stalled', {
      message: `worker ${worker} sent nothing for longer than the idle timeout`,
      cause: err,
    });
  }
  return new GatewayError('upstream_interrupted', {
    message: `worker ${worker} failed while sending its answer (${code})`,
    cause: err,
  });
}
