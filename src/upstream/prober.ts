import { request, type Dispatcher } from 'undici';
import type { Prober } from '../core/types.js';

export interface HttpProberOptions {
  /** Readiness path (option worker_ready_path). Default /health. */
  readonly path?: string;
  /** A probe that takes longer than this counts as failed (option worker_probe_timeout). Default 5000 ms. */
  readonly timeoutMs?: number;
  /** undici dispatcher to probe through; default the global one. */
  readonly dispatcher?: Dispatcher;
}

/** Readiness over HTTP: GET <url><path>; ready iff the answer is 200 within the timeout. */
export class HttpProber implements Prober {
  readonly #path: string;
  readonly #timeoutMs: number;
  readonly #dispatcher: Dispatcher | undefined;

  constructor(opts: HttpProberOptions = {}) {
    const path = opts.path ?? '/health';
    this.#path = path.startsWith('/') ? path : `/${path}`;
    this.#timeoutMs = opts.timeoutMs ?? 5000;
    this.#dispatcher = opts.dispatcher;
  }

  async probe(url: string, signal: AbortSignal): Promise<boolean> {
    const target = url.replace(/\/+$/, '') + this.#path;
    try {
      const res = await request(target, {
        method: 'GET',
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.#timeoutMs)]),
        ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}),
      });
      // Read the body to the end so the connection goes back to the pool.
      await res.body.dump();
      return res.statusCode === 200;
    } catch {
      // Refused, reset, timed out or aborted: not ready.
      return false;
    }
  }
}
