/**
 * Counts the tokens of a worker's answer from the bytes passing through, without
 * parsing the JSON: plain substring searches find the few fields that matter.
 *
 * - When the answer reports its own count it wins: OpenAI `usage.completion_tokens` /
 *   `usage.prompt_tokens` (vLLM, TGI's OpenAI routes, SGLang), the Responses API's
 *   `usage.output_tokens` / `usage.input_tokens`, TGI `details.generated_tokens`,
 *   and TGI /generate's `x-generated-tokens` / `x-prompt-tokens` response headers.
 * - Otherwise a stream counts its `data:` events, leaving out `[DONE]`, the usage-only
 *   event (`"choices":[]`) and events with empty content (vLLM's first chunk carries
 *   only the role, its last often only finish_reason). E.g. a vLLM chat stream of
 *   max_tokens=5 without include_usage: role chunk, 5 token chunks, `[DONE]` → 5.
 *   An engine that coalesces several tokens into one event is under-counted; ask for
 *   `stream_options.include_usage` to get exact numbers.
 * - A non-streamed answer without usage or those headers has no count.
 */

const DATA = 'data:';
const DONE = '[DONE]';
const EMPTY_CONTENT = '"content":""';
const NO_CHOICES = '"choices":[]';
// Every count field ends so: one search finds them all, the name before it says which.
const TOKENS = '_tokens":';
const COMPLETION = '"completion';
const GENERATED = '"generated';
const OUTPUT = '"output';
const PROMPT = '"prompt';
const INPUT = '"input';

export interface TokenCounts {
  /** Tokens generated, when known. */
  readonly completion: number | undefined;
  /** Prompt tokens, when the answer reports them. */
  readonly prompt: number | undefined;
}

export class TokenTally {
  readonly #stream: boolean;
  #carry = '';
  #events = 0;
  #reportedCompletion: number | undefined;
  #reportedPrompt: number | undefined;

  /** `stream`: the answer is SSE (fed chunk by chunk); else a JSON body fed whole. */
  constructor(stream: boolean) {
    this.#stream = stream;
  }

  add(chunk: Buffer): void {
    // latin1 maps each byte to one char: cheap, and exact for the ASCII markers searched for
    // (JS string searches cost far less than a native Buffer.indexOf call per marker).
    const text = chunk.toString('latin1');
    if (!this.#stream) {
      this.#readUsage(text);
      return;
    }
    // Only complete lines are read; a line split across chunks waits for its end.
    const buf = this.#carry === '' ? text : this.#carry + text;
    let start = 0;
    for (let nl = buf.indexOf('\n', start); nl >= 0; nl = buf.indexOf('\n', start)) {
      if (buf.startsWith(DATA, start)) this.#event(buf.slice(start + DATA.length, nl));
      start = nl + 1;
    }
    this.#carry = start < buf.length ? buf.slice(start) : '';
  }

  /** Counts the worker reported in its response headers (TGI /generate); a count in the body still wins. */
  reported(headers: Readonly<Record<string, string | undefined>>): void {
    const completion = intAt(headers['x-generated-tokens'] ?? '', 0);
    const prompt = intAt(headers['x-prompt-tokens'] ?? '', 0);
    if (completion !== undefined) this.#reportedCompletion = completion;
    if (prompt !== undefined) this.#reportedPrompt = prompt;
  }

  get counts(): TokenCounts {
    return {
      completion: this.#reportedCompletion ?? (this.#stream ? this.#events : undefined),
      prompt: this.#reportedPrompt,
    };
  }

  #event(payload: string): void {
    if (payload.length <= DONE.length + 2 && payload.includes(DONE)) return;
    this.#readUsage(payload);
    if (payload.includes('[]') && payload.includes(NO_CHOICES)) return;
    if (payload.includes('""') && payload.includes(EMPTY_CONTENT)) return;
    this.#events++;
  }

  /**
   * Reads reported counts; the last report in a stream wins. Each kind is summed over its
   * fields: a TGI /generate list has one `generated_tokens` per input.
   */
  #readUsage(text: string): void {
    let completion: number | undefined;
    let prompt: number | undefined;
    for (let at = text.indexOf(TOKENS); at >= 0; at = text.indexOf(TOKENS, at + TOKENS.length)) {
      const isPrompt = text.startsWith(PROMPT, at - PROMPT.length) || text.startsWith(INPUT, at - INPUT.length);
      const isCompletion =
        text.startsWith(COMPLETION, at - COMPLETION.length) ||
        text.startsWith(GENERATED, at - GENERATED.length) ||
        text.startsWith(OUTPUT, at - OUTPUT.length);
      if (!isPrompt && !isCompletion) continue;
      const n = intAt(text, at + TOKENS.length);
      if (n === undefined) continue;
      if (isPrompt) prompt = (prompt ?? 0) + n;
      else completion = (completion ?? 0) + n;
    }
    if (completion !== undefined) this.#reportedCompletion = completion;
    if (prompt !== undefined) this.#reportedPrompt = prompt;
  }
}

function intAt(text: string, from: number): number | undefined {
  let i = from;
  while (text.charCodeAt(i) === 0x20) i++;
  let n = 0;
  const first = i;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) break;
    n = n * 10 + (c - 0x30);
  }
  return i > first ? n : undefined;
}
