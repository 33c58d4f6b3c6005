import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../../src/core/errors.js';
import { afterHeadersError, beforeHeadersError, isRetryable } from '../../../src/upstream/errors.js';

const low = (code: string): Error => Object.assign(new Error(`low-level ${code}`), { code });

describe('upstream failures in the catalogue, cause kept', () => {
  // [low-level code, before the headers → code, retried on another worker]
  const before: [string, string, boolean][] = [
    ['ECONNREFUSED', 'upstream_unavailable', true],
    ['ECONNRESET', 'upstream_unavailable', true],
    ['UND_ERR_SOCKET', 'upstream_unavailable', true],
    ['UND_ERR_CONNECT_TIMEOUT', 'upstream_timeout', true],
    ['UND_ERR_HEADERS_TIMEOUT', 'upstream_timeout', false], // the worker may have been generating
    ['UND_ERR_SOMETHING_NEW', 'upstream_unavailable', false],
  ];

  it.each(before)('before the headers: %s → %s (retryable: %s)', (code, mapped, retryable) => {
    const cause = low(code);
    const e = beforeHeadersError(cause, 'w-1');
    expect([e.code, isRetryable(e), e.cause]).toEqual([mapped, retryable, cause]);
    expect(e.message).toContain(`worker w-1`);
    expect(e.message).toContain(code);
  });

  it.each(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED'])(
    "undici refusing to send a request (%s: an invalid method, an `expect` header) is the request's fault",
    (code) => {
      const e = beforeHeadersError(low(code), 'w-1');
      expect([e.code, e.status, isRetryable(e)]).toEqual(['bad_request', 400, false]);
    },
  );

  it.each([
    ['UND_ERR_BODY_TIMEOUT', 'upstream_stalled'],
    ['ECONNRESET', 'upstream_interrupted'],
  ])('after the headers: %s → %s', (code, mapped) => {
    expect(afterHeadersError(low(code), 'w-2').code).toBe(mapped);
  });

  it("a cancellation's GatewayError passes through", () => {
    const reason = new GatewayError('client_closed');
    expect(beforeHeadersError(reason, 'w-1')).toBe(reason);
    expect(afterHeadersError(reason, 'w-1')).toBe(reason);
  });
});
