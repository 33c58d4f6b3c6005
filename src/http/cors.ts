import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError } from '../core/errors.js';
import { requestIdOf } from '../routes/rules.js';
import { REQUEST_ID_HEADER } from '../routes/table.js';
import { writeError } from './answer.js';

/** How long a browser may reuse a preflight's answer, s (Starlette's default, as vLLM serves it). */
const PREFLIGHT_MAX_AGE_S = 600;
/** The answer headers a page's script may read besides the simple ones. */
const EXPOSED_HEADERS = `${REQUEST_ID_HEADER}, retry-after`;

/**
 * Cross-origin requests from browsers (option cors_allow_origins): the origins whose pages may
 * call the gateway, or `*` for any. The gateway answers their preflights itself, on every route,
 * and marks the answers to an allowed origin's requests. It is the one CORS boundary: the
 * client's `Origin` is not passed on to the worker, so an engine's own CORS layer (vLLM allows
 * any origin by default) neither widens the list nor writes its headers over the gateway's.
 */
export class CorsPolicy {
  readonly #any: boolean;
  readonly #origins: ReadonlySet<string>;

  /** `origins` as the option checked them: each scheme://host[:port], or `*`. */
  constructor(origins: readonly string[]) {
    this.#any = origins.includes('*');
    // Browsers send the scheme and host lower-cased.
    this.#origins = new Set(origins.map((o) => o.toLowerCase()));
  }

  /** A policy for the option's list, or undefined when it is empty (no CORS, as nginx without it). */
  static of(origins: readonly string[]): CorsPolicy | undefined {
    return origins.length === 0 ? undefined : new CorsPolicy(origins);
  }

  /**
   * Applies the policy to a request before it is served: answers a preflight (true: nothing
   * more to do), or sets the headers an allowed origin's answer carries. A request without
   * `Origin` (not from a browser's cross-origin fetch) passes untouched.
   */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return false;
    delete req.headers.origin;
    const allowed = this.#any || this.#origins.has(origin.toLowerCase());
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      this.#preflight(req, res, origin, allowed);
      return true;
    }
    if (allowed) {
      res.setHeader('access-control-allow-origin', this.#any ? '*' : origin);
      res.setHeader('access-control-expose-headers', EXPOSED_HEADERS);
    }
    // The answer depends on the origin unless every origin gets the same one.
    if (!this.#any) res.setHeader('vary', 'Origin');
    return false;
  }

  #preflight(req: IncomingMessage, res: ServerResponse, origin: string, allowed: boolean): void {
    if (!allowed) {
      const message = `Origin ${origin} may not call this gateway (cors_allow_origins).`;
      const id = req.headers[REQUEST_ID_HEADER];
      writeError(
        res,
        new GatewayError('origin_not_allowed', { message }),
        requestIdOf(typeof id === 'string' ? id : undefined),
      );
      return;
    }
    res
      .writeHead(204, {
        'access-control-allow-origin': this.#any ? '*' : origin,
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        // Any header the page asks for: the gateway's own checks (the key, the body) decide.
        ...(req.headers['access-control-request-headers'] !== undefined
          ? { 'access-control-allow-headers': req.headers['access-control-request-headers'] }
          : {}),
        'access-control-max-age': String(PREFLIGHT_MAX_AGE_S),
        vary: this.#any ? 'Access-Control-Request-Headers' : 'Origin, Access-Control-Request-Headers',
      })
      .end();
  }
}
