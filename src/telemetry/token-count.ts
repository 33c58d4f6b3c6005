/**
 * Counts the tokens of a worker's answer from the bytes passing through, without
 * parsing the JSON: plain substring searches find the few fields that matter.
 *
 * - When the answer reports its own count it wins: OpenAI `usage.completion_tokens` /
 *   `usage.prompt_tokens` (vLLM, TGI's OpenAI routes, SGLang), TGI `details.generated_tokens`.
 * - Otherwise a stream counts its `data:` events, leaving out `[DONE]`, the usage-only
 *   event (`"choices":[]`) and events with empty content (vLLM's first chunk carries
 *   only the role, its last often only finish_reason). E.g. a vLLM chat stream of
 *   max_tokens=5 without include_usage: role chunk, 5 token chunks, `[DONE]` → 5.
 *   An engine that coalesces several tokens into one event is under-counted; ask for
 *   `stream_options.include_usage` to get exact numbers.
 * - A non-streamed answer without usage (TGI /generate without details) has no count.
 */

const DATA = 'data:';
const DONE = '[DONE]';
const EMPTY_CONTENT = '"content":""';
const NO_CHOICES = '"choices":[]';
const COMPLETION = ['"completion_tokens":', '"generated_tokens":'];
const PROMPT = ['"prompt_tokens":'];

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

  get counts(): TokenCounts {
    return {
      completion: this.#reportedCompletion ?? (this.#stream ? this.#events : undefined),
      prompt: this.#reportedPrompt,
    };
  }

  #event(payload: string): void {
    if (payload.length <= DONE.length + 2 && payload.includes(DONE)) return;
    // One scan for all three count markers; a plain token chunk has none of them.
    if (payload.includes('_tokens"')) this.#readUsage(payload);
    if (payload.includes('[]') && payload.includes(NO_CHOICES)) return;
    if (payload.includes('""') && payload.includes(EMPTY_CONTENT)) return;
    this.#events++;
  }

  /** Reads reported counts; the last report in a stream wins. */
  #readUsage(text: string): void {
    const completion = sumAfter(text, COMPLETION);
    const prompt = sumAfter(text, PROMPT);
    if (completion !== undefined) this.#reportedCompletion = completion;
    if (prompt !== undefined) this.#reportedPrompt = prompt;
  }
}

/**
 * The sum of the integers following each marker (a TGI /generate list has one
 * `generated_tokens` per input), or undefined if no marker occurs.
 */
function sumAfter(text: string, markers: readonly string[]): number | undefined {
  let total: number | undefined;
  for (const marker of markers) {
    for (let at = text.indexOf(marker); at >= 0; at = text.indexOf(marker, at + marker.length)) {
      const n = intAt(text, at + marker.length);
      if (n !== undefined) total = (total ?? 0) + n;
    }
  }
  return total;
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
