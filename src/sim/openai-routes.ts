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
import type { SimContext } from './sim-context.js';
import { chatLogprobs, completionLogprobs, readChatLogprobs, readCompletionLogprobs } from './logprobs.js';
import { SseWriter } from './sse-writer.js';
import { chatPromptText } from './prompt-text.js';
import { modelList } from './model-cards.js';

/** When a request names no max_tokens (vLLM would fill the context; a simulator keeps it short). */
export const DEFAULT_MAX_TOKENS = 16;
export const EMBEDDING_DIM = 8;
/** The most sequences (prompts × n) the simulator runs for one request. */
export const MAX_SEQUENCES = 128;

type Body = Record<string, unknown>;

export function badRequest(res: ServerResponse, message: string): void {
  sendVllmError(res, 400, message, 'BadRequestError');
}

/** The fields a chat or completion request names its token limit in; the Responses API names it `max_output_tokens`. */
export const CHAT_MAX_TOKENS_FIELDS: readonly string[] = ['max_tokens', 'max_completion_tokens'];

/**
 * The first of `fields` the body sets (max_tokens, else max_completion_tokens, for chat and
 * completions), else 16; a string message when invalid, worded as vLLM words it: a value that is
 * not an integer fails its pydantic model (vLLM answers the validation errors' text), an integer
 * below 1 its sampling parameters (which name it max_tokens whatever the request's field).
 */
export function readMaxTokens(body: Body, fields: readonly string[] = CHAT_MAX_TOKENS_FIELDS): number | string {
  const field = fields.find((f) => body[f] !== undefined && body[f] !== null);
  if (field === undefined) return DEFAULT_MAX_TOKENS;
  const raw = body[field];
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
export function tooLong(ctx: SimContext, res: ServerResponse, promptTokens: number, maxTokens: number): boolean {
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

export function requestedModel(ctx: SimContext, body: Body): string {
  // vLLM answers the served name, or the adapter's when one is named. Without --enable-lora the
  // simulator serves any name (gateways and benches pass theirs through) and echoes it; with it,
  // an unknown name is refused before this (lora-routes.ts, refuseUnknownModel).
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

/** One prompt of a request as the engine reads it: its tokens, and its text where it has one. */
export interface Prompt {
  readonly tokens: number;
  /** Token-id prompts have no text: they skip the prefix cache. */
  readonly text: string | undefined;
}

/** What one request's choices report as they generate; choice k is prompt ⌊k/n⌋'s sample k mod n. */
export interface ChoiceEvents {
  token?(k: number, i: number): void;
  done?(k: number, reason: FinishReason): void;
  /** Every choice finished: their finish reasons by choice. */
  all(reasons: readonly FinishReason[]): void;
  /** The first engine error; nothing is reported after it. */
  error(e: Error): void;
}

/**
 * Runs one sequence per prompt and sample, as vLLM does for `n` and for a list of prompts (it
 * numbers the choices prompt·n + sample), at the engine's pace; a client gone cancels them all.
 */
export function generateChoices(
  ctx: SimContext,
  res: ServerResponse,
  prompts: readonly Prompt[],
  n: number,
  maxTokens: number,
  on: ChoiceEvents,
): void {
  const reasons: FinishReason[] = [];
  let left = prompts.length * n;
  let failed = false;
  prompts.forEach((p, pi) => {
    for (let j = 0; j < n; j++) {
      const k = pi * n + j;
      ctx.generate(res, {
        promptTokens: p.tokens,
        promptText: p.text,
        maxTokens,
        onToken: (i) => {
          if (!failed) on.token?.(k, i);
        },
        onDone: (reason) => {
          if (failed) return;
          reasons[k] = reason;
          on.done?.(k, reason);
          if (--left === 0) on.all(reasons);
        },
        onError: (e) => {
          if (failed) return;
          failed = true;
          on.error(e);
        },
      });
    }
  });
}

/** Generates every choice, then sends the whole `answer(reasons)`; an engine error is a 400. */
function answerWhole(
  ctx: SimContext,
  res: ServerResponse,
  prompts: readonly Prompt[],
  n: number,
  maxTokens: number,
  answer: (reasons: readonly FinishReason[]) => Record<string, unknown>,
): void {
  generateChoices(ctx, res, prompts, n, maxTokens, {
    all: (reasons) => sendJson(res, 200, answer(reasons)),
    error: (e) => badRequest(res, e.message),
  });
}

/**
 * `n` (choices per prompt), 1 when absent; a string message when invalid, worded as vLLM words
 * it. The simulator also refuses more than MAX_SEQUENCES sequences in one request, which vLLM
 * would queue: each is a sequence of the engine model, held in this process's memory.
 */
function readN(body: Body, prompts: number): number | string {
  const raw = body.n;
  if (raw === undefined || raw === null) return 1;
  const v = typeof raw === 'string' && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : raw;
  if (typeof v !== 'number' || !Number.isInteger(v)) return pydanticIntError('n', v);
  if (v < 1) return `n must be at least 1, got ${v}.`;
  if (v * prompts > MAX_SEQUENCES)
    return `The engine simulator runs at most ${MAX_SEQUENCES} sequences per request; got n = ${v} for ${prompts} prompt(s).`;
  return v;
}

/** The usage-only chunk that ends a stream when stream_options.include_usage asks for it. */
function usageChunk(body: Body, head: AnswerHead, object: string, promptTokens: number, completionTokens: number) {
  return (
    streamOptions(body).includeUsage && {
      ...head(object),
      choices: [],
      usage: usage(promptTokens, completionTokens),
    }
  );
}

/** Tokens [from, to) of a streamed choice, not sent yet, and their text. */
export interface Unsent {
  readonly text: string;
  readonly from: number;
  readonly to: number;
}

/**
 * Streamed choices' tokens: each goes out as it comes unless the socket is blocked (then it
 * waits and merges with the next), and a choice's last token travels with its
 * finish_reason, as vLLM sends it.
 */
export class PendingTokens {
  readonly #text: string[] = [];
  /** By choice: tokens sent, and tokens generated. */
  readonly #sent: number[] = [];
  readonly #seen: number[] = [];

  /** Adds token `i` of choice `k`; returns what to send now, if anything. */
  token(ctx: SimContext, sse: SseWriter, k: number, i: number, maxTokens: number): Unsent | undefined {
    this.#text[k] = (this.#text[k] ?? '') + ctx.tokenText(i);
    this.#seen[k] = i + 1;
    return i === maxTokens - 1 || sse.blocked ? undefined : this.take(k);
  }

  /** What choice k has not sent yet (at its end, its last token). */
  take(k: number): Unsent {
    const from = this.#sent[k] ?? 0;
    const to = this.#seen[k] ?? from;
    const text = this.#text[k] ?? '';
    this.#text[k] = '';
    this.#sent[k] = to;
    return { text, from, to };
  }
}

export function handleModels(ctx: SimContext, res: ServerResponse): void {
  sendJson(res, 200, modelList(ctx.modelName, ctx.loras.list(), Math.floor(Date.now() / 1000)));
}

export function handleChatCompletions(ctx: SimContext, body: Body, res: ServerResponse): void {
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    return badRequest(res, 'messages: Field required (a non-empty list of messages).');
  }
  const maxTokens = readMaxTokens(body);
  if (typeof maxTokens === 'string') return badRequest(res, maxTokens);
  const n = readN(body, 1);
  if (typeof n === 'string') return badRequest(res, n);
  const logprobs = readChatLogprobs(body);
  if (typeof logprobs === 'string') return badRequest(res, logprobs);
  const promptText = chatPromptText(body.messages);
  const promptTokens = estimateTokens(promptText);
  if (tooLong(ctx, res, promptTokens, maxTokens)) return;
  const head = answerHead(ctx, body, 'chatcmpl');
  const prompts = [{ tokens: promptTokens, text: promptText }];
  const completionTokens = n * maxTokens;

  if (body.stream !== true) {
    answerWhole(ctx, res, prompts, n, maxTokens, (reasons) => ({
      ...head('chat.completion'),
      choices: reasons.map((reason, index) => ({
        index,
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
        logprobs: logprobs ? chatLogprobs(ctx, logprobs, 0, maxTokens) : null,
        finish_reason: reason,
        stop_reason: null,
      })),
      service_tier: null,
      system_fingerprint: null,
      usage: usage(promptTokens, completionTokens),
      prompt_logprobs: null,
      kv_transfer_params: null,
    }));
    return;
  }

  const sse = new SseWriter(res);
  const chunk = (index: number, delta: Record<string, unknown>, finish: FinishReason | null, sent?: Unsent) => {
    const lp = logprobs && sent ? chatLogprobs(ctx, logprobs, sent.from, sent.to) : null;
    return {
      ...head('chat.completion.chunk'),
      choices: [
        finish === null
          ? { index, delta, logprobs: lp, finish_reason: null }
          : { index, delta, logprobs: lp, finish_reason: finish, stop_reason: null },
      ],
    };
  };
  // Each choice opens with its role delta, as vLLM's first chunk per choice does.
  const opened: boolean[] = [];
  const open = (k: number) => {
    if (opened[k]) return;
    opened[k] = true;
    sse.event(chunk(k, { role: 'assistant', content: '' }, null));
  };
  const pending = new PendingTokens();
  generateChoices(ctx, res, prompts, n, maxTokens, {
    token: (k, i) => {
      open(k);
      const sent = pending.token(ctx, sse, k, i, maxTokens);
      if (sent) sse.event(chunk(k, { content: sent.text }, null, sent));
    },
    done: (k, reason) => {
      open(k);
      const sent = pending.take(k);
      sse.event(chunk(k, { content: sent.text }, reason, sent));
    },
    all: () => endStream(sse, usageChunk(body, head, 'chat.completion.chunk', promptTokens, completionTokens)),
    error: (e) => endStreamWithError(sse, e),
  });
}

/**
 * A completion's prompts: a string, a list of token ids, a list of strings or a list of
 * token-id lists (each of a list its own prompt, as vLLM batches them); undefined when none of
 * these.
 */
function completionPrompts(prompt: unknown): Prompt[] | undefined {
  const isIds = (p: unknown): p is number[] =>
    Array.isArray(p) && p.length > 0 && p.every((t) => typeof t === 'number');
  if (typeof prompt === 'string') return [{ tokens: estimateTokens(prompt), text: prompt }];
  if (isIds(prompt)) return [{ tokens: prompt.length, text: undefined }];
  if (!Array.isArray(prompt) || prompt.length === 0) return undefined;
  if (prompt.every((p) => typeof p === 'string'))
    return prompt.map((p: string) => ({ tokens: estimateTokens(p), text: p }));
  if (prompt.every(isIds)) return prompt.map((p: number[]) => ({ tokens: p.length, text: undefined }));
  return undefined;
}

export function handleCompletions(ctx: SimContext, body: Body, res: ServerResponse): void {
  const prompts = completionPrompts(body.prompt);
  if (!prompts) return badRequest(res, 'prompt: Field required (a string, a list of strings or of token ids).');
  const maxTokens = readMaxTokens(body);
  if (typeof maxTokens === 'string') return badRequest(res, maxTokens);
  const n = readN(body, prompts.length);
  if (typeof n === 'string') return badRequest(res, n);
  const logprobs = readCompletionLogprobs(body);
  if (typeof logprobs === 'string') return badRequest(res, logprobs);
  for (const p of prompts) if (tooLong(ctx, res, p.tokens, maxTokens)) return;
  const head = answerHead(ctx, body, 'cmpl');
  const promptTokens = prompts.reduce((t, p) => t + p.tokens, 0);
  const completionTokens = prompts.length * n * maxTokens;

  if (body.stream !== true) {
    answerWhole(ctx, res, prompts, n, maxTokens, (reasons) => ({
      ...head('text_completion'),
      choices: reasons.map((reason, index) => ({
        index,
        text: ctx.generatedText(maxTokens),
        logprobs: logprobs ? completionLogprobs(ctx, logprobs, 0, maxTokens) : null,
        finish_reason: reason,
        stop_reason: null,
        prompt_logprobs: null,
      })),
      service_tier: null,
      system_fingerprint: null,
      usage: usage(promptTokens, completionTokens),
      kv_transfer_params: null,
    }));
    return;
  }

  const sse = new SseWriter(res);
  // A choice's text so far, for its logprobs' text offsets.
  const offsets: number[] = [];
  const chunk = (index: number, sent: Unsent, finish: FinishReason | null) => {
    const offset = offsets[index] ?? 0;
    offsets[index] = offset + sent.text.length;
    const lp = logprobs ? completionLogprobs(ctx, logprobs, sent.from, sent.to, offset) : null;
    return {
      ...head('text_completion'),
      choices: [{ index, text: sent.text, logprobs: lp, finish_reason: finish, stop_reason: null }],
    };
  };
  const pending = new PendingTokens();
  generateChoices(ctx, res, prompts, n, maxTokens, {
    token: (k, i) => {
      const sent = pending.token(ctx, sse, k, i, maxTokens);
      if (sent) sse.event(chunk(k, sent, null));
    },
    done: (k, reason) => sse.event(chunk(k, pending.take(k), reason)),
    all: () => endStream(sse, usageChunk(body, head, 'text_completion', promptTokens, completionTokens)),
    error: (e) => endStreamWithError(sse, e),
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
