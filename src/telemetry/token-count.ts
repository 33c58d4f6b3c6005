/**
 * Counts the tokens of a worker's answer from the bytes passing through, without
 * parsing the JSON: a native `Buffer.indexOf` finds the few fields that matter.
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

const NEWLINE = 0x0a;
const DATA = Buffer.from('data:');
const DONE = Buffer.from('[DONE]');
const EMPTY_CONTENT = Buffer.from('"content":""');
const NO_CHOICES = Buffer.from('"choices":[]');
const COMPLETION = [Buffer.from('"completion_tokens":'), Buffer.from('"generated_tokens":')];
const PROMPT = [Buffer.from('"prompt_tokens":')];

export interface TokenCounts {
  /** Tokens generated, when known. */
  readonly completion: number | undefined;
  /** Prompt tokens, when the answer reports them. */
  readonly prompt: number | undefined;
}

export class TokenTally {
  readonly #stream: boolean;
  #carry: Buffer | undefined;
  #events = 0;
  #reportedCompletion: number | undefined;
  #reportedPrompt: number | undefined;

  /** `stream`: the answer is SSE (fed chunk by chunk); else a JSON body fed whole. */
  constructor(stream: boolean) {
    this.#stream = stream;
  }

  add(chunk: Buffer): void {
    if (!this.#stream) {
      this.#readUsage(chunk);
      return;
    }
    // Only complete lines are read; a line split across chunks waits for its end.
    const buf = this.#carry ? Buffer.concat([this.#carry, chunk]) : chunk;
    let start = 0;
    for (let nl = buf.indexOf(NEWLINE, start); nl >= 0; nl = buf.indexOf(NEWLINE, start)) {
      this.#line(buf.subarray(start, nl));
      start = nl + 1;
    }
    this.#carry = start < buf.length ? Buffer.from(buf.subarray(start)) : undefined;
  }

  get counts(): TokenCounts {
    return {
      completion: this.#reportedCompletion ?? (this.#stream ? this.#events : undefined),
      prompt: this.#reportedPrompt,
    };
  }

  #line(line: Buffer): void {
    if (line.length < DATA.length || line.compare(DATA, 0, DATA.length, 0, DATA.length) !== 0) return;
    const payload = line.subarray(DATA.length);
    if (payload.indexOf(DONE) >= 0 && payload.length <= DONE.length + 2) return;
    this.#readUsage(payload);
    if (payload.indexOf(NO_CHOICES) >= 0 || payload.indexOf(EMPTY_CONTENT) >= 0) return;
    this.#events++;
  }

  /** Reads reported counts; the last report in a stream wins. */
  #readUsage(bytes: Buffer): void {
    const completion = sumAfter(bytes, COMPLETION);
    const prompt = sumAfter(bytes, PROMPT);
    if (completion !== undefined) this.#reportedCompletion = completion;
    if (prompt !== undefined) this.#reportedPrompt = prompt;
  }
}

/**
 * The sum of the integers following each marker (a TGI /generate list has one
 * `generated_tokens` per input), or undefined if no marker occurs.
 */
function sumAfter(bytes: Buffer, markers: readonly Buffer[]): number | undefined {
  let total: number | undefined;
  for (const marker of markers) {
    for (let at = bytes.indexOf(marker); at >= 0; at = bytes.indexOf(marker, at + marker.length)) {
      const n = intAt(bytes, at + marker.length);
      if (n !== undefined) total = (total ?? 0) + n;
    }
  }
  return total;
}

function intAt(bytes: Buffer, from: number): number | undefined {
  let i = from;
  while (i < bytes.length && bytes[i] === 0x20) i++;
  let n = 0;
  const first = i;
  for (; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b < 0x30 || b > 0x39) break;
    n = n * 10 + (b - 0x30);
  }
  return i > first ? n : undefined;
}
