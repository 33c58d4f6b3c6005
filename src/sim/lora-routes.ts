/**
 * vLLM's runtime LoRA API and its model check, on the engine simulator
 * (vllm/frontend/entrypoints/serve/lora/api_router.py, which vLLM attaches only with
 * VLLM_ALLOW_RUNTIME_LORA_UPDATING; the checks and texts are OpenAIServingModels' in
 * vllm/frontend/entrypoints/openai/models/serving.py, the model check BaseServing._check_model's
 * in vllm/frontend/entrypoints/serve/engine/serving.py):
 * POST /v1/load_lora_adapter {lora_name, lora_path, load_inplace?} and
 * POST /v1/unload_lora_adapter {lora_name, lora_int_id?} answer 200 with a plain-text line and
 * no content-type (vLLM's bare `Response(content=...)`), or vLLM's error body.
 */
import type { ServerResponse } from 'node:http';
import { sendVllmError } from './http-util.js';
import type { LoraError } from './lora-adapters.js';
import type { SimContext } from './sim-context.js';

type Body = Record<string, unknown>;

/** Python's repr of a JSON value, as pydantic's errors print a request's input. */
function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') {
    const quote = v.includes("'") && !v.includes('"') ? '"' : "'";
    return quote + v.replaceAll('\\', '\\\\').replaceAll(quote, '\\' + quote) + quote;
  }
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  const entries = Object.entries(v as Record<string, unknown>).map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`);
  return `{${entries.join(', ')}}`;
}

/** One pydantic error entry, in the text vLLM answers for a body that fails its request model. */
function pydanticError(type: string, field: string, msg: string, input: unknown): string {
  return `{'type': '${type}', 'loc': ('body', '${field}'), 'msg': '${msg}', 'input': ${pyRepr(input)}}`;
}

/** A required `str` field: its errors (missing, or not a string: pydantic does not make a string of a number). */
function strErrors(body: Body, field: string): string[] {
  const v = body[field];
  if (v === undefined) return [pydanticError('missing', field, 'Field required', body)];
  return typeof v === 'string' ? [] : [pydanticError('string_type', field, 'Input should be a valid string', v)];
}

const TRUE_TEXT = new Set(['1', 'on', 't', 'true', 'y', 'yes']);
const FALSE_TEXT = new Set(['0', 'off', 'f', 'false', 'n', 'no']);

/** A `bool = False` field as pydantic's lax mode reads it (true/false, 0/1, "yes"/"no", …); a list of errors when it cannot. */
function readBool(body: Body, field: string): boolean | string[] {
  const v = body[field];
  if (v === undefined) return false;
  if (typeof v === 'boolean') return v;
  if (v === 0 || v === 1) return v === 1;
  if (typeof v === 'string') {
    const t = v.toLowerCase();
    if (TRUE_TEXT.has(t)) return true;
    if (FALSE_TEXT.has(t)) return false;
    return [pydanticError('bool_parsing', field, 'Input should be a valid boolean, unable to interpret input', v)];
  }
  return [pydanticError('bool_type', field, 'Input should be a valid boolean', v)];
}

/** An `int | None` field's errors. */
function optionalIntErrors(body: Body, field: string): string[] {
  const v = body[field];
  if (v === undefined || v === null || (typeof v === 'number' && Number.isInteger(v))) return [];
  if (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v)) return [];
  if (typeof v === 'number') {
    return [
      pydanticError('int_from_float', field, 'Input should be a valid integer, got a number with a fractional part', v),
    ];
  }
  if (typeof v === 'string') {
    return [
      pydanticError('int_parsing', field, 'Input should be a valid integer, unable to parse string as an integer', v),
    ];
  }
  return [pydanticError('int_type', field, 'Input should be a valid integer', v)];
}

/** Answers the request model's errors as the simulator's other routes answer pydantic's; false when there are none. */
function refuseInvalid(res: ServerResponse, errors: readonly string[]): boolean {
  if (errors.length === 0) return false;
  sendVllmError(res, 400, `[${errors.join(', ')}]`, 'BadRequestError');
  return true;
}

/** 200 with vLLM's success line as the bare body, or its error. */
function answer(res: ServerResponse, outcome: string | LoraError): void {
  if (typeof outcome !== 'string') return sendVllmError(res, outcome.status, outcome.message, outcome.type);
  res.writeHead(200, { 'content-length': Buffer.byteLength(outcome) }).end(outcome);
}

/** POST /v1/load_lora_adapter (LoadLoRAAdapterRequest: lora_name, lora_path, load_inplace, is_3d_lora_weight). */
export function handleLoadLoraAdapter(ctx: SimContext, body: Body, res: ServerResponse): void {
  const loadInplace = readBool(body, 'load_inplace');
  const is3d = readBool(body, 'is_3d_lora_weight');
  const errors = [
    ...strErrors(body, 'lora_name'),
    ...strErrors(body, 'lora_path'),
    ...(Array.isArray(loadInplace) ? loadInplace : []),
    ...(Array.isArray(is3d) ? is3d : []),
  ];
  if (refuseInvalid(res, errors)) return;
  answer(
    res,
    ctx.loras.load(body.lora_name as string, body.lora_path as string, { loadInplace: loadInplace === true }),
  );
}

/** POST /v1/unload_lora_adapter (UnloadLoRAAdapterRequest: lora_name, lora_int_id, which vLLM reads but does not use). */
export function handleUnloadLoraAdapter(ctx: SimContext, body: Body, res: ServerResponse): void {
  if (refuseInvalid(res, [...strErrors(body, 'lora_name'), ...optionalIntErrors(body, 'lora_int_id')])) return;
  answer(res, ctx.loras.unload(body.lora_name as string));
}

/** The runtime LoRA routes, which exist only when runtime updating is allowed (else FastAPI's 404). */
export const LORA_ROUTES = {
  '/v1/load_lora_adapter': handleLoadLoraAdapter,
  '/v1/unload_lora_adapter': handleUnloadLoraAdapter,
} as const satisfies Record<string, (ctx: SimContext, body: Body, res: ServerResponse) => void>;

/**
 * vLLM's model check on an inference request, with --enable-lora: an absent or empty `model`
 * is the served model; the served name or a loaded adapter's passes; any other name is a 404
 * naming the field. Returns true after answering that 404. Without --enable-lora every name
 * passes (the simulator's own leniency: vLLM checks names there too).
 */
export function refuseUnknownModel(ctx: SimContext, body: Body, res: ServerResponse): boolean {
  const model = body.model;
  if (!ctx.loras.enabled || typeof model !== 'string' || model === '') return false;
  if (model === ctx.modelName || ctx.loras.get(model)) return false;
  sendVllmError(res, 404, `The model \`${model}\` does not exist.`, 'NotFoundError', 'model');
  return true;
}
