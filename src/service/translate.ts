/**
 * Lossless translation between OpenAI/TGI JSON and the proto messages.
 *
 * Each message is described once by the JSON fields it names; every other JSON field
 * travels in the message's `extra` Struct and is merged back on the way out, so no
 * vendor parameter is lost in either direction. A named field whose JSON value has an
 * unexpected type also goes to `extra` rather than being coerced.
 */
import { GatewayError } from '../core/errors.js';

type Json = unknown;
type JsonObject = Record<string, Json>;

type Kind = 'string' | 'number' | 'boolean' | 'json' | 'stringList' | 'object';

interface Field {
  readonly json: string;
  readonly ts: string;
  readonly kind: Kind;
  /** Nested message (single, or repeated when `repeated`). */
  readonly message?: Desc;
  readonly repeated?: boolean;
}

interface Desc {
  readonly fields: ReadonlyMap<string, Field>;
  /** Set when the message has hand-written handling for some JSON keys (ChatMessage.content). */
  readonly custom?: {
    readonly keys: readonly string[];
    toProto(json: JsonObject, out: JsonObject): void;
    toJson(msg: JsonObject, out: JsonObject): void;
  };
}

const camel = (s: string): string => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

function desc(spec: Record<string, Kind | [Desc] | Desc>, custom?: Desc['custom']): Desc {
  const fields = new Map<string, Field>();
  for (const [json, k] of Object.entries(spec)) {
    const ts = camel(json);
    if (Array.isArray(k)) fields.set(json, { json, ts, kind: 'object', message: k[0], repeated: true });
    else if (typeof k === 'object') fields.set(json, { json, ts, kind: 'object', message: k });
    else fields.set(json, { json, ts, kind: k });
  }
  return custom ? { fields, custom } : { fields };
}

const isObject = (v: Json): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

function fits(kind: Kind, v: Json): boolean {
  switch (kind) {
    case 'string':
      return typeof v === 'string';
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'stringList':
      return typeof v === 'string' || (Array.isArray(v) && v.every((s) => typeof s === 'string'));
    case 'object':
      return isObject(v);
    case 'json':
      return true;
  }
}

/** JSON object → proto message object (ts-proto's camelCase shape). */
export function toProto(json: JsonObject, d: Desc): JsonObject {
  const out: JsonObject = {};
  const extra: JsonObject = {};
  const customKeys = d.custom?.keys ?? [];
  for (const [key, value] of Object.entries(json)) {
    if (customKeys.includes(key)) continue;
    const f = d.fields.get(key);
    if (!f || value === undefined) {
      extra[key] = value;
      continue;
    }
    // A null on a typed field means "absent"; JSON-typed fields keep it.
    if (value === null && f.kind !== 'json') continue;
    if (f.repeated) {
      if (Array.isArray(value) && value.every(isObject)) out[f.ts] = value.map((v) => toProto(v, f.message!));
      else extra[key] = value;
    } else if (!fits(f.kind, value)) {
      extra[key] = value;
    } else if (f.kind === 'object' && f.message) {
      out[f.ts] = toProto(value as JsonObject, f.message);
    } else if (f.kind === 'stringList') {
      out[f.ts] = typeof value === 'string' ? [value] : value;
    } else {
      out[f.ts] = value;
    }
  }
  d.custom?.toProto(json, out);
  if (Object.keys(extra).length > 0) out['extra'] = extra;
  return out;
}

/** Proto message object → JSON object for the worker; unset and empty fields are left out. */
export function toJson(msg: JsonObject, d: Desc): JsonObject {
  const out: JsonObject = {};
  const extra = msg['extra'];
  if (isObject(extra)) Object.assign(out, extra);
  for (const f of d.fields.values()) {
    const v = msg[f.ts];
    if (v === undefined || v === '' || (Array.isArray(v) && v.length === 0)) continue;
    if (f.repeated) out[f.json] = (v as JsonObject[]).map((m) => toJson(m, f.message!));
    else if (f.kind === 'object' && f.message) out[f.json] = toJson(v as JsonObject, f.message);
    else if (typeof v === 'number' && !Number.isFinite(v))
      // JSON has no NaN or infinity: the worker would read null, its default, without a word.
      throw new GatewayError('bad_request', {
        message: `${f.json} must be a finite number, got ${v}.`,
        param: f.json,
      });
    else out[f.json] = v;
  }
  d.custom?.toJson(msg, out);
  return out;
}

const USAGE = desc({ prompt_tokens: 'number', completion_tokens: 'number', total_tokens: 'number' });
const CONTENT_PART = desc({ type: 'string', text: 'string' });

/** ChatMessage.content is a string or a list of parts in JSON, a oneof in the proto. */
const CHAT_MESSAGE: Desc = desc(
  { role: 'string', name: 'string', tool_call_id: 'string', tool_calls: 'json', reasoning_content: 'string' },
  {
    keys: ['content'],
    toProto(json, out) {
      const c = json['content'];
      if (typeof c === 'string') out['content'] = { $case: 'text', value: c };
      else if (Array.isArray(c) && c.every(isObject))
        out['content'] = { $case: 'parts', value: { parts: c.map((p) => toProto(p, CONTENT_PART)) } };
      else if (c !== undefined && c !== null) {
        const extra = (out['extra'] ?? {}) as JsonObject;
        extra['content'] = c;
        out['extra'] = extra;
      }
    },
    toJson(msg, out) {
      const c = msg['content'] as { $case: string; value: Json } | undefined;
      if (c?.$case === 'text') out['content'] = c.value;
      else if (c?.$case === 'parts')
        out['content'] = ((c.value as JsonObject)['parts'] as JsonObject[]).map((p) => toJson(p, CONTENT_PART));
    },
  },
);

export const CHAT_REQUEST = desc({
  model: 'string',
  messages: [CHAT_MESSAGE],
  max_tokens: 'number',
  max_completion_tokens: 'number',
  temperature: 'number',
  top_p: 'number',
  n: 'number',
  stop: 'stringList',
  seed: 'number',
  user: 'string',
  tools: 'json',
  tool_choice: 'json',
  response_format: 'json',
  presence_penalty: 'number',
  frequency_penalty: 'number',
  logprobs: 'boolean',
  top_logprobs: 'number',
  stream: 'boolean',
  stream_options: 'json',
});

const CHAT_CHOICE = desc({
  index: 'number',
  message: CHAT_MESSAGE,
  delta: CHAT_MESSAGE,
  finish_reason: 'string',
  logprobs: 'json',
});

export const CHAT_RESPONSE = desc({
  id: 'string',
  object: 'string',
  created: 'number',
  model: 'string',
  choices: [CHAT_CHOICE],
  usage: USAGE,
  system_fingerprint: 'string',
});

export const COMPLETION_REQUEST = desc({
  model: 'string',
  prompt: 'json',
  max_tokens: 'number',
  temperature: 'number',
  top_p: 'number',
  n: 'number',
  stop: 'stringList',
  seed: 'number',
  user: 'string',
  presence_penalty: 'number',
  frequency_penalty: 'number',
  logprobs: 'number',
  echo: 'boolean',
  stream: 'boolean',
  stream_options: 'json',
});

export const COMPLETION_RESPONSE = desc({
  id: 'string',
  object: 'string',
  created: 'number',
  model: 'string',
  choices: [desc({ index: 'number', text: 'string', finish_reason: 'string', logprobs: 'json' })],
  usage: USAGE,
  system_fingerprint: 'string',
});

const GENERATE_PARAMETERS = desc({
  max_new_tokens: 'number',
  temperature: 'number',
  top_p: 'number',
  top_k: 'number',
  seed: 'number',
  stop: 'stringList',
  do_sample: 'boolean',
  details: 'boolean',
  return_full_text: 'boolean',
  repetition_penalty: 'number',
});

// `stream` is the RPC's switch between /generate and /generate_stream, not a TGI body field.
export const GENERATE_REQUEST = desc({ inputs: 'string', parameters: GENERATE_PARAMETERS });

export const GENERATE_RESPONSE = desc({
  generated_text: 'string',
  token: desc({ id: 'number', text: 'string', logprob: 'number', special: 'boolean' }),
  details: 'object',
});

export const EMBEDDINGS_REQUEST = desc({
  model: 'string',
  input: 'json',
  encoding_format: 'string',
  dimensions: 'number',
  user: 'string',
});

export const EMBEDDINGS_RESPONSE = desc({
  object: 'string',
  data: [desc({ index: 'number', object: 'string', embedding: 'json' })],
  model: 'string',
  usage: USAGE,
});
