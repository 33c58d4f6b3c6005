import type { Readable } from 'node:stream';
import type { Admission, Lease } from '../core/admission.js';
import { GatewayError } from '../core/errors.js';
import type { Headers, UpstreamClient } from '../upstream/client.js';

/** What every inference entry point (HTTP route or gRPC method) turns into. */
export interface InferenceCall {
  readonly method: string;
  readonly path: string;
  readonly headers: Headers;
  readonly body?: Buffer | undefined;
  /** Signals for affinity policies; either may be missing. */
  readonly sessionKey?: string | undefined;
  readonly promptText?: string | undefined;
  /** Aborted when the client goes away: the upstream request is cancelled with it. */
  readonly signal: AbortSignal;
}

export interface InferenceReply {
  readonly status: number;
  readonly headers: Headers;
  /** The worker's body; the worker's slot is released when it closes. */
  readonly body: Readable;
  readonly worker: string;
  /** Time spent waiting in the gateway queue for worker slots, over all attempts. */
  readonly queueWaitMs: number;
}

export interface InferenceServiceOptions {
  readonly admission: Admission;
  readonly upstream: UpstreamClient;
  readonly queueTimeoutMs: number;
  /** Further attempts on another pick after a failure before the first byte. */
  readonly maxRetries: number;
  readonly onRetry?: (worker: string, reason: string) => void;
  /** A worker slot was given back (a draining worker may now be empty). */
  readonly onRelease?: () => void;
}

/** Statuses that mean "this worker could not take it": safe to retry elsewhere before any byte went out. */
const RETRYABLE_STATUS = new Set([502, 503]);

/**
 * The one dispatch path behind the Inference RPCs and the HTTP adapters: wait for a
 * worker slot, send, retry before the first byte, and tie the slot's release to the
 * response body's end.
 */
export class InferenceService {
  readonly #o: InferenceServiceOptions;
  #total = 0;

  constructor(options: InferenceServiceOptions) {
    this.#o = options;
  }

  get totalRequests(): number {
    return this.#total;
  }

  async dispatch(call: InferenceCall): Promise<InferenceReply> {
    this.#total++;
    let lastError: unknown;
    let queueWaitMs = 0;
    for (let attempt = 0; attempt <= this.#o.maxRetries; attempt++) {
      const lease = await this.#o.admission.acquire({
        ctx: { sessionKey: call.sessionKey, promptText: call.promptText },
        timeoutMs: this.#o.queueTimeoutMs,
        signal: call.signal,
      });
      const worker = lease.worker;
      queueWaitMs += lease.waitedMs;
      try {
        const res = await this.#o.upstream.send(worker.url ?? '', {
          method: call.method,
          path: call.path,
          headers: call.headers,
          body: call.body,
          signal: call.signal,
        });
        if (RETRYABLE_STATUS.has(res.status) && attempt < this.#o.maxRetries) {
          res.body.resume();
          lease.release();
          this.#o.onRetry?.(worker.name, `status ${res.status}`);
          lastError = new GatewayError('upstream_error', { message: `worker ${worker.name} answered ${res.status}` });
          continue;
        }
        releaseWhenClosed(res.body, lease, this.#o.onRelease);
        return { status: res.status, headers: res.headers, body: res.body, worker: worker.name, queueWaitMs };
      } catch (err) {
        lease.release();
        if (call.signal.aborted) throw new GatewayError('client_closed', { cause: err });
        lastError = toUpstreamError(err, worker.name);
        this.#o.onRetry?.(worker.name, errorCode(err));
      }
    }
    throw lastError instanceof GatewayError ? lastError : new GatewayError('upstream_unavailable');
  }
}

function releaseWhenClosed(body: Readable, lease: Lease, onRelease?: () => void): void {
  const release = (): void => {
    lease.release();
    onRelease?.();
  };
  if (body.destroyed || body.readableEnded) release();
  else body.once('close', release);
}

function errorCode(err: unknown): string {
  return (err as { code?: string } | null)?.code ?? String(err);
}

/** Maps undici's errors to the catalogue, keeping the cause. */
export function toUpstreamError(err: unknown, worker: string): GatewayError {
  const code = errorCode(err);
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new GatewayError('upstream_timeout', { message: `worker ${worker} timed out (${code})`, cause: err });
  }
  return new GatewayError('upstream_unavailable', { message: `worker ${worker} unreachable (${code})`, cause: err });
}
