import type { Clock, TimerHandle } from '../core/clock.js';
import { GatewayError } from '../core/errors.js';

/**
 * nginx's send_timeout for answers (option client_send_timeout): a client that takes none of
 * its answer for `timeoutMs` is given up on, its connection or call cut and its worker's request
 * cancelled. Without it, a client that stops reading holds its worker slot until
 * request_timeout (the gateway stops reading the worker for it, so idle_timeout never fires),
 * and a few hundred such clients would hold a fleet's worker_capacity.
 *
 * Only the time the answer is blocked counts: from a write the client's side did not take in
 * full (write() false) to its 'drain'. A timer runs only then, so an answer whose client keeps
 * up costs nothing.
 */
export class SendTimeout {
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #counted: () => void;

  /** `timeoutMs` 0: no limit. `counted` is told of every answer cut (the metrics count them). */
  constructor(clock: Clock, timeoutMs: number, counted: () => void = () => {}) {
    this.#clock = clock;
    this.#timeoutMs = timeoutMs;
    this.#counted = counted;
  }

  /**
   * An answer is blocked: `cut` runs, with the error that says why, unless the handle is
   * cancelled (at its drain) first.
   */
  blocked(cut: (why: GatewayError) => void): TimerHandle | undefined {
    if (this.#timeoutMs <= 0) return undefined;
    return this.#clock.setTimer(this.#timeoutMs, () => {
      this.#counted();
      cut(
        new GatewayError('client_timeout', {
          message: `The client took none of the answer for ${this.#timeoutMs / 1000} s (client_send_timeout); the answer was cut.`,
        }),
      );
    });
  }
}
