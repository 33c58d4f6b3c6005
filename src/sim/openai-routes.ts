/**
 * The OpenAI-compatible routes of the engine simulator, shaped like vLLM's
 * (vllm/entrypoints/openai/protocol.py): vLLM's extra fields (choices[].stop_reason,
 * prompt_logprobs, kv_transfer_params) are present, errors are vLLM's
 * `{"object":"error",...}`, streams are `data: {chunk}\n\n` ... `data: [DONE]\n\n`.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { embeddingToBase64, estimateTokens, fakeEmbedding } from './fake-text.js';
import type { FinishReason } from './engine-model.js';
import { asRecord, sendJson, sendVllmError } from './http-util.js';
import type { Generation, SimContext } from './sim-context.js';
import { SseWriter } from './sse-writer.js';

/** When a request names no max_tokens (vLLM would fill the context; a simulator keeps it short). */
export const DEFAULT_MAX_TOKENS = 16;
export const EMBEDDING_DIM = 8;

type Body = Record<string, unknown>;

function badRequest(res: ServerResponse, message: string): void {
  sendVllmError(res, 400, message, 'BadRequestError');
}

/**
 * max_tokens, else max_completion_tokens, else 16; a string message when invalid, worded as vLLM
 * words it: a value that is not an integer fails its pydantic model (vLLM answers the validation
 * errors' text), an integer below 1 its sampling parameters.
 */
function readMaxTokens(body: Body): number | string {
  const field = body.max_tokens !== undefined && body.max_tokens !== null ? 'max_tokens' : 'max_completion_tokens';
  const raw = body[field];
  if (raw === undefined || raw === null) return DEFAULT_MAX_TOKENS;
  // pydantic's lax mode takes an integer in a string ("8").
  const v = typeof raw === 'string' && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : raw;
  if (typeof v !== 'number' || !Number.isInteger(v)) return pydanticIntError(field, v);
  if (v < 1) return `max_tokens must be at least 1, got ${v}.`;
  return v;
}

/** The text of pydantic's errors for a body field that should be an integer, as vLLM sends it. */
function pydanticIntError(field: string, value: unknown): string {
  const [type, msg] =
    typeof value === 'string'
      ? ['int_parsing', 'Input should be a valid integer, unable to parse string as an integer']
      : typeof value === 'number'
        ? ['int_from_float', 'Input should be a valid integer, got a number with a fractional part']
        : ['int_type', 'Input should be a valid integer'];
  const input = typeof value === 'string' ? `'${value}'` : JSON.stringify(value);
  return `[{'type': '${type}', 'loc': ('body', '${field}'), 'msg': '${msg}', 'input': ${input}}]`;
}

/** vLLM rejects up front what can never fit (its max_model_len check); here the whole KV cache is the limit. */
function tooLong(ctx: SimContext, res: ServerResponse, promptTokens: number, maxTokens: number): boolean {
  const limit = ctx.model.profile.kvCacheTokens;
  if (promptTokens + maxTokens <= limit) return false;
  badRequest(
    res,
    `This model's maximum context length is ${limit} tokens. However, you requested ${promptTokens + maxTokens} tokens (${promptTokens} in the messages, ${maxTokens} in the completion).`,
  );
  return true;
}

function usage(promptTokens: number, completionTokens: number) {
  return {
    prompt_tokens: promptTokens,
    total_tokens: promptTokens + completionTokens,
    completion_tokens: completionTokens,
    prompt_tokens_details: null,
  };
}

function messageText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => (typeof asRecord(part)?.text === 'string' ? (asRecord(part)!.text as string) : ''))
      .join('');
  }
  return '';
}

/** A chat request's prompt as the simulator reads it: the messages' text, one per line. */
export function chatPromptText(messages: readonly unknown[]): string {
  return messages.map((m) => messageText(asRecord(m)?.content)).join('\n');
}

function requestedModel(ctx: SimContext, body: Body): string {
  // vLLM echoes the requested name; the simulator serves any name so gateways can pass theirs through.
  return typeof body.model === 'string' && body.model !== '' ? body.model : ctx.modelName;
}

function streamOptions(body: Body): { includeUsage: boolean } {
  return { includeUsage: asRecord(body.stream_options)?.include_usage === true };
}

/** The fields every answer and chunk of one request begin with, in vLLM's order. */
type AnswerHead = (object: string) => { id: string; object: string; created: number; model: string };

/** One request's id (`<prefix>-<hex>`), creation time and model, for all its answers and chunks. */
function answerHead(ctx: SimContext, body: Body, idPrefix: string): AnswerHead {
  const id = `${idPrefix}-${randomUUID().replaceAll('-', '')}`;
  const created = Math.floor(Date.now() / 1000);
  const model = requestedModel(ctx, body);
  return (object) => ({ id, object, created, model });
}

/** Generates at the engine's pace, then sends the whole `answer(reason)`; an engine error is a 400. */
function answerWhole(
  ctx: SimContext,
  res: ServerResponse,
  gen: Pick<Generation, 'promptTokens' | 'promptText' | 'maxTokens'>,
  answer: (reason: FinishReason) => Record<string, unknown>,
): void {
  ctx.generate(res, {
    ...gen,
    onToken: () => {},
    onDone: (reason) => sendJson(res, 200, answer(reason)),
    onError: (e) => badRequest(res, e.message),
  });
}

/** The usage-only chunk that ends a stream when stream_options.include_usage asks for it. */
function usageChunk(body: Body, head: AnswerHead, object: string, promptTokens: number, maxTokens: number) {
  return streamOptions(body).includeUsage && { ...head(object), choices: [], usage: usage(promptTokens, maxTokens) };
}

export function handleModels(ctx: SimContext, res: ServerResponse): void {
  const created = Math.floor(Date.now() / 1000);
  sendJson(res, 200, {
    object: 'list',
    data: [
      {
        id: ctx.modelName,
        object: 'model',
        created,
        owned_by: 'vllm',
        root: ctx.modelName,
        parent: null,
        max_model_len: 131072,
        permission: [],
      },
    ],
  });
}

export function handleChatCompletions(ctx: SimContext, body: Body, res: ServerResponse): void {
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    return badRequest(res, 'messages: Field required (a non-empty list of messages).');
  }
  const maxTokens = readMaxTokens(body);
  if (typeof maxTokens === 'string') return badRequest(res, maxTokens);
  const promptText = chatPromptText(body.messages);
  const promptTokens = estimateTokens(promptText);
  if (tooLong(ctx, res, promptTokens, maxTokens)) return;
  const head = answerHead(ctx, body, 'chatcmpl');

  if (body.stream !== true) {
    answerWhole(ctx, res, { promptTokens, promptText, maxTokens }, (reason) => ({
      ...head('chat.completion'),
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: ctx.generatedText(maxTokens),
            refusal: null,
            annotations: null,
            audio: null,
            function_call: null,
            tool_calls: [],
            reasoning_content: null,
          },
          logprobs: null,
          finish_reason: reason,
          stop_reason: null,
        },
      ],
      service_tier: null,
      system_fingerprint: null,
      usage: usage(promptTokens, maxTokens),
      prompt_logprobs: null,
      kv_transfer_params: null,
    }));
    return;
  }

  const sse = new SseWriter(res);
  const chunk = (delta: Record<string, unknown>, finish: FinishReason | null) => ({
    ...head('chat.completion.chunk'),
    choices: [
      finish === null
        ? { index: 0, delta, logprobs: null, finish_reason: null }
        : { index: 0, delta, logprobs: null, finish_reason: finish, stop_reason: null },
    ],
  });
  let sentRole = false;
  let pending = ''; // text not sent yet: coalesced while the socket is blocked, and the last token
  const sendRole = () => {
    if (sentRole) return;
    sentRole = true;
    sse.event(chunk({ role: 'assistant', content: '' }, null));
  };
  ctx.generate(res, {
    promptTokens,
    promptText,
    maxTokens,
    onToken: (i) => {
      sendRole();
      pending += ctx.tokenText(i);
      // The last token travels with finish_reason (as vLLM sends it); others go now unless blocked.
      if (i === maxTokens - 1 || sse.blocked) return;
      sse.event(chunk({ content: pending }, null));
      pending = '';
    },
    onDone: (reason) => {
      sendRole();
      sse.event(chunk({ content: pending }, reason));
      endStream(sse, usageChunk(body, head, 'chat.completion.chunk', promptTokens, maxTokens));
    },
    onError: (e) => endStreamWithError(sse, e),
  });
}

export function handleCompletions(ctx: SimContext, body: Body, res: ServerResponse): void {
  const prompt = body.prompt;
  let promptTokens: number;
  // Token-id prompts have no text: they skip the prefix cache.
  let promptText: string | undefined = typeof prompt === 'string' ? prompt : undefined;
  if (typeof prompt === 'string') promptTokens = estimateTokens(prompt);
  else if (Array.isArray(prompt) && prompt.length > 0 && prompt.every((p) => typeof p === 'number'))
    promptTokens = prompt.length;
  else if (Array.isArray(prompt) && prompt.length > 0 && prompt.every((p) => typeof p === 'string')) {
    promptText = prompt.join('\n');
    promptTokens = estimateTokens(promptText);
  } else return badRequest(res, 'prompt: Field required (a string, a list of strings or a list of token ids).');
  const maxTokens = readMaxTokens(body);
  if (typeof maxTokens === 'string') return badRequest(res, maxTokens);
  if (tooLong(ctx, res, promptTokens, maxTokens)) return;
  const head = answerHead(ctx, body, 'cmpl');

  if (body.stream !== true) {
    answerWhole(ctx, res, { promptTokens, promptText, maxTokens }, (reason) => ({
      ...head('text_completion'),
      choices: [
        {
          index: 0,
          text: ctx.generatedText(maxTokens),
          logprobs: null,
          finish_reason: reason,
          stop_reason: null,
          prompt_logprobs: null,
        },
      ],
      service_tier: null,
      system_fingerprint: null,
      usage: usage(promptTokens, maxTokens),
      kv_transfer_params: null,
    }));
    return;
  }

  const sse = new SseWriter(res);
  const chunk = (text: string, finish: FinishReason | null) => ({
    ...head('text_completion'),
    choices: [{ index: 0, text, logprobs: null, finish_reason: finish, stop_reason: null }],
  });
  let pending = '';
  ctx.generate(res, {
    promptTokens,
    promptText,
    maxTokens,
    onToken: (i) => {
      pending += ctx.tokenText(i);
      if (i === maxTokens - 1 || sse.blocked) return;
      sse.event(chunk(pending, null));
      pending = '';
    },
    onDone: (reason) => {
      sse.event(chunk(pending, reason));
      endStream(sse, usageChunk(body, head, 'text_completion', promptTokens, maxTokens));
    },
    onError: (e) => endStreamWithError(sse, e),
  });
}

/** Ends an OpenAI stream as vLLM does: the usage-only chunk when asked for (stream_options.include_usage), then [DONE]. */
function endStream(sse: SseWriter, usageChunk: Record<string, unknown> | false): void {
  if (usageChunk) sse.event(usageChunk);
  sse.event('[DONE]');
  sse.end();
}

/** A failure after the stream began: vLLM's error object as an event, then [DONE]. */
function endStreamWithError(sse: SseWriter, e: Error): void {
  sse.event({ object: 'error', message: e.message, type: 'BadRequestError', param: null, code: 400 });
  sse.event('[DONE]');
  sse.end();
}

/** Embeddings answer at once (no generation); `encoding_format: "base64"` is what the openai npm client asks for. */
export function handleEmbeddings(ctx: SimContext, body: Body, res: ServerResponse): void {
  const input = body.input;
  let texts: string[];
  if (typeof input === 'string') texts = [input];
  else if (Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === 'string')) texts = input;
  else if (Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === 'number'))
    texts = [input.join(',')];
  else if (Array.isArray(input) && input.length > 0 && input.every((x) => Array.isArray(x))) {
    texts = input.map((x: unknown[]) => x.join(','));
  } else return badRequest(res, 'input: Field required (a string, a list of strings or token ids).');
  const base64 = body.encoding_format === 'base64';
  let promptTokens = 0;
  const data = texts.map((text, index) => {
    promptTokens += estimateTokens(text);
    const v = fakeEmbedding(text, EMBEDDING_DIM);
    return { index, object: 'embedding', embedding: base64 ? embeddingToBase64(v) : v };
  });
  sendJson(res, 200, {
    ...answerHead(ctx, body, 'embd')('list'),
    data,
    usage: usage(promptTokens, 0),
  });
}
