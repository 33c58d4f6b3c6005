import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { isUtf8 } from 'node:buffer';
import { GatewayError } from '../core/errors.js';
import { INFERENCE_ROUTES, type InferenceRoute } from './table.js';

/**
 * The checks of an inference request body and their one set of messages, for both transports:
 * the HTTP edge checks the bytes it received, the gRPC adapter the JSON it built from the typed
 * message (which is what the worker receives), with the same compiled schemas and limits.
 */

export type JsonObject = Record<string, unknown>;

/** A route with its schema compiled. */
export interface CheckedRoute {
  readonly route: InferenceRoute;
  readonly validate: ValidateFunction;
}

let compiled: ReadonlyMap<string, CheckedRoute> | undefined;

/** Every inference route by path, its schema compiled by ajv (once per process, on first use). */
export function checkedRoutes(): ReadonlyMap<string, CheckedRoute> {
  if (compiled) return compiled;
  // The body is forwarded as sent, so nothing is coerced, added or removed.
  const ajv = new Ajv({ coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false });
  compiled = new Map(INFERENCE_ROUTES.map((route) => [route.path, { route, validate: ajv.compile(route.schema) }]));
  return compiled;
}

/** The bytes of an HTTP body as a JSON object that meets its route's schema, or the catalogue's 400. */
export function parseRequestBody(raw: Buffer, maxDepth: number, check: CheckedRoute): JsonObject {
  return checkedJson(parseJson(raw, maxDepth), check);
}

/** `body` if it meets the route's schema, else the catalogue's 400 saying why. */
export function checkedJson(body: unknown, check: CheckedRoute): JsonObject {
  if (!check.validate(body)) throw invalidBody(check.validate.errors ?? []);
  return body as JsonObject;
}

/**
 * `raw` without a leading UTF-8 byte order mark. RFC 8259 §8.1 lets a parser ignore one, and
 * clients that write UTF-8 "with signature" (Windows PowerShell's, .NET's) send it; Python's
 * json (vLLM) reads past it, Rust's serde_json (TGI) does not, so the worker gets the body without.
 */
export function withoutByteOrderMark(raw: Buffer): Buffer {
  return raw.length >= 3 && raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf ? raw.subarray(3) : raw;
}

/** The bytes of an HTTP body as JSON (UTF-8, within `maxDepth`), or the catalogue's 400; not yet checked against a schema. */
export function parseJson(raw: Buffer, maxDepth: number): unknown {
  if (raw.length === 0) throw new GatewayError('invalid_json', { message: 'The request body is empty.' });
  // JSON is UTF-8 (RFC 8259 §8.1); decoding would turn bad bytes into U+FFFD and forward a different body.
  if (!isUtf8(raw)) throw new GatewayError('invalid_json', { message: 'The request body is not valid UTF-8.' });
  // Checked before parsing: deep nesting is cheap to send and overflows recursive code later.
  // Nesting past maxDepth needs more than maxDepth bytes of brackets, so a body no longer than
  // that cannot exceed it (64 bytes for the default 64): skip the scan, the answer is the same.
  if (raw.length > maxDepth && exceedsDepth(raw, maxDepth)) throw tooDeep(maxDepth);
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new GatewayError('invalid_json', {
      message: `The request body is not valid JSON: ${(err as Error).message}`,
      cause: err,
    });
  }
}

/** The catalogue's 400 for a body nested deeper than `maxDepth`. */
export function tooDeep(maxDepth: number): GatewayError {
  return new GatewayError('json_too_deep', {
    message: `The request body nests objects or arrays deeper than ${maxDepth} levels.`,
  });
}

/**
 * True when objects/arrays nest deeper than `limit`, counting brackets outside strings in one
 * pass over the bytes. `{"a":[1]}` has depth 2. Brackets left unbalanced are JSON.parse's to report.
 */
export function exceedsDepth(raw: Buffer, limit: number): boolean {
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (b === 0x5c)
        escaped = true; // backslash
      else if (b === 0x22) inString = false; // "
    } else if (b === 0x22) inString = true;
    else if (b === 0x7b || b === 0x5b) {
      if (++depth > limit) return true; // { [
    } else if (b === 0x7d || b === 0x5d) depth--; // } ]
  }
  return false;
}

/**
 * exceedsDepth for a JSON value already in memory (the gRPC adapter's): `{a: [1]}` has depth 2.
 * The walk stops at `limit`, so its recursion is bounded however deep the value goes.
 */
export function valueExceedsDepth(value: unknown, limit: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (limit === 0) return true;
  if (Array.isArray(value)) {
    for (const v of value) if (valueExceedsDepth(v, limit - 1)) return true;
    return false;
  }
  for (const k in value) if (valueExceedsDepth((value as JsonObject)[k], limit - 1)) return true;
  return false;
}

/** The catalogue's 400 for a body that fails its schema, worded as fastify words it. */
function invalidBody(errors: ErrorObject[]): GatewayError {
  const message = errors.map((e) => `body${e.instancePath} ${e.message ?? 'is invalid'}`).join(', ');
  const first = errors[0] as { instancePath?: string; params?: { missingProperty?: string } } | undefined;
  const param =
    first?.params?.missingProperty ?? (first?.instancePath ? first.instancePath.slice(1).replaceAll('/', '.') : '');
  return new GatewayError('bad_request', {
    message: `Invalid request: ${message || 'validation failed'}`,
    ...(param ? { param } : {}),
  });
}
