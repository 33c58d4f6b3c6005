import type { Clock } from './clock.js';

/**
 * Says yes at most once per `intervalMs` of clock time: for a notice that a condition holds
 * (a log line), which would otherwise repeat with every request that meets it.
 *
 *   interval 60 s; asked at 0, 10, 59.999, 60, 61 s → yes, no, no, yes, no
 */
export class OncePer {
  readonly #clock: Clock;
  readonly #intervalMs: number;
  #next = -Infinity;

  constructor(clock: Clock, intervalMs: number) {
    this.#clock = clock;
    this.#intervalMs = intervalMs;
  }

  /** True when the last yes is at least `intervalMs` ago (or there was none); a yes starts a new interval. */
  take(): boolean {
    const now = this.#clock.now();
    if (now < this.#next) return false;
    this.#next = now + this.#intervalMs;
    return true;
  }
}
