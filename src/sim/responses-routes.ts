/**
 * The OpenAI Responses API of the engine simulator, as vLLM serves it
 * (vllm/entrypoints/openai/responses/api_router.py and serving.py): POST /v1/responses answers
 * a response object, or streams named events (`event: TYPE\ndata: {...}\n\n`, no [DONE]);
 * GET /v1/responses/{id} and POST /v1/responses/{id}/cancel read the store, which holds answers
 * only when the simulator runs with it (vLLM's VLLM_ENABLE_RESPONSES_API_STORE=1; off by default,
 * when `store: true` is silently ignored).
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { FinishReason } from './engine-model.js';
import { estimateTokens } from './fake-text.js';
import { asRecord, sendJson, sendVllmError } from './http-util.js';
import { PendingTokens, badRequest, generateChoices, readMaxTokens, requestedModel, tooLong } from './openai-routes.js';
import type { Prompt } from './openai-routes.js';
import { chatPromptText } from './prompt-text.js';
import {
  conversation,
  finishStatus,
  outputMessage,
  outputText,
  readInput,
  responseObject,
  responseUsage,
} from './responses-objects.js';
import type { ResponseObject, ResponsesAsk } from './responses-objects.js';
import type { ResponseStore, StoredResponse } from './responses-store.js';
import type { SimContext } from './sim-context.js';
import { SseWriter } from './sse-writer.js';

type Body = Record<string, unknown>;

/** vLLM's ids: a prefix and a uuid4 in hex (32 characters). */
function newId(prefix: 'resp' | 'msg'): string {
  return `${prefix}_${randomUUID().replaceAll('-', '')}`;
}

function invalidRequest(res: ServerResponse, status: number, message: string, param: string): void {
  sendVllmError(res, status, message, 'invalid_request_error', param);
}

function notFound(res: ServerResponse, id: string): void {
  invalidRequest(res, 404, `Response with id '${id}' not found.`, 'response_id');
}

/** A field that is a string or absent (null); a string message when it is something else. */
function optionalString(body: Body, field: string): { value: string | null } | string {
  const v = body[field];
  if (v === undefined || v === null) return { value: null };
  return typeof v === 'string' ? { value: v } : `${field}: Input should be a valid string`;
}

function optionalNumber(body: Body, field: string, fallback: number): { value: number } | string {
  const v = body[field];
  if (v === undefined || v === null) return { value: fallback };
  return typeof v === 'number' && Number.isFinite(v) ? { value: v } : `${field}: Input should be a valid number`;
}

/** The fields the response object echoes; a string message when one has the wrong type. */
function readAsk(ctx: SimContext, body: Body, maxOutputTokens: number): ResponsesAsk | string {
  const instructions = optionalString(body, 'instructions');
  if (typeof instructions === 'string') return instructions;
  const previous = optionalString(body, 'previous_response_id');
  if (typeof previous === 'string') return previous;
  const user = optionalString(body, 'user');
  if (typeof user === 'string') return user;
  const temperature = optionalNumber(body, 'temperature', 1);
  if (typeof temperature === 'string') return temperature;
  const topP = optionalNumber(body, 'top_p', 1);
  if (typeof topP === 'string') return topP;
  return {
    model: requestedModel(ctx, body),
    instructions: instructions.value,
    previousResponseId: previous.value,
    maxOutputTokens,
    temperature: temperature.value,
    topP: topP.value,
    parallelToolCalls: body.parallel_tool_calls !== false,
    metadata: asRecord(body.metadata) ?? null,
    user: user.value,
  };
}

/**
 * Background mode needs the store in vLLM, which refuses it with this message when the store is
 * off; the simulator runs no background responses even with the store on.
 */
function refuseBackground(ctx: SimContext, body: Body, res: ServerResponse): boolean {
  if (body.background !== true) return false;
  const message = ctx.responseStore
    ? 'The engine simulator does not run background responses.'
    : 'This vLLM engine does not support `store=True` and therefore does not support the background mode. To enable these features, set the environment variable `VLLM_ENABLE_RESPONSES_API_STORE=1` when launching the vLLM server.';
  invalidRequest(res, 400, message, 'background');
  return true;
}

/** POST /v1/responses. */
export function handleCreateResponse(ctx: SimContext, body: Body, res: ServerResponse): void {
  const input = readInput(body.input);
  if (typeof input === 'string') return badRequest(res, input);
  const maxTokens = readMaxTokens(body, ['max_output_tokens']);
  if (typeof maxTokens === 'string') return badRequest(res, maxTokens);
  const ask = readAsk(ctx, body, maxTokens);
  if (typeof ask === 'string') return badRequest(res, ask);
  if (refuseBackground(ctx, body, res)) return;
  const store = ctx.responseStore;
  let previous: StoredResponse | undefined;
  if (ask.previousResponseId !== null) {
    // With the store off nothing is stored, so every previous_response_id is unknown, as in vLLM.
    previous = store?.get(ask.previousResponseId);
    if (!previous) return notFound(res, ask.previousResponseId);
  }
  const messages = conversation(ask.instructions, previous, input);
  const promptText = chatPromptText(messages);
  const promptTokens = estimateTokens(promptText);
  if (tooLong(ctx, res, promptTokens, maxTokens)) return;

  const head = { id: newId('resp'), createdAt: Math.floor(Date.now() / 1000) };
  const itemId = newId('msg');
  const usage = responseUsage(promptTokens, maxTokens);
  // `store` defaults to true; it counts only when the simulator keeps a store.
  const keep = body.store !== false ? store : undefined;
  const finish = (reason: FinishReason, text: string): ResponseObject => {
    const message = outputMessage(itemId, 'completed', [outputText(text, null)]);
    const response = responseObject(ask, head, finishStatus(reason), [message], usage);
    keep?.put(response.id, { response, messages });
    return response;
  };
  const prompt: Prompt = { tokens: promptTokens, text: promptText };

  if (body.stream !== true) {
    generateChoices(ctx, res, [prompt], 1, maxTokens, {
      all: (reasons) => sendJson(res, 200, finish(reasons[0] ?? 'length', ctx.generatedText(maxTokens))),
      error: (e) => badRequest(res, e.message),
    });
    return;
  }
  streamResponse(ctx, res, prompt, maxTokens, responseObject(ask, head, 'in_progress', [], null), itemId, finish);
}

/**
 * Streams one answer as vLLM's simple (non-harmony) stream does: response.created and
 * response.in_progress at once; at the first token the output item and its content part open;
 * one response.output_text.delta per token (tokens a blocked socket holds back merge into one
 * delta, as vLLM merges outputs a slow client has not collected); then the text, part and item
 * are done and response.completed carries the final object. Every event's data repeats its type
 * and numbers itself from 0.
 */
function streamResponse(
  ctx: SimContext,
  res: ServerResponse,
  prompt: Prompt,
  maxTokens: number,
  inProgress: ResponseObject,
  itemId: string,
  finish: (reason: FinishReason, text: string) => ResponseObject,
): void {
  const sse = new SseWriter(res);
  let sequence = 0;
  const emit = (type: string, fields: Record<string, unknown>) =>
    sse.namedEvent(type, { ...fields, sequence_number: sequence++, type });
  const at = { item_id: itemId, output_index: 0, content_index: 0 };
  emit('response.created', { response: inProgress });
  emit('response.in_progress', { response: inProgress });

  let opened = false;
  const open = () => {
    if (opened) return;
    opened = true;
    emit('response.output_item.added', { item: outputMessage(itemId, 'in_progress', []), output_index: 0 });
    emit('response.content_part.added', { ...at, part: outputText('', []) });
  };
  let text = '';
  const delta = (piece: string) => {
    if (piece === '') return;
    text += piece;
    emit('response.output_text.delta', { ...at, delta: piece, logprobs: [] });
  };
  const pending = new PendingTokens();
  generateChoices(ctx, res, [prompt], 1, maxTokens, {
    token: (_k, i) => {
      open();
      const sent = pending.token(ctx, sse, 0, i, maxTokens);
      if (sent) delta(sent.text);
    },
    done: () => {
      open();
      delta(pending.take(0).text);
    },
    all: (reasons) => {
      const response = finish(reasons[0] ?? 'length', text);
      emit('response.output_text.done', { ...at, text, logprobs: [] });
      emit('response.content_part.done', { ...at, part: outputText(text, []) });
      emit('response.output_item.done', { item: response.output[0], output_index: 0 });
      emit('response.completed', { response });
      sse.end();
    },
    // OpenAI's stream error event: the stream has begun, so the failure travels in it.
    error: (e) => {
      emit('error', { code: null, message: e.message, param: null });
      sse.end();
    },
  });
}

/** The stored response `id`, else undefined after answering vLLM's 404 (always, when the store is off). */
function storedOr404(store: ResponseStore | undefined, id: string, res: ServerResponse) {
  const stored = store?.get(id);
  if (!stored) notFound(res, id);
  return stored;
}

/** GET /v1/responses/{response_id}: the stored final object. */
export function handleRetrieveResponse(ctx: SimContext, id: string, res: ServerResponse): void {
  if (!id.startsWith('resp')) {
    return invalidRequest(
      res,
      400,
      `Invalid 'response_id': '${id}'. Expected an ID that begins with 'resp'.`,
      'response_id',
    );
  }
  const stored = storedOr404(ctx.responseStore, id, res);
  if (stored) sendJson(res, 200, stored.response);
}

/**
 * POST /v1/responses/{response_id}/cancel: only a background response, queued or in progress,
 * can be cancelled; the simulator runs none, so a stored response gets vLLM's refusal.
 */
export function handleCancelResponse(ctx: SimContext, id: string, res: ServerResponse): void {
  const stored = storedOr404(ctx.responseStore, id, res);
  if (stored) invalidRequest(res, 400, 'Cannot cancel a synchronous response.', 'response_id');
}
