import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError, toGatewayError } from '../core/errors.js';
import type { InferenceService } from '../service/inference.js';
import type { RequestObserver } from '../service/observer.js';
import { promptTextOf } from '../service/prompt.js';
import { answer, recordUntilClose, writeError, type ErrorLog } from './answer.js';
import { INFERENCE_ROUTES } from './routes.js';

export interface InferenceEdgeOptions {
  readonly service: InferenceService;
  readonly observer: RequestObserver;
  readonly maxBodySize: number;
  /** Deepest JSON nesting accepted (option max_json_depth). */
  readonly maxJsonDepth: number;
  readonly log?: ErrorLog | undefined;
}

/** Serves the request and returns true when it is an inference call; false leaves it to fastify. */
export type InferenceEdge = (req: IncomingMessage, res: ServerResponse) => boolean;

type JsonObject = Record<string, unknown>;

/**
 * The inference routes (POST to a path of INFERENCE_ROUTES), served straight from node:http
 * ahead of fastify, which keeps every other route. These routes are the whole data path, and
 * fastify's request lifecycle (request and reply objects, hook runners, its promise chain) cost
 * them about 14 µs of CPU per request at full load, ~8 % (bench/results/datapath-profile.md,
 * sixth round). The contract is fastify's, kept: the body limit (413), UTF-8 JSON within the
 * depth limit, the route's JSON schema compiled by ajv with the options fastify had and
 * reported in its words (`body must have required property 'messages'`), the error catalogue.
 */
export function inferenceEdge(o: InferenceEdgeOptions): InferenceEdge {
  // As fastify was set up: the body is forwarded as sent, so nothing is coerced, added or removed.
  const ajv = new Ajv({ coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false });
  const validators = new Map<string, ValidateFunction>(INFERENCE_ROUTES.map((r) => [r.url, ajv.compile(r.schema)]));
  return (req, res) => {
    if (req.method !== 'POST') return false;
    const url = req.url ?? '';
    const query = url.indexOf('?');
    const route = query < 0 ? url : url.slice(0, query);
    const validate = validators.get(route);
    if (!validate) return false;
    const record = o.observer.begin({ transport: 'http', method: 'POST', route, headers: req.headers });
    let raw: Buffer | undefined;
    let body: JsonObject | undefined;
    recordUntilClose(record, res, () => ({
      user: typeof body?.['user'] === 'string' ? body['user'] : undefined,
      model: typeof body?.['model'] === 'string' ? body['model'] : undefined,
      requestBody: raw,
    }));
    readBody(req, o.maxBodySize, (bytes) => {
      if (bytes instanceof GatewayError) {
        writeError(res, bytes, o.log);
        return;
      }
      raw = bytes;
      try {
        body = checkedBody(bytes, o.maxJsonDepth, validate);
      } catch (e) {
        writeError(res, toGatewayError(e), o.log);
        return;
      }
      const stream = wantsStream(req, body);
      // The header asked for streaming but the body did not: the worker must be told too.
      const forwarded =
        stream && body['stream'] !== true && route.startsWith('/v1/')
          ? Buffer.from(JSON.stringify({ ...body, stream: true }))
          : bytes;
      const sessionKey = (typeof body['user'] === 'string' ? body['user'] : undefined) ?? headerOf(req, 'x-session-id');
      void answer(
        o.service,
        res,
        {
          method: 'POST',
          url,
          headers: req.headers,
          body: forwarded,
          record,
          sessionKey,
          promptText: promptTextOf(body),
        },
        o.log,
      );
    });
    return true;
  };
}

/**
 * Reads the whole body, up to `limit` bytes: a larger declared or received body is a 413 (the
 * rest is left for node to discard), a failed read a 400. The bytes are copied out of the
 * socket's chunks, which the answer outlives.
 */
function readBody(req: IncomingMessage, limit: number, done: (body: Buffer | GatewayError) => void): void {
  if (Number(req.headers['content-length']) > limit) {
    done(new GatewayError('body_too_large'));
    return;
  }
  const chunks: Buffer[] = [];
  let length = 0;
  const finish = (body: Buffer | GatewayError): void => {
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onError);
    done(body);
  };
  const onData = (chunk: Buffer): void => {
    length += chunk.length;
    if (length > limit) finish(new GatewayError('body_too_large'));
    else chunks.push(chunk);
  };
  const onEnd = (): void => finish(Buffer.concat(chunks, length));
  const onError = (err: Error): void =>
    finish(new GatewayError('bad_request', { message: 'The request body could not be read.', cause: err }));
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', onError);
}

/** The body as a JSON object that meets its route's schema, or the catalogue's 400. */
function checkedBody(raw: Buffer, maxDepth: number, validate: ValidateFunction): JsonObject {
  const body = parseJson(raw, maxDepth);
  if (!validate(body)) throw invalidBody(validate.errors ?? []);
  return body as JsonObject;
}

function parseJson(raw: Buffer, maxDepth: number): unknown {
  if (raw.length === 0) throw new GatewayError('invalid_json', { message: 'The request body is empty.' });
  // JSON is UTF-8 (RFC 8259 §8.1); decoding would turn bad bytes into U+FFFD and forward a different body.
  if (!isUtf8(raw)) throw new GatewayError('invalid_json', { message: 'The request body is not valid UTF-8.' });
  // Checked before parsing: deep nesting is cheap to send and overflows recursive code later.
  // Nesting past maxDepth needs more than maxDepth bytes of brackets, so a body no longer than
  // that cannot exceed it (64 bytes for the default 64): skip the scan, the answer is the same.
  if (raw.length > maxDepth && exceedsDepth(raw, maxDepth)) {
    throw new GatewayError('json_too_deep', {
      message: `The request body nests objects or arrays deeper than ${maxDepth} levels.`,
    });
  }
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new GatewayError('invalid_json', {
      message: `The request body is not valid JSON: ${(err as Error).message}`,
      cause: err,
    });
  }
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

/** FlockServe's header switch: `stream: 1` asks for a streamed answer as the body's `"stream": true` does. */
function wantsStream(req: IncomingMessage, body: JsonObject): boolean {
  const h = req.headers['stream'];
  return body['stream'] === true || h === '1' || h === 'true';
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
}
