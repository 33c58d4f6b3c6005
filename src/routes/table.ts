/**
 * The inference routes, one table for both transports: the HTTP edge serves these paths, and
 * each gRPC inference method names the path it stands for (chat → /v1/chat/completions, ...)
 * and is held to the same schema, stream rule, session key and routing text (see rules.ts and
 * validation.ts). Bodies are forwarded byte for byte: a schema checks only what routing and the
 * OpenAI/TGI contract need, so unknown fields pass untouched.
 */

/** Which API a route belongs to: it decides the shape of error bodies and how a stream ends. */
export type RouteApi = 'openai' | 'tgi';

export interface InferenceRoute {
  readonly path: string;
  readonly api: RouteApi;
  /** The JSON schema of the request body (ajv, compiled once at start-up). */
  readonly schema: object;
  /**
   * `asked`: streams when the body says `"stream": true` or the request carries FlockServe's
   * `stream: 1` header (metadata on gRPC), and the worker is told in the body. `always`: the
   * path itself streams (TGI's /generate_stream). `never`: the gateway asks for one answer
   * (embeddings, /generate); an engine that streams it anyway (SGLang's /generate with
   * `"stream": true`) is passed through as the stream it is.
   */
  readonly stream: 'asked' | 'always' | 'never';
}

/** FlockServe's streaming switch, a header (HTTP) or metadata key (gRPC): `stream: 1`. */
export const STREAM_HEADER = 'stream';
/** The session key for session affinity when the body names no `user`. */
export const SESSION_HEADER = 'x-session-id';
/** The request's id: the client's when it sends one, else the gateway's; on every answer. */
export const REQUEST_ID_HEADER = 'x-request-id';
/**
 * The request's place in the gateway's queue, a header (HTTP) or metadata key (gRPC): an
 * integer, lower served first, 0 without it. The gateway's, not sent on: vLLM refuses a
 * `priority` unless it runs its own priority scheduling.
 */
export const PRIORITY_HEADER = 'x-priority';

const object = (required: string[], properties: Record<string, unknown>) => ({
  type: 'object',
  required,
  properties,
});

/**
 * A field clients send as null when unset: pydantic's Optional[str] in Python clients, the
 * openai SDKs' `string | null`. vLLM reads null as unset.
 */
const stringOrNull = { anyOf: [{ type: 'string' }, { type: 'null' }] };

const common = {
  model: stringOrNull,
  // The openai SDKs type it `boolean | null`; null asks for no stream, as false does.
  stream: { anyOf: [{ type: 'boolean' }, { type: 'null' }] },
  user: stringOrNull,
};

/** A prompt, or a list of them (texts, or token ids as vLLM takes them); null when another field carries it. */
const promptOrNull = { anyOf: [{ type: 'string' }, { type: 'array' }, { type: 'null' }] };

const tgiBody = object(['inputs'], {
  inputs: { type: 'string' },
  parameters: { type: 'object' },
  // TGI and SGLang read a boolean here (serde's bool, pydantic's bool): null is theirs to refuse.
  stream: { type: 'boolean' },
});

/**
 * /generate is TGI's and SGLang's native route: TGI's body (`inputs`, `parameters`), or
 * SGLang's (`text`, a prompt or a list of them, or token ids; `sampling_params`; `stream` in the
 * body, which SGLang answers as SSE ending in `[DONE]`).
 */
const generateBody = {
  type: 'object',
  anyOf: [{ required: ['inputs'] }, { required: ['text'] }, { required: ['input_ids'] }],
  properties: {
    ...tgiBody.properties,
    text: { anyOf: [{ type: 'string' }, { type: 'array' }] },
    input_ids: { type: 'array' },
    sampling_params: { anyOf: [{ type: 'object' }, { type: 'array' }] },
  },
};

export const INFERENCE_ROUTES = [
  {
    path: '/v1/chat/completions',
    api: 'openai',
    stream: 'asked',
    schema: object(['messages'], {
      ...common,
      messages: { type: 'array', minItems: 1, items: { type: 'object', required: ['role'] } },
    }),
  },
  {
    // A prompt, or vLLM's prompt embeddings (`prompt_embeds`, base64 tensors) in its place.
    path: '/v1/completions',
    api: 'openai',
    stream: 'asked',
    schema: {
      ...object([], {
        ...common,
        prompt: promptOrNull,
        prompt_embeds: { anyOf: [{ type: 'string' }, { type: 'array' }] },
      }),
      // A null prompt is vLLM's "none", so it needs prompt_embeds beside it.
      anyOf: [
        { required: ['prompt'], properties: { prompt: { not: { type: 'null' } } } },
        { required: ['prompt_embeds'] },
      ],
    },
  },
  {
    // OpenAI's `input`, or vLLM's chat embeddings: `messages` rendered by the model's chat template.
    path: '/v1/embeddings',
    api: 'openai',
    stream: 'never',
    schema: {
      ...object([], {
        model: common.model,
        user: common.user,
        input: { anyOf: [{ type: 'string' }, { type: 'array' }] },
        messages: { type: 'array', items: { type: 'object', required: ['role'] } },
      }),
      anyOf: [{ required: ['input'] }, { required: ['messages'] }],
    },
  },
  {
    // OpenAI's Responses API (vLLM serves it): `input` as vLLM reads it, a string or a list of items.
    path: '/v1/responses',
    api: 'openai',
    stream: 'asked',
    schema: object([], {
      ...common,
      input: { anyOf: [{ type: 'string' }, { type: 'array' }] },
      instructions: stringOrNull,
      previous_response_id: stringOrNull,
    }),
  },
  { path: '/generate', api: 'tgi', stream: 'never', schema: generateBody },
  { path: '/generate_stream', api: 'tgi', stream: 'always', schema: tgiBody },
] as const satisfies readonly InferenceRoute[];

export type InferencePath = (typeof INFERENCE_ROUTES)[number]['path'];

/** TGI's and SGLang's native route (their bodies tell them apart: generateBody). */
export const GENERATE_PATH = '/generate' satisfies InferencePath;

/** Embeddings are balanced on load alone: their input, or messages, is no prompt to route on. */
export const EMBEDDINGS_PATH = '/v1/embeddings' satisfies InferencePath;

/**
 * Where OpenAI's Responses API creates answers; an engine may store them for later turns, which
 * name them by id: in the body (`previous_response_id`) or under this path (/v1/responses/{id}).
 */
export const RESPONSES_PATH = '/v1/responses' satisfies InferencePath;

/**
 * vLLM's run-time LoRA routes (with VLLM_ALLOW_RUNTIME_LORA_UPDATING): a change the gateway makes
 * on every worker, not on one (see AdapterSync), as the engine keeps its adapters in its own memory.
 */
export const LOAD_ADAPTER_PATH = '/v1/load_lora_adapter';
export const UNLOAD_ADAPTER_PATH = '/v1/unload_lora_adapter';

/** A request target's path, without its query. */
export function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query < 0 ? url : url.slice(0, query);
}

/** The route of a path, or undefined for a path outside the table. */
export function inferenceRoute(path: string): InferenceRoute | undefined {
  return INFERENCE_ROUTES.find((r) => r.path === path);
}

/**
 * The API whose error shape a path answers with: the OpenAI routes and every other path under
 * /v1/ (OpenAI's namespace, e.g. /v1/models) are `openai`; TGI's routes `tgi`; any other path
 * (an engine's own, e.g. /tokenize) is the engine's and its answers pass as they are.
 */
export function apiOfPath(path: string): RouteApi | undefined {
  return path.startsWith('/v1/') ? 'openai' : inferenceRoute(path)?.api;
}
