import { randomUUID } from 'node:crypto';
import { GatewayError } from '../core/errors.js';
import {
  EMBEDDINGS_PATH,
  GENERATE_PATH,
  LOAD_ADAPTER_PATH,
  pathOf,
  PRIORITY_HEADER,
  RESPONSES_PATH,
  UNLOAD_ADAPTER_PATH,
  type InferenceRoute,
  type RouteApi,
} from './table.js';

/**
 * What the gateway reads from an inference request besides its schema, the same on both
 * transports: whether it streams, its session key, its priority in the queue, the text the
 * prefix balancers route on, and its request id. A request is its JSON body (HTTP's as sent, gRPC's as built from the typed
 * message) and one value per header (HTTP) or metadata key (gRPC).
 */

type JsonObject = Record<string, unknown>;

/**
 * Whether the answer streams: always or never by the route, else when the body says
 * `"stream": true` or FlockServe's `stream` header is `1` (or `true`).
 */
export function wantsStream(route: InferenceRoute, body: JsonObject, streamHeader: string | undefined): boolean {
  return route.stream === 'asked' ? streamAsked(body['stream'], streamHeader) : route.stream === 'always';
}

/** The request asks for a stream: its `stream` field is true, or FlockServe's header is `1` (or `true`). */
export function streamAsked(streamField: unknown, streamHeader: string | undefined): boolean {
  return streamField === true || streamHeader === '1' || streamHeader === 'true';
}

/**
 * The body to send the worker: as it came, unless the header asked for a stream the body does
 * not ask for (the worker reads only the body).
 */
export function mustTellWorkerToStream(route: InferenceRoute, body: JsonObject, stream: boolean): boolean {
  return stream && route.stream === 'asked' && body['stream'] !== true;
}

/**
 * The body that tells the worker to stream (mustTellWorkerToStream): the bytes as they came with
 * `"stream":true` put first in the object, so every other value keeps its exact text (a seed
 * past 2^53, 1e400, 1.0 would change if parsed and written again). A body that names `stream`
 * already (false, say) is written again with it set.
 */
export function bodyTellingToStream(bytes: Buffer, body: JsonObject): Buffer {
  if ('stream' in body) return Buffer.from(JSON.stringify({ ...body, stream: true }));
  // The body is a JSON object: its first byte that is not whitespace is the `{`.
  const open = bytes.indexOf(0x7b);
  const field = Object.keys(body).length === 0 ? '"stream":true' : '"stream":true,';
  return Buffer.concat([bytes.subarray(0, open + 1), Buffer.from(field), bytes.subarray(open + 1)]);
}

/**
 * The shape of the gateway's errors for a request: its route's API's, but on /generate, which
 * TGI and SGLang share, OpenAI's for SGLang's body (`text`, `input_ids` or `sampling_params`, no
 * `inputs`): SGLang answers its errors as `{"error": {"message": ...}}`, which OpenAI's shape is.
 * `body` is what the request's bytes parsed to, if they did.
 */
export function errorShapeOf(route: InferenceRoute, body: unknown): RouteApi {
  if (route.path !== GENERATE_PATH || typeof body !== 'object' || body === null) return route.api;
  if ('inputs' in body || 'parameters' in body) return 'tgi';
  return 'text' in body || 'input_ids' in body || 'sampling_params' in body ? 'openai' : route.api;
}

/** The request's priority in the gateway's queue (PRIORITY_HEADER): lower first; 0 without one. */
export function priorityOf(header: string | undefined): number {
  if (header === undefined) return 0;
  const text = header.trim();
  const n = /^[+-]?\d{1,15}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new GatewayError('bad_request', {
      message: `The ${PRIORITY_HEADER} header must be an integer of at most 15 digits (lower is served first), got ${JSON.stringify(header)}.`,
    });
  }
  return n;
}

/**
 * The key session affinity routes on: the body's `prompt_cache_key` (OpenAI's key for requests
 * that share a prompt cache), else its `user`, else the `x-session-id` header.
 */
export function sessionKeyOf(body: JsonObject, sessionHeader: string | undefined): string | undefined {
  const cacheKey = body['prompt_cache_key'];
  if (typeof cacheKey === 'string') return cacheKey;
  const user = body['user'];
  return typeof user === 'string' ? user : sessionHeader;
}

/**
 * The prompt text of a request body, for prefix-affinity routing: every message's text
 * content in order (the whole history, not only the first message), or a completion's
 * prompt, or TGI's inputs, or SGLang's text, or on the Responses API its instructions and input (a string, or
 * items read as messages). Undefined when the body has none; embeddings are balanced on load
 * alone, so their input is none.
 */
export function promptTextOf(body: JsonObject, route?: InferenceRoute): string | undefined {
  if (route?.path === EMBEDDINGS_PATH) return undefined; // vLLM's chat embeddings send messages too
  const messages = body['messages'];
  if (Array.isArray(messages)) return messagesText(messages);
  const prompt = body['prompt'] ?? body['inputs'] ?? body['text'];
  if (typeof prompt === 'string') return prompt;
  if (Array.isArray(prompt) && typeof prompt[0] === 'string') return prompt.join('\n');
  if (route?.path !== RESPONSES_PATH) return undefined;
  const input = body['input'];
  const instructions = body['instructions'];
  const head = typeof instructions === 'string' ? instructions + '\n' : '';
  if (typeof input === 'string') return head + input;
  return Array.isArray(input) ? head + messagesText(input) : undefined;
}

/** The text content of chat messages (or Responses input items), each part followed by a newline. */
function messagesText(messages: readonly unknown[]): string {
  let text = '';
  for (const m of messages) {
    if (typeof m !== 'object' || m === null) continue;
    const content = (m as JsonObject)['content'];
    if (typeof content === 'string') text += content + '\n';
    else if (Array.isArray(content))
      for (const part of content) {
        const t = (part as JsonObject | null)?.['text'];
        if (typeof t === 'string') text += t + '\n';
      }
  }
  return text;
}

/**
 * The stored Responses API answer a request builds on (see ResponseHomes): POST
 * /v1/responses' `previous_response_id`, or the id in /v1/responses/{id} and below it (GET
 * to retrieve, POST .../cancel). Undefined for any other request. The body is read only when
 * it names a previous answer at all.
 */
export function storedResponseOf(method: string, url: string, body: Buffer | undefined): string | undefined {
  const path = pathOf(url);
  if (!path.startsWith(RESPONSES_PATH)) return undefined;
  if (path.length === RESPONSES_PATH.length) {
    if (method !== 'POST' || !body?.includes(PREVIOUS_RESPONSE_FIELD)) return undefined;
    try {
      const id = (JSON.parse(body.toString('utf8')) as JsonObject | null)?.[PREVIOUS_RESPONSE_FIELD];
      return typeof id === 'string' && id !== '' ? id : undefined;
    } catch {
      return undefined; // the engine says what is wrong with the body
    }
  }
  if (path[RESPONSES_PATH.length] !== '/') return undefined;
  const end = path.indexOf('/', RESPONSES_PATH.length + 1);
  const id = path.slice(RESPONSES_PATH.length + 1, end < 0 ? undefined : end);
  return id === '' ? undefined : id;
}

/** Whether the worker's answer to this request may be stored for later turns (POST /v1/responses). */
export function mayStoreResponse(method: string, url: string): boolean {
  return method === 'POST' && pathOf(url) === RESPONSES_PATH;
}

const PREVIOUS_RESPONSE_FIELD = 'previous_response_id';

/** A run-time LoRA adapter change a client asks of the fleet. */
export interface AdapterRequest {
  readonly kind: 'load' | 'unload';
  /** The body's `lora_name`: what requests name in `model` to use the adapter. */
  readonly name: string;
  /** A load's `lora_path`, where the body names one as a string. */
  readonly path?: string | undefined;
}

/**
 * Which adapter change a request asks for (a POST to vLLM's LoRA routes), or undefined for any
 * other request. The path is read as the engine's server reads it, percent-escapes decoded.
 */
export function adapterChangeOf(method: string, url: string): AdapterRequest['kind'] | undefined {
  if (method !== 'POST' || !(url.includes(LORA_ROUTE_MARK) || url.includes('%'))) return undefined;
  let path = pathOf(url);
  try {
    if (path.includes('%')) path = decodeURIComponent(path);
  } catch {
    return undefined; // not a path any engine serves: forwarded, and the engine says so
  }
  return path === LOAD_ADAPTER_PATH ? 'load' : path === UNLOAD_ADAPTER_PATH ? 'unload' : undefined;
}

/** Both LoRA routes end so: one substring test keeps every other request off their checks. */
const LORA_ROUTE_MARK = '_lora_adapter';

/**
 * The most bytes an adapter change's body may have: the gateway keeps it to replay it, and shares
 * it with the other replicas in one etcd value. vLLM's fields (a name, a path, a flag) take a few
 * hundred.
 */
export const MAX_ADAPTER_BODY_BYTES = 16 * 1024;

/** What an adapter change's body names: its `lora_name`, which the gateway keeps changes by, and its `lora_path`. */
export function adapterBodyOf(body: Buffer | undefined): { name: string; path: string | undefined } {
  if (body !== undefined && body.length > MAX_ADAPTER_BODY_BYTES)
    throw new GatewayError('body_too_large', {
      message: `A LoRA adapter change's body may have at most ${MAX_ADAPTER_BODY_BYTES} bytes; this one has ${body.length}.`,
    });
  let parsed: unknown;
  try {
    parsed = JSON.parse(body?.toString('utf8') ?? '');
  } catch {
    throw new GatewayError('invalid_json', { message: 'The body of a LoRA adapter change is not valid JSON.' });
  }
  const o = typeof parsed === 'object' && parsed !== null ? (parsed as JsonObject) : {};
  const name = o['lora_name'];
  if (typeof name !== 'string' || name === '')
    throw new GatewayError('bad_request', {
      message: 'A LoRA adapter change must name the adapter in `lora_name`, a non-empty string.',
    });
  const path = o['lora_path'];
  return { name, path: typeof path === 'string' ? path : undefined };
}

/** The request's id: the client's `x-request-id` when it sent a non-empty one, else a new UUID. */
export function requestIdOf(header: string | undefined): string {
  return header !== undefined && header !== '' ? header : randomUUID();
}
