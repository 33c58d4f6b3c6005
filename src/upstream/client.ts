import { Pool, util, type buildConnector, type Dispatcher } from 'undici';
import type { CancelSignal } from '../core/cancellation.js';
import { untraced } from '../core/errors.js';
import { BodyStream } from './body-stream.js';
import { afterHeadersError, beforeHeadersError } from './errors.js';
import { stoppingConnector } from './stopping-connector.js';

/** Headers that belong to one hop and are never forwarded (RFC 9110 §7.6.1), plus FlockServe's own. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
  'content-length',
  // 100-continue is answered by this hop (node answers it before the request is read); undici
  // does not send the header at all.
  'expect',
  // FlockServe's streaming switch and queue priority (routes/table.ts: STREAM_HEADER,
  // PRIORITY_HEADER) are for the gateway, not the engine.
  'stream',
  'x-priority',
  // The gateway reads every answer (its checks, token counts, SSE events), so it asks for it
  // uncompressed whatever the client accepts (forwardableHeaders).
  'accept-encoding',
]);

export type Headers = Record<string, string>;

export interface UpstreamRequest {
  readonly method: string;
  /** Path with query string, e.g. /v1/chat/completions. */
  readonly path: string;
  readonly headers: Headers;
  readonly body?: Buffer | undefined;
  readonly signal?: CancelSignal | undefined;
  /** The worker's name, for the messages of its errors (default: the URL). */
  readonly worker?: string | undefined;
}

export interface UpstreamResponse {
  readonly status: number;
  readonly headers: Headers;
  /** Fed by undici's callbacks; the worker's socket pauses once a high-water mark waits unread. */
  readonly body: BodyStream;
}

export interface UpstreamOptions {
  /** Connections per worker: its capacity, so a worker's requests never queue inside undici. */
  readonly connections: number;
  readonly connectTimeoutMs?: number;
  /** Time from request sent to response headers (LLM prefill can be long). */
  readonly headersTimeoutMs?: number;
  /** Longest pause between body chunks (a stalled stream). */
  readonly bodyTimeoutMs?: number;
}

/**
 * The end-to-end headers of `headers`, plus `extra` (which wins), lower-cased and joined: a
 * worker's request. It asks for the answer uncompressed: an engine that compresses for a client
 * that accepts gzip (the OpenAI SDKs' HTTP clients do) would send bytes the gateway cannot check.
 */
export function forwardableHeaders(
  headers: Record<string, string | string[] | undefined>,
  extra?: Headers | undefined,
): Headers {
  const out: Headers = {};
  // for-in, not Object.entries: no array of pairs per request on the hot path.
  for (const k in headers) {
    const v = headers[k];
    if (v === undefined) continue;
    const key = k.toLowerCase();
    if (HOP_BY_HOP.has(key)) continue;
    out[key] = Array.isArray(v) ? v.join(', ') : v;
  }
  if (extra) Object.assign(out, extra);
  out['accept-encoding'] = 'identity';
  return out;
}

/**
 * forwardableHeaders of an answer's raw headers (undici's name, value, name, value ... as
 * bytes): names lower-cased, a repeated header's values joined.
 */
export function forwardableRawHeaders(raw: readonly (Buffer | string)[]): Headers {
  const out: Headers = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = util.headerNameToString(raw[i]!);
    if (HOP_BY_HOP.has(key)) continue;
    const value = raw[i + 1]!.toString('latin1');
    const seen = out[key];
    // An own property only: a header named like an Object.prototype member is an ordinary one.
    out[key] = seen !== undefined && Object.hasOwn(out, key) ? `${seen}, ${value}` : value;
  }
  return out;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BAD_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const BAD_PATH = /[^\u0021-\u00ff]/;

/**
 * Why undici would refuse to send this request, or undefined when it can be sent. A request
 * that did not come through node's HTTP parser (one built from gRPC metadata, or a Forward
 * call's method, path and headers) is checked with this first: undici refuses such a request
 * inside its pool, and the connection it picked then stays marked busy for good.
 */
export function unsendable(method: string, path: string, headers: Headers): string | undefined {
  if (!TOKEN.test(method)) return `method ${JSON.stringify(method)} is not an HTTP method`;
  // CONNECT opens a tunnel, not a request a worker answers.
  if (method.toUpperCase() === 'CONNECT') return 'method CONNECT cannot be forwarded';
  if (!path.startsWith('/') || BAD_PATH.test(path)) return `path ${JSON.stringify(path)} is not a request path`;
  for (const name in headers) {
    if (!TOKEN.test(name)) return `header name ${JSON.stringify(name)} is not an HTTP token`;
    if (BAD_HEADER_VALUE.test(headers[name]!)) return `header ${name} has characters no HTTP header may carry`;
  }
  return undefined;
}

/** One undici Pool per worker base URL, with keep-alive and no pipelining. */
export class UpstreamClient {
  readonly #pools = new Map<string, Pool>();
  readonly #options: UpstreamOptions;

  constructor(options: UpstreamOptions) {
    this.#options = options;
  }

  #pool(url: string): Pool {
    let pool = this.#pools.get(url);
    if (!pool) {
      pool = new Pool(url, {
        connections: this.#options.connections,
        pipelining: 1,
        headersTimeout: this.#options.headersTimeoutMs ?? 300_000,
        bodyTimeout: this.#options.bodyTimeoutMs ?? 300_000,
        keepAliveTimeout: 30_000,
        connect: stoppingConnector({
          timeout: this.#options.connectTimeoutMs ?? 10_000,
          // What a paused worker socket reads ahead of its reader: node's default for sockets
          // (undici's is 64 KiB). Reading on until that much waits, plus the read in progress,
          // is what each stalled answer holds of its worker's bytes.
          // (undici passes it on to net.connect; its types do not name it.)
          highWaterMark: 16 * 1024,
        } as buildConnector.BuildOptions),
      });
      this.#pools.set(url, pool);
    }
    return pool;
  }

  /**
   * Sends one request; resolves at the response headers with the body as a BodyStream that
   * undici's callbacks feed (the worker's socket pauses once a high-water mark waits unread).
   * Rejects before the headers with undici's error in the catalogue (beforeHeadersError), or with
   * the signal's reason when it aborts; a failure after them fails the body likewise (afterHeadersError).
   * Straight on `dispatch` rather than `request()`: no stream layer (a Readable buffers, ticks
   * and calls read() per chunk) and one handler less per request on the gateway's hottest path.
   * The handler has the hooks undici's connection code calls itself (onConnect, onHeaders, onData,
   * onComplete, onError): its newer ones (onRequestStart ...) are a wrapper around these that
   * builds a controller per request and parses the headers into an object, which would be copied
   * again here to drop the hop-by-hop ones; the raw headers are read once instead.
   */
  send(url: string, req: UpstreamRequest): Promise<UpstreamResponse> {
    return new Promise((resolve, reject) => {
      const signal = req.signal;
      let abortRequest: ((err: Error) => void) | undefined;
      let body: BodyStream | undefined;
      let settled = false;
      // The body's reader paused it: onData answers false, and undici waits for resumeSocket.
      let paused = false;
      let resumeSocket: (() => void) | undefined;
      // undici closes the socket with an error of its own: a cancellation needs no stack traced.
      const cancel = (abort: (err: Error) => void): void =>
        untraced(() => abort(signal?.reason instanceof Error ? signal.reason : new Error('aborted')));
      const settle = (): void => {
        settled = true;
        signal?.removeEventListener('abort', onAbort);
      };
      // Before the request reaches a socket there is nothing to abort yet: it ends here at once (its
      // slot is not held on undici starting it), and onConnect aborts it if it ever starts.
      const onAbort = (): void => {
        if (abortRequest) cancel(abortRequest);
        else if (!settled) {
          settle();
          reject(signal!.reason);
        }
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const handler: Dispatcher.DispatchHandler = {
        onConnect(abort) {
          abortRequest = abort;
          if (signal?.aborted) cancel(abort);
        },
        onHeaders(statusCode, rawHeaders, resume) {
          if (statusCode < 200) return true; // 1xx: the real answer follows
          resumeSocket = resume;
          body = new BodyStream({
            pause: () => {
              paused = true;
            },
            resume: () => {
              if (!paused) return;
              paused = false;
              resumeSocket!();
            },
            abort: () => abortRequest?.(new Error('the answer was dropped before its end')),
          });
          resolve({ status: statusCode, headers: forwardableRawHeaders(rawHeaders), body });
          return !paused;
        },
        onData(chunk) {
          body!.push(chunk);
          return !paused;
        },
        onComplete() {
          settle();
          body!.finish();
        },
        onError(err) {
          if (settled) return;
          settle();
          if (!body) reject(beforeHeadersError(err, req.worker ?? url));
          // After the headers: the reader sees the chunks already pushed, then the error.
          else queueMicrotask(() => body!.fail(afterHeadersError(err, req.worker ?? url)));
        },
      };
      this.#pool(url).dispatch(
        {
          method: req.method as Dispatcher.HttpMethod,
          path: req.path,
          headers: req.headers,
          body: req.body,
        },
        handler,
      );
    });
  }

  /** Drops the pool of a worker that is gone. */
  async forget(url: string): Promise<void> {
    const pool = this.#pools.get(url);
    if (!pool) return;
    this.#pools.delete(url);
    await pool.destroy();
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.destroy()));
  }
}
