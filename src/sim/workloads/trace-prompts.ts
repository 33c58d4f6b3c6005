/**
 * Prompt text for trace requests, which carry lengths (and, in the Mooncake format, block ids)
 * but no text. The balancers read text and the engines hash it (promptBlockHashes), so the text
 * must carry exactly the sharing the trace says: equal block ids give equal text, different ids
 * different text, and a request with no ids shares nothing. Deterministic: no random source.
 *
 * Sizes: 4 characters per token, as the simulator counts them (estimateTokens), so a 512-token
 * Mooncake block is 2,048 characters, a whole number (32) of the engine's 64-character hash
 * blocks: requests that share k Mooncake blocks share 32·k engine block hashes.
 */
import type { TraceRequest } from '../cluster/trace.js';

const CHARS_PER_TOKEN = 4;

/** Characters of one Mooncake block (512 tokens). */
export const MOONCAKE_BLOCK_CHARS = 512 * CHARS_PER_TOKEN;

const WORDS = [
  'cluster', 'latency', 'token', 'request', 'cache', 'prefix', 'worker', 'gateway', 'queue', 'batch',
  'model', 'prompt', 'reply', 'session', 'history', 'engine', 'memory', 'block', 'route', 'policy',
  'document', 'context', 'tool', 'result', 'search', 'answer', 'the', 'a', 'of', 'with', 'and', 'to',
] as const; // prettier-ignore

/** Characters of filler words a block's text is cut from (64 Ki offsets, each followed by a whole block). */
const POOL_OFFSETS = 1 << 16;
let pool: string | undefined;

/** The filler: words picked by a fixed hash sequence, built once (≈ 66 KB). */
function fillerPool(): string {
  if (pool !== undefined) return pool;
  const words: string[] = [];
  let h = 0x9e3779b9;
  for (let len = 0; len < POOL_OFFSETS + MOONCAKE_BLOCK_CHARS;) {
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
    const w = ' ' + WORDS[h % WORDS.length]!;
    words.push(w);
    len += w.length;
  }
  return (pool = words.join(''));
}

/**
 * The 2,048 characters of block `id`: a tag naming the id first (so two ids differ from their
 * first character on, even when a trailing partial block keeps only a few of them), then filler
 * cut from a place the id picks. A slice of one shared string, not text built per block: a
 * Mooncake prompt averages ≈ 30 blocks, and a trace of thousands of requests is synthesised as
 * it is replayed.
 */
export function blockText(id: number): string {
  const tag = `<block ${id}>`;
  const at = (Math.imul(id ^ 0x5bd1e995, 0x85ebca6b) >>> 0) % POOL_OFFSETS;
  return tag + fillerPool().slice(at, at + MOONCAKE_BLOCK_CHARS - tag.length);
}

/**
 * A Mooncake request's prompt: its blocks' text in order, cut to `tokens` tokens (the last block
 * is usually partial: the input length's remainder). If the ids cover fewer tokens than the
 * input length, the rest is text unique to `line`, as a prompt's unshared tail would be.
 * E.g. ids [7, 8], 700 tokens: block 7's 2,048 characters, then block 8's first 752.
 */
export function mooncakePrompt(hashIds: readonly number[], tokens: number, line: number): string {
  const chars = tokens * CHARS_PER_TOKEN;
  const parts: string[] = [];
  let have = 0;
  for (const id of hashIds) {
    if (have >= chars) break;
    const b = blockText(id);
    parts.push(have + b.length > chars ? b.slice(0, chars - have) : b);
    have += b.length;
  }
  if (have < chars) parts.push(uniquePrompt(line, (chars - have) / CHARS_PER_TOKEN).slice(0, chars - have));
  return parts.join('');
}

/** `tokens` tokens (4 characters each) of text no other line's prompt shares a block with. */
export function uniquePrompt(line: number, tokens: number): string {
  return `[trace line ${line}] `.padEnd(tokens * CHARS_PER_TOKEN, ' lorem ipsum');
}

/** The prompt a trace request is sent with: its Mooncake blocks when it has them, else unique text. */
export function tracePrompt(req: TraceRequest): string {
  return req.hashIds
    ? mooncakePrompt(req.hashIds, req.promptTokens, req.line)
    : uniquePrompt(req.line, req.promptTokens);
}
