import { Pool, type Dispatcher } from 'undici';
import type { Readable } from 'node:stream';

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
  // FlockServe's streaming switch is for the gateway, not the engine.
  'stream',
]);

export type Headers = Record<string, string>;

export interface UpstreamRequest {
  readonly method: string;
  /** Path with query string, e.g. /v1/chat/completions. */
  readonly path: string;
  readonly headers: Headers;
  readonly body?: Buffer | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface UpstreamResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Readable;
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

export function forwardableHeaders(headers: Record<string, string | string[] | undefined>): Headers {
  const out: Headers = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    const key = k.toLowerCase();
    if (HOP_BY_HOP.has(key)) continue;
    out[key] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
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
        connectTimeout: this.#options.connectTimeoutMs ?? 10_000,
        headersTimeout: this.#options.headersTimeoutMs ?? 300_000,
        bodyTimeout: this.#options.bodyTimeoutMs ?? 300_000,
        keepAliveTimeout: 30_000,
      });
      this.#pools.set(url, pool);
    }
    return pool;
  }

  async send(url: string, req: UpstreamRequest): Promise<UpstreamResponse> {
    const res: Dispatcher.ResponseData = await this.#pool(url).request({
      method: req.method as Dispatcher.HttpMethod,
      path: req.path,
      headers: req.headers,
      body: req.body,
      signal: req.signal,
    });
    return { status: res.statusCode, headers: forwardableHeaders(res.headers), body: res.body };
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
