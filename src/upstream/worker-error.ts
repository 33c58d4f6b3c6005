import { GatewayError, workerErrorCode } from '../core/errors.js';
import type { Headers } from './client.js';

/**
 * A worker's own error answer (status ≥ 400) as a GatewayError: the catalogue code for its
 * status (workerErrorCode), the worker's status kept, and its message and `param` read from
 * whichever shape the engine answers in:
 *
 *   OpenAI, newer vLLM, SGLang   {"error": {"message": "...", "param": "...", ...}}
 *   older vLLM                   {"object": "error", "message": "...", "param": null, "code": 400}
 *   TGI                          {"error": "...", "error_type": "validation"}
 *   FastAPI (vLLM's 404, 422)    {"detail": "Not Found"}, {"detail": [{"loc": [...], "msg": "..."}]}
 *   anything else                its text, cut to MAX_MESSAGE characters
 *
 * so every transport answers it in the catalogue's shape (OpenAI's error body on HTTP, the
 * gRPC status and message) without losing what the worker said.
 */
export function workerError(status: number, headers: Headers, body: Buffer): GatewayError {
  const said = readWorkerError(body);
  const retryAfter = Number(headers['retry-after']);
  return new GatewayError(workerErrorCode(status), {
    status,
    ...(said.message ? { message: said.message } : {}),
    ...(said.param ? { param: said.param } : {}),
    ...(Number.isFinite(retryAfter) && retryAfter >= 0 ? { retryAfterSeconds: retryAfter } : {}),
  });
}

/** A worker's error message longer than this is cut (an HTML error page, a stack trace). */
const MAX_MESSAGE = 1000;

type JsonObject = Record<string, unknown>;

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

interface WorkerSaid {
  readonly message?: string | undefined;
  readonly param?: string | undefined;
}

/** The message and field at fault in a worker's error body; either may be missing. */
export function readWorkerError(body: Buffer): WorkerSaid {
  const text = body.toString('utf8').trim();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { message: cut(text) };
  }
  return isObject(json) ? fromJson(json, text) : { message: cut(text) };
}

/**
 * What an engine said in an error event inside its stream: the cause of workerStreamError. The
 * engine answered, so it is no sign of a broken worker (vLLM reports a request's own failure,
 * a guided-decoding or tool-parser error, this way too).
 */
export class EngineStreamError extends Error {
  override readonly name = 'EngineStreamError';
}

/** An engine's stream that failed after it began, as its error event said (errorEventMessage). */
export function workerStreamError(message: string): GatewayError {
  return new GatewayError('upstream_interrupted', {
    message: `worker stream error: ${message}`,
    cause: new EngineStreamError(message),
  });
}

/**
 * The message of an SSE event that is an error, not a chunk (an engine failing after its
 * stream began: OpenAI's `{"error": {...}}`, older vLLM's `{"object": "error", ...}`, TGI's
 * `{"error": "..."}`); undefined for any other event's JSON, an object or not.
 */
export function errorEventMessage(event: unknown): string | undefined {
  if (!isObject(event) || event['choices'] !== undefined || event['token'] !== undefined) return undefined;
  // `"error": null` is a chunk saying there is none.
  if (event['error'] == null && event['object'] !== 'error') return undefined;
  return fromJson(event, JSON.stringify(event)).message ?? 'the worker sent an error event';
}

function fromJson(json: JsonObject, text: string): WorkerSaid {
  const error = json['error'];
  if (isObject(error)) return { message: cut(str(error['message']) ?? text), param: str(error['param']) };
  if (typeof error === 'string') return { message: cut(error) };
  if (typeof json['message'] === 'string') return { message: cut(json['message']), param: str(json['param']) };
  const detail = json['detail'];
  if (typeof detail === 'string') return { message: cut(detail) };
  if (Array.isArray(detail)) return fastApiValidation(detail, text);
  return { message: cut(text) };
}

/** FastAPI's validation errors: `loc` is ["body", "field", ...], `msg` the reason. */
function fastApiValidation(detail: unknown[], text: string): WorkerSaid {
  const parts: string[] = [];
  let param: string | undefined;
  for (const d of detail) {
    if (!isObject(d)) continue;
    const loc = Array.isArray(d['loc']) ? d['loc'].filter((l) => l !== 'body').join('.') : '';
    param ??= loc || undefined;
    parts.push(loc ? `${loc}: ${String(d['msg'])}` : String(d['msg']));
  }
  return parts.length > 0 ? { message: cut(parts.join('; ')), ...(param ? { param } : {}) } : { message: cut(text) };
}

function cut(s: string): string | undefined {
  if (s === '') return undefined;
  return s.length > MAX_MESSAGE ? `${s.slice(0, MAX_MESSAGE)}…` : s;
}
