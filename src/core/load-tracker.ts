import type { Clock } from './clock.js';

/**
 * The queue length (requests in flight + waiting at the gateway) and its time-weighted
 * running mean over the last `windowMs`, which the autoscaler reads.
 *
 * Every value weighs as long as it held. E.g. window 60 s, the value was 0 for 10 s,
 * then 6 for 20 s, then 3 for 30 s: mean = (0·10 + 6·20 + 3·30) / 60 = 3.5.
 *
 * Before the first `set`, the value is 0 from construction on. While less than one
 * window has passed since construction, the mean divides by the time elapsed, not by
 * the whole window: 10 s after start with a queue of 40 the whole time, the mean is 40,
 * not 40·10/600 ≈ 0.7. Counting the unseen part of the window as 0 would hide the first
 * burst after start (or after scale-to-zero's restart) for minutes.
 *
 * Segments live in a ring buffer (a deque); `set` and `mean` cost O(1) amortised. A `set`
 * of the same value adds nothing. Memory is bounded whatever the request rate: a segment
 * shorter than the resolution (window / RESOLUTION_STEPS) absorbs the next one as their
 * time-weighted average, so at most RESOLUTION_STEPS + 2 segments are kept. (A busy gateway
 * changes its queue length twice per request: at 5,000 requests/s a 600 s window would
 * otherwise hold 6 million segments, about 100 MB, and copy them whenever the buffer grows.)
 * The area under the curve stays exact; only where the window's start cuts a merged segment
 * is its value taken as even over its span, an error of at most max value / RESOLUTION_STEPS.
 * Changes at least one resolution apart are never merged, so their mean is exact.
 */
export class LoadTracker {
  /** Segments per window at most (the resolution is window / this). */
  static readonly RESOLUTION_STEPS = 4096;

  readonly #clock: Clock;
  readonly #windowMs: number;
  readonly #resolutionMs: number;
  readonly #startedAt: number;

  // Closed segments: segment i holds value #values[i] from #starts[i] until the next
  // segment's start (or #openStart for the newest). A ring buffer of two typed arrays.
  #starts = new Float64Array(16);
  #values = new Float64Array(16);
  #head = 0;
  #size = 0;
  /** Σ value·duration over the closed segments in the buffer. */
  #closedArea = 0;

  #openStart: number;
  #openValue = 0;
  /** Trackers over other windows that see every change of this one (withWindow). */
  readonly #followers: LoadTracker[] = [];

  constructor(clock: Clock, windowMs: number) {
    if (!(windowMs > 0)) throw new RangeError(`window must be > 0 ms, got ${windowMs}`);
    this.#clock = clock;
    this.#windowMs = windowMs;
    this.#resolutionMs = windowMs / LoadTracker.RESOLUTION_STEPS;
    this.#startedAt = clock.now();
    this.#openStart = this.#startedAt;
  }

  get windowMs(): number {
    return this.#windowMs;
  }

  /** Reports the queue length as of `now` (the clock's time; the caller's reading, if it has one). */
  set(value: number, now = this.#clock.now()): void {
    if (!(value >= 0) || !Number.isFinite(value)) throw new RangeError(`queue length must be >= 0, got ${value}`);
    if (value === this.#openValue) return;
    for (const f of this.#followers) f.set(value, now);
    if (now > this.#openStart) {
      this.#close(this.#openStart, this.#openValue, now);
      this.#closedArea += this.#openValue * (now - this.#openStart);
      this.#openStart = now;
    }
    // At the same instant the previous value held for no time: just replace it.
    this.#openValue = value;
    this.#evict(now);
  }

  /**
   * A tracker over another window that is fed every change of this one, e.g. the 6 s panic
   * window of the target-tracking policy beside the 600 s stable window. O(1) more per change.
   */
  withWindow(windowMs: number): LoadTracker {
    const t = new LoadTracker(this.#clock, windowMs);
    t.set(this.#openValue);
    this.#followers.push(t);
    return t;
  }

  current(): number {
    return this.#openValue;
  }

  /** Time-weighted mean over the last window (or since construction, if shorter). */
  mean(): number {
    const now = this.#clock.now();
    this.#evict(now);
    const windowStart = Math.max(this.#startedAt, now - this.#windowMs);
    const span = now - windowStart;
    if (span <= 0) return this.#openValue;
    let area = this.#closedArea;
    if (this.#size > 0) {
      // The oldest segment may start before the window: drop the part outside it.
      const start = this.#starts[this.#head]!;
      if (start < windowStart) area -= this.#values[this.#head]! * (windowStart - start);
    }
    area += this.#openValue * (now - Math.max(this.#openStart, windowStart));
    // Float sums of many add/subtract pairs may drift a hair below 0.
    return Math.max(0, area / span);
  }

  /** Closed segments kept (for tests and memory checks). */
  get segmentCount(): number {
    return this.#size;
  }

  /** Drops segments that ended at or before the window's start. */
  #evict(now: number): void {
    const windowStart = now - this.#windowMs;
    const cap = this.#starts.length;
    while (this.#size > 0) {
      const i = this.#head;
      const end = this.#size > 1 ? this.#starts[(i + 1) % cap]! : this.#openStart;
      if (end > windowStart) break;
      this.#closedArea -= this.#values[i]! * (end - this.#starts[i]!);
      this.#head = (i + 1) % cap;
      this.#size--;
    }
    if (this.#size === 0) this.#closedArea = 0;
  }

  /** Closes the segment [start, end): merged into the newest one while that is shorter than the resolution. */
  #close(start: number, value: number, end: number): void {
    if (this.#size > 0) {
      const tail = (this.#head + this.#size - 1) % this.#starts.length;
      const tailStart = this.#starts[tail]!;
      if (start - tailStart < this.#resolutionMs) {
        // The newest segment ends where this one starts: one segment, the same area.
        this.#values[tail] = (this.#values[tail]! * (start - tailStart) + value * (end - start)) / (end - tailStart);
        return;
      }
    }
    this.#push(start, value);
  }

  #push(start: number, value: number): void {
    if (this.#size === this.#starts.length) this.#grow();
    const i = (this.#head + this.#size) % this.#starts.length;
    this.#starts[i] = start;
    this.#values[i] = value;
    this.#size++;
  }

  #grow(): void {
    const cap = this.#starts.length;
    const starts = new Float64Array(cap * 2);
    const values = new Float64Array(cap * 2);
    for (let k = 0; k < this.#size; k++) {
      starts[k] = this.#starts[(this.#head + k) % cap]!;
      values[k] = this.#values[(this.#head + k) % cap]!;
    }
    this.#starts = starts;
    this.#values = values;
    this.#head = 0;
  }
}
