/**
 * The engine simulator's log-probabilities, shaped as vLLM's OpenAI server sends them
 * (vllm/entrypoints/openai/protocol.py): chat's `logprobs.content[]` (token, logprob, bytes,
 * top_logprobs) and the completions API's `text_offset`, `token_logprobs`, `tokens` and
 * `top_logprobs`. The values are pretend (fake-text.ts): the sampled token, then alternatives
 * each one nat less likely.
 */
import { tokenLogprob } from './fake-text.js';
import type { SimContext } from './sim-context.js';

/** vLLM's default `--max-logprobs`: more alternatives per token are refused. */
export const MAX_LOGPROBS = 20;

/** How many alternatives to each sampled token a request asks for; undefined: no logprobs. */
export type LogprobsAsk = { readonly top: number } | undefined;

type Body = Record<string, unknown>;

/** Chat's `logprobs` (a boolean) and `top_logprobs` (0-20); a string message when invalid, worded as vLLM words it. */
export function readChatLogprobs(body: Body): LogprobsAsk | string {
  const top = body.top_logprobs ?? 0;
  if (typeof top !== 'number' || !Number.isInteger(top)) return '`top_logprobs` must be an integer.';
  if (top < 0) return '`top_logprobs` must be a positive value.';
  if (body.logprobs !== true) return top > 0 ? 'when using `top_logprobs`, `logprobs` must be set to true.' : undefined;
  return tooMany(top) ?? { top };
}

/** The completions API's `logprobs` (an integer, alternatives per token); a string message when invalid. */
export function readCompletionLogprobs(body: Body): LogprobsAsk | string {
  const n = body.logprobs;
  if (n === undefined || n === null) return undefined;
  if (typeof n !== 'number' || !Number.isInteger(n)) return '`logprobs` must be an integer.';
  if (n < 0) return '`logprobs` must be a positive value.';
  return tooMany(n) ?? { top: n };
}

function tooMany(top: number): string | undefined {
  return top > MAX_LOGPROBS
    ? `Requested sample logprobs of ${top}, which is greater than max allowed: ${MAX_LOGPROBS}`
    : undefined;
}

/** Token `i`'s candidates: the sampled one first, then `top` − 1 others, each a nat less likely. */
function candidates(ctx: SimContext, i: number, top: number): [token: string, logprob: number][] {
  const out: [string, number][] = [[ctx.tokenText(i), tokenLogprob(i)]];
  for (let j = 1; j < top; j++) out.push([ctx.tokenText(i + j), tokenLogprob(i) - j]);
  return out;
}

const bytes = (token: string): number[] => [...Buffer.from(token, 'utf8')];

/** Chat's `logprobs` of generated tokens [from, to). */
export function chatLogprobs(ctx: SimContext, ask: NonNullable<LogprobsAsk>, from: number, to: number) {
  const content = [];
  for (let i = from; i < to; i++) {
    const token = ctx.tokenText(i);
    content.push({
      token,
      logprob: tokenLogprob(i),
      bytes: bytes(token),
      top_logprobs:
        ask.top === 0
          ? []
          : candidates(ctx, i, ask.top).map(([t, logprob]) => ({ token: t, logprob, bytes: bytes(t) })),
    });
  }
  return { content };
}

/**
 * The completions API's `logprobs` of generated tokens [from, to), whose text starts `offset`
 * characters into the choice's text. Each token's top list holds the sampled token and its
 * alternatives, as vLLM's does.
 */
export function completionLogprobs(
  ctx: SimContext,
  ask: NonNullable<LogprobsAsk>,
  from: number,
  to: number,
  offset = 0,
) {
  const text_offset: number[] = [];
  const token_logprobs: number[] = [];
  const tokens: string[] = [];
  const top_logprobs: Record<string, number>[] = [];
  for (let i = from; i < to; i++) {
    const token = ctx.tokenText(i);
    text_offset.push(offset);
    offset += token.length;
    token_logprobs.push(tokenLogprob(i));
    tokens.push(token);
    top_logprobs.push(Object.fromEntries(candidates(ctx, i, Math.max(1, ask.top))));
  }
  return { text_offset, token_logprobs, tokens, top_logprobs };
}
