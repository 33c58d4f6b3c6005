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
   * as a BodyStream. Rejects before the headers with an error whose `code` says why (ECONNRESET,
   * ECONNREFUSED, UND_ERR_*), or with the signal's reason when it aborts.
   */
  send(url: string, req: UpstreamRequest): Promise<UpstreamResponse>;
  /** The worker at `url` is gone: drop what is kept for it. */
  forget(url: string): Promise<void>;
  close(): Promise<void>;
}
