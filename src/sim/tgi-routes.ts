/**
 * TGI's routes in the engine simulator, shaped like text-generation-inference's router:
 * POST /generate → `{"generated_text", "details"?}` with its `x-prompt-tokens` and
 * `x-generated-tokens` headers; POST /generate_stream → `data:{StreamResponse}`
 * events, the last one carrying generated_text and details; errors `{"error","error_type"}`.
 * `/generate` with `"stream": true` streams too, as TGI's compat route `POST /` does (served here too).
 */
import type { ServerResponse } from 'node:http';
import { estimateTokens, tokenId, tokenLogprob } from './fake-text.js';
import { asRecord, sendJson, sendTgiError } from './http-util.js';
import type { SimContext } from './sim-context.js';
import { SseWriter } from './sse-writer.js';

/** TGI's default `max_new_tokens` when the request names none. */
export const TGI_DEFAULT_MAX_NEW_TOKENS = 100;

type Body = Record<string, unknown>;

interface TgiParams {
  readonly inputs: string;
  readonly promptTokens: number;
  readonly maxTokens: number;
  readonly details: boolean;
  readonly returnFullText: boolean;
}

function readParams(ctx: SimContext, body: Body, res: ServerResponse): TgiParams | undefined {
  if (typeof body.inputs !== 'string') {
    sendTgiError(res, 422, 'Failed to deserialize the JSON body: missing field `inputs`', 'validation');
    return undefined;
  }
  const params = asRecord(body.parameters) ?? {};
  const raw = params.max_new_tokens;
  let maxTokens = TGI_DEFAULT_MAX_NEW_TOKENS;
  if (raw !== undefined && raw !== null) {
    if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 1) {
      sendTgiError(res, 422, '`max_new_tokens` must be strictly positive', 'validation');
      return undefined;
    }
    maxTokens = raw;
  }
  const promptTokens = estimateTokens(body.inputs);
  const limit = ctx.model.profile.kvCacheTokens;
  if (promptTokens + maxTokens > limit) {
    sendTgiError(
      res,
      422,
      `\`inputs\` tokens + \`max_new_tokens\` must be <= ${limit}. Given: ${promptTokens} \`inputs\` tokens and ${maxTokens} \`max_new_tokens\``,
      'validation',
    );
    return undefined;
  }
  return {
    inputs: body.inputs,
    promptTokens,
    maxTokens,
    details: params.details === true,
    returnFullText: params.return_full_text === true,
  };
}

function token(ctx: SimContext, i: number) {
  return { id: tokenId(i, ctx.seed), text: ctx.tokenText(i), logprob: tokenLogprob(i), special: false };
}

export function handleGenerate(ctx: SimContext, body: Body, res: ServerResponse): void {
  if (body.stream === true) return handleGenerateStream(ctx, body, res);
  const p = readParams(ctx, body, res);
  if (!p) return;
  ctx.generate(res, {
    promptTokens: p.promptTokens,
    promptText: p.inputs,
    maxTokens: p.maxTokens,
    onToken: () => {},
    onDone: (reason) => {
      const text = (p.returnFullText ? p.inputs : '') + ctx.generatedText(p.maxTokens);
      const details = {
        finish_reason: reason,
        generated_tokens: p.maxTokens,
        seed: null,
        prefill: [],
        tokens: Array.from({ length: p.maxTokens }, (_, i) => token(ctx, i)),
      };
      // TGI's router reports the counts in headers too, details or not.
      sendJson(res, 200, p.details ? { generated_text: text, details } : { generated_text: text }, {
        'x-prompt-tokens': String(p.promptTokens),
        'x-generated-tokens': String(p.maxTokens),
      });
    },
    onError: (e) => sendTgiError(res, 422, e.message, 'validation'),
  });
}

export function handleGenerateStream(ctx: SimContext, body: Body, res: ServerResponse): void {
  const p = readParams(ctx, body, res);
  if (!p) return;
  const sse = new SseWriter(res, 'data:');
  ctx.generate(res, {
    promptTokens: p.promptTokens,
    promptText: p.inputs,
    maxTokens: p.maxTokens,
    onToken: (i) => {
      // TGI numbers stream events from 1; the last one waits for onDone to carry generated_text.
      if (i === p.maxTokens - 1) return;
      sse.event({ index: i + 1, token: token(ctx, i), generated_text: null, details: null });
    },
    onDone: (reason) => {
      const last = p.maxTokens - 1;
      sse.event({
        index: last + 1,
        token: token(ctx, last),
        generated_text: (p.returnFullText ? p.inputs : '') + ctx.generatedText(p.maxTokens),
        details: { finish_reason: reason, generated_tokens: p.maxTokens, seed: null, input_length: p.promptTokens },
      });
      sse.end();
    },
    onError: (e) => {
      sse.event({ error: e.message, error_type: 'generation' });
      sse.end();
    },
  });
}
