import type { UpstreamRequest, UpstreamResponse } from './client.js';

export type { Headers, UpstreamRequest, UpstreamResponse } from './client.js';

/**
 * Where the inference service sends a request: the workers' HTTP engines through undici pools
 * (UpstreamClient) live, the engine models in the virtual-time simulation. Type-only imports:
 * what implements it decides what it loads.
 */
export interface Upstream {
  /**
   * Sends one request to the worker at `url`; resolves at the response headers with the body
   * as a BodyStream. Rejects before the headers with the catalogue's error for the failure
   * (beforeHeadersError in ./errors.ts: its `cause` the low-level one, ECONNRESET, UND_ERR_*...),
   * or with the signal's reason when it aborts; a failure after the headers fails the body with
   * afterHeadersError's.
   */
  send(url: string, req: UpstreamRequest): Promise<UpstreamResponse>;
  /** The worker at `url` is gone: drop what is kept for it. */
  forget(url: string): Promise<void>;
  close(): Promise<void>;
}
