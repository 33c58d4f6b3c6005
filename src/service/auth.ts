import { createHash, timingSafeEqual } from 'node:crypto';
import { GatewayError } from '../core/errors.js';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** The key of an `Authorization: Bearer KEY` header (a bare key is taken as it is). */
const bearerKey = (authorization: string | undefined): string =>
  (/^Bearer\s+(.+)$/i.exec(authorization ?? '')?.[1] ?? authorization ?? '').trim();

/**
 * Node control's bearer check. Both sides are hashed first so the comparison takes the
 * same time whatever the lengths. No key configured → node control is off (403).
 */
export function checkNodeControlKey(configured: string | undefined, authorization: string | undefined): void {
  if (configured === undefined || configured === '') throw new GatewayError('node_control_disabled');
  if (!timingSafeEqual(digest(bearerKey(authorization)), digest(configured))) throw new GatewayError('unauthorized');
}

/**
 * The keys a client must present to reach the workers (option api_key, as vLLM's --api-key):
 * inference and engine routes, on HTTP and gRPC. Compared as node control's key is, against
 * every configured key (no early exit), so the time taken says nothing of which key came close.
 */
export class ApiKeys {
  readonly #digests: readonly Buffer[];

  constructor(keys: readonly string[]) {
    this.#digests = keys.map(digest);
  }

  /** Keys for the option's list, or undefined when it is empty: the workers' routes are open. */
  static of(keys: readonly string[]): ApiKeys | undefined {
    return keys.length === 0 ? undefined : new ApiKeys(keys);
  }

  /** The catalogue's 401 unless `authorization` bears one of the keys; undefined when it does. */
  refusal(authorization: string | undefined): GatewayError | undefined {
    const presented = digest(bearerKey(authorization));
    let found = false;
    for (const d of this.#digests) found = timingSafeEqual(presented, d) || found;
    return found
      ? undefined
      : new GatewayError('unauthorized', { message: 'A valid API key is required (Authorization: Bearer KEY).' });
  }
}
