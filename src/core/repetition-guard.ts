/** Lines this long or shorter never count: "", "}", "Yes." repeat in healthy text. */
export const MIN_GUARDED_LINE = 10;

/** A line still without its newline past this many characters is counted as it is (bounds memory). */
const MAX_PARTIAL_LINE = 64 * 1024;

/**
 * FlockServe's stream repetition guard: a model stuck in a loop emits the same line again and
 * again until max_tokens. Fed the generated text piece by piece, it trips once one line longer
 * than 10 characters (trimmed) has been seen more than `limit` times.
 *
 *   limit 2: "All work and no play\n" × 3 → trips on the third; "ok\n" × 100 → never (too short).
 *
 * (The original counted lines of raw stream chunks; here the lines are those of the generated
 * text, so identical token events — the same word twice — do not count as a repeated line.)
 */
export class RepetitionGuard {
  readonly #limit: number;
  readonly #counts = new Map<string, number>();
  #partial = '';
  #tripped = false;

  constructor(limit: number) {
    if (!(limit >= 1)) throw new Error(`repetition guard: limit must be ≥ 1, got ${limit}`);
    this.#limit = limit;
  }

  get tripped(): boolean {
    return this.#tripped;
  }

  /** Adds generated text; true once the guard has tripped. */
  feed(text: string): boolean {
    if (this.#tripped) return true;
    this.#partial += text;
    for (let nl = this.#partial.indexOf('\n'); nl >= 0; nl = this.#partial.indexOf('\n')) {
      const line = this.#partial.slice(0, nl);
      this.#partial = this.#partial.slice(nl + 1);
      if (this.#count(line)) return true;
    }
    if (this.#partial.length > MAX_PARTIAL_LINE) {
      const line = this.#partial;
      this.#partial = '';
      return this.#count(line);
    }
    return false;
  }

  #count(raw: string): boolean {
    const line = raw.trim();
    if (line.length <= MIN_GUARDED_LINE) return false;
    const n = (this.#counts.get(line) ?? 0) + 1;
    this.#counts.set(line, n);
    if (n > this.#limit) this.#tripped = true;
    return this.#tripped;
  }
}
