/**
 * Deterministic stand-ins for a tokenizer and a model's output, for the engine simulator.
 * Nothing here is a real tokenizer: ~4 characters per token is the usual English rule of thumb.
 */

const WORDS = [
  'the', 'flock', 'serves', 'tokens', 'quickly', 'and', 'every', 'worker', 'answers', 'in',
  'turn', 'while', 'a', 'simulated', 'engine', 'batches', 'requests', 'together', 'on', 'time',
] as const; // prettier-ignore

/** ceil(chars / 4), at least 1: "Hello there" (11 chars) → 3 tokens. */
export function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

/** The text of generated token `index`; tokens after the first carry a leading space, as BPE tokens do. */
export function tokenText(index: number, seed = 0): string {
  const word = WORDS[(index * 7 + seed) % WORDS.length]!;
  return index === 0 ? word : ` ${word}`;
}

/** A stable token id for a generated token (in Llama-3's 128k vocabulary range). */
export function tokenId(index: number, seed = 0): number {
  return 1000 + ((index * 7 + seed) % WORDS.length);
}

/** A pretend log-probability in (-1, 0]. */
export function tokenLogprob(index: number): number {
  return -((index % 10) + 1) / 20;
}

export function generatedText(count: number, seed = 0): string {
  let s = '';
  for (let i = 0; i < count; i++) s += tokenText(i, seed);
  return s;
}

/** What a model stuck in a loop writes (simulator test knob --repetitive), one word per token. */
const LOOP_WORDS = 'All work and no play makes Jack a dull boy.'.split(' ');

/** Token `index` of the looping text: the same line over and over, each ending with a newline. */
export function loopTokenText(index: number): string {
  const i = index % LOOP_WORDS.length;
  const word = LOOP_WORDS[i]!;
  return (i === 0 ? '' : ' ') + word + (i === LOOP_WORDS.length - 1 ? '\n' : '');
}

export function loopText(count: number): string {
  let s = '';
  for (let i = 0; i < count; i++) s += loopTokenText(i);
  return s;
}

/** A unit-length vector of `dim` floats derived from the text (FNV-1a hash per component). */
export function fakeEmbedding(text: string, dim = 8): number[] {
  const v: number[] = [];
  for (let d = 0; d < dim; d++) {
    let h = 0x811c9dc5 ^ d;
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
    v.push(((h >>> 0) / 0xffffffff) * 2 - 1);
  }
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => Math.fround(x / norm));
}

/** OpenAI's `encoding_format: "base64"`: little-endian float32 bytes, base64. */
export function embeddingToBase64(v: readonly number[]): string {
  const buf = Buffer.alloc(v.length * 4);
  v.forEach((x, i) => buf.writeFloatLE(x, i * 4));
  return buf.toString('base64');
}
