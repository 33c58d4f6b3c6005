import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import {
  ERRORS,
  GatewayError,
  GRPC_STATUS,
  toGatewayError,
  toOpenAIError,
  untraced,
  workerErrorCode,
  type ErrorCode,
} from '../../../src/core/errors.js';

// [code, HTTP status, gRPC status, OpenAI type, has Retry-After]
const table: [ErrorCode, number, status, string, boolean][] = [
  ['bad_request', 400, status.INVALID_ARGUMENT, 'invalid_request_error', false],
  ['invalid_json', 400, status.INVALID_ARGUMENT, 'invalid_request_error', false],
  ['unauthorized', 401, status.UNAUTHENTICATED, 'authentication_error', false],
  ['node_control_disabled', 403, status.FAILED_PRECONDITION, 'permission_error', false],
  ['origin_not_allowed', 403, status.PERMISSION_DENIED, 'permission_error', false],
  ['not_found', 404, status.NOT_FOUND, 'invalid_request_error', false],
  ['method_not_allowed', 405, status.UNIMPLEMENTED, 'invalid_request_error', false],
  ['unknown_worker', 404, status.NOT_FOUND, 'invalid_request_error', false],
  ['json_too_deep', 400, status.INVALID_ARGUMENT, 'invalid_request_error', false],
  ['undecodable', 400, status.INVALID_ARGUMENT, 'invalid_request_error', false],
  ['client_timeout', 408, status.DEADLINE_EXCEEDED, 'invalid_request_error', false],
  ['worker_exists', 409, status.ALREADY_EXISTS, 'invalid_request_error', false],
  ['at_max_workers', 409, status.FAILED_PRECONDITION, 'invalid_request_error', false],
  ['body_too_large', 413, status.RESOURCE_EXHAUSTED, 'invalid_request_error', false],
  ['unsupported_encoding', 415, status.UNIMPLEMENTED, 'invalid_request_error', false],
  ['headers_too_large', 431, status.RESOURCE_EXHAUSTED, 'invalid_request_error', false],
  ['queue_full', 429, status.RESOURCE_EXHAUSTED, 'rate_limit_error', true],
  ['watcher_too_slow', 429, status.RESOURCE_EXHAUSTED, 'rate_limit_error', false],
  ['client_closed', 499, status.CANCELLED, 'invalid_request_error', false],
  ['internal', 500, status.INTERNAL, 'server_error', false],
  ['upstream_unavailable', 502, status.UNAVAILABLE, 'server_error', false],
  ['queue_timeout', 503, status.UNAVAILABLE, 'server_error', true],
  ['no_workers', 503, status.UNAVAILABLE, 'server_error', true],
  ['no_leader', 503, status.UNAVAILABLE, 'server_error', true],
  ['shutting_down', 503, status.UNAVAILABLE, 'server_error', false],
  ['deadline_exceeded', 504, status.DEADLINE_EXCEEDED, 'server_error', false],
  ['upstream_timeout', 504, status.DEADLINE_EXCEEDED, 'server_error', false],
  ['upstream_interrupted', 502, status.UNAVAILABLE, 'server_error', false],
  ['upstream_malformed', 502, status.UNAVAILABLE, 'server_error', false],
  ['upstream_stalled', 504, status.UNAVAILABLE, 'server_error', false],
  // A worker's own error answers: the usual status here; the worker's own travels (below).
  ['upstream_bad_request', 400, status.INVALID_ARGUMENT, 'invalid_request_error', false],
  ['upstream_unauthorized', 401, status.UNAUTHENTICATED, 'authentication_error', false],
  ['upstream_forbidden', 403, status.PERMISSION_DENIED, 'permission_error', false],
  ['upstream_not_found', 404, status.NOT_FOUND, 'invalid_request_error', false],
  ['upstream_too_large', 413, status.RESOURCE_EXHAUSTED, 'invalid_request_error', false],
  ['upstream_rate_limited', 429, status.RESOURCE_EXHAUSTED, 'rate_limit_error', false],
  ['upstream_error', 500, status.INTERNAL, 'server_error', false],
  ['upstream_unimplemented', 501, status.UNIMPLEMENTED, 'server_error', false],
  ['upstream_overloaded', 503, status.UNAVAILABLE, 'server_error', false],
];

describe('error catalogue', () => {
  it('covers every code in the table', () => {
    expect(Object.keys(ERRORS).sort()).toEqual(table.map((r) => r[0]).sort());
  });

  it.each(table)('%s → HTTP %i, gRPC %i, %s', (code, http, grpc, type, retry) => {
    const e = new GatewayError(code);
    expect(e.status).toBe(http);
    expect(e.grpcCode).toBe(grpc);
    expect(e.type).toBe(type);
    expect(e.retryAfterSeconds !== undefined).toBe(retry);
    expect(e.message).toBe(ERRORS[code].message);
    expect(e).toBeInstanceOf(Error);
  });
});

describe('gRPC status names', () => {
  it('number every code as @grpc/grpc-js does', () => {
    expect(GRPC_STATUS).toEqual(Object.fromEntries(Object.entries(status).filter(([k]) => Number.isNaN(Number(k)))));
  });
});

describe("a worker's error status → catalogue code", () => {
  // [worker status, code, gRPC status]
  const workerTable: [number, ErrorCode, status][] = [
    [400, 'upstream_bad_request', status.INVALID_ARGUMENT],
    [422, 'upstream_bad_request', status.INVALID_ARGUMENT], // FastAPI's validation error
    [418, 'upstream_bad_request', status.INVALID_ARGUMENT], // any other 4xx
    [401, 'upstream_unauthorized', status.UNAUTHENTICATED],
    [403, 'upstream_forbidden', status.PERMISSION_DENIED],
    [404, 'upstream_not_found', status.NOT_FOUND],
    [413, 'upstream_too_large', status.RESOURCE_EXHAUSTED],
    [429, 'upstream_rate_limited', status.RESOURCE_EXHAUSTED],
    [500, 'upstream_error', status.INTERNAL],
    [507, 'upstream_error', status.INTERNAL], // any other 5xx
    [501, 'upstream_unimplemented', status.UNIMPLEMENTED],
    [502, 'upstream_overloaded', status.UNAVAILABLE],
    [503, 'upstream_overloaded', status.UNAVAILABLE],
    [504, 'upstream_overloaded', status.UNAVAILABLE],
  ];

  it.each(workerTable)('%i → %s, gRPC %i, with the worker status kept', (worker, code, grpc) => {
    expect(workerErrorCode(worker)).toBe(code);
    const e = new GatewayError(workerErrorCode(worker), { status: worker });
    expect([e.status, e.grpcCode]).toEqual([worker, grpc]);
  });

  it('only the rows for worker answers name worker statuses, and no status twice', () => {
    const named = Object.values(ERRORS).flatMap((s) => ('workerStatuses' in s ? [...s.workerStatuses] : []));
    expect(new Set(named).size).toBe(named.length);
    const rows = Object.entries(ERRORS).filter(([, s]) => 'workerStatuses' in s);
    expect(rows.map(([code]) => code).every((c) => c.startsWith('upstream_'))).toBe(true);
  });
});

describe('GatewayError', () => {
  it('keeps cause, param, message and Retry-After overrides', () => {
    const low = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    const e = new GatewayError('upstream_unavailable', { cause: low, message: 'worker w-1 refused', param: 'model' });
    expect(e.cause).toBe(low);
    expect(e.message).toBe('worker w-1 refused');
    expect(e.param).toBe('model');
    expect(new GatewayError('queue_timeout', { retryAfterSeconds: 42 }).retryAfterSeconds).toBe(42);
  });

  it('traces server faults (5xx) but not answers about the request (4xx)', () => {
    const here = /errors\.test\.ts/;
    expect(new GatewayError('upstream_error').stack).toMatch(here);
    const before = Error.stackTraceLimit;
    const clientSide = new GatewayError('client_closed', { message: 'gone' });
    expect(clientSide.stack).toBe('GatewayError: gone');
    // A 4xx is made without capturing frames; the errors made after it are traced again.
    expect(Error.stackTraceLimit).toBe(before);
    expect(new Error('after').stack).toMatch(here);
    expect(new GatewayError('upstream_error').stack).toMatch(here);
  });

  it('untraced runs without stack capture and restores it, also when it throws', () => {
    const here = /errors\.test\.ts/;
    const before = Error.stackTraceLimit;
    expect(untraced(() => new Error('inside')).stack).not.toMatch(here);
    expect(() =>
      untraced(() => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(Error.stackTraceLimit).toBe(before);
    expect(new Error('after').stack).toMatch(here);
  });

  it('wraps unknown errors as internal and passes GatewayErrors through', () => {
    const g = new GatewayError('not_found');
    expect(toGatewayError(g)).toBe(g);
    const boom = new TypeError('x is undefined');
    const wrapped = toGatewayError(boom);
    expect(wrapped.code).toBe('internal');
    expect(wrapped.cause).toBe(boom);
  });
});

describe('toOpenAIError', () => {
  it('shapes a GatewayError', () => {
    expect(
      toOpenAIError(new GatewayError('bad_request', { message: 'messages is required', param: 'messages' })),
    ).toEqual({
      error: { message: 'messages is required', type: 'invalid_request_error', param: 'messages', code: 'bad_request' },
    });
    expect(toOpenAIError(new GatewayError('queue_full')).error.param).toBeNull();
  });

  it('does not leak the text of unexpected errors', () => {
    const body = toOpenAIError(new Error('password=hunter2'));
    expect(body).toEqual({
      error: { message: ERRORS.internal.message, type: 'server_error', param: null, code: 'internal' },
    });
  });
});
