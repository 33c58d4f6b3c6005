import type { Clock, TimerHandle } from '../core/clock.js';
import { LinkedList, type Linked } from '../core/linked-list.js';

/** A request being watched (its body is arriving); `stop` it once the body is in. */
export interface Watch<B> extends Linked<Watch<B>> {
  readonly body: B;
  /** The connection's bytesRead at the last sweep that saw it change. */
  bytes: number;
  /** Sweeps in a row that saw no byte arrive; starts at -1, see BodyTimeouts. */
  quiet: number;
}

export interface BodyTimeoutsOptions<B> {
  readonly clock: Clock;
  /** Longest silence of a body, ms; 0 turns the timeouts off (watch() does nothing). */
  readonly timeoutMs: number;
  /** Bytes read from the body's connection so far (net.Socket.bytesRead). */
  bytesRead(body: B): number;
  /** True once the whole body is in (IncomingMessage.complete). */
  complete(body: B): boolean;
  /** The body went silent for the timeout: answer 408 and close the connection. */
  onTimeout(body: B): void;
}

/** Sweeps per timeout: a silent body is cut between 1 and 1 + 1/SWEEPS times the timeout after its last byte. */
const SWEEPS = 4;

/**
 * Cuts request bodies that go silent, as nginx's client_body_timeout: a body with no byte
 * arriving for `timeoutMs` is handed to `onTimeout` (which answers 408 and closes the
 * connection). The time between two reads counts, not the whole body's: a slow upload that
 * keeps coming is left alone (client_request_timeout bounds the whole request).
 *
 * No timer and no clock reading per request or per chunk: the bodies being read sit in one
 * list, and one timer sweeps it every timeoutMs / 4. A body is silent through a sweep when its
 * connection's bytesRead has not moved since the sweep before. The first sweep after the last
 * byte sees it move; 4 silent sweeps in a row then mean at least 4 intervals (the timeout) and
 * at most 5 (1.25 x) without a byte. E.g. 60 s: sweeps every 15 s, cut 60 to 75 s after the
 * last byte. A new watch starts at -1 silent sweeps: the sweep right after it cannot tell
 * whether a byte came since the watch began.
 */
export class BodyTimeouts<B> {
  readonly #options: BodyTimeoutsOptions<B>;
  readonly #watched = new LinkedList<Watch<B>>();
  #timer: TimerHandle | undefined;

  constructor(options: BodyTimeoutsOptions<B>) {
    this.#options = options;
  }

  /** Bodies being watched. */
  get size(): number {
    return this.#watched.size;
  }

  /** Watches `body` until stop(); undefined when the timeout is off. */
  watch(body: B): Watch<B> | undefined {
    if (this.#options.timeoutMs <= 0) return undefined;
    const w: Watch<B> = { body, bytes: this.#options.bytesRead(body), quiet: -1, prev: undefined, next: undefined };
    this.#watched.add(w);
    this.#timer ??= this.#arm();
    return w;
  }

  /** The body is in, or its request is over: no longer watched (a no-op after the first call). */
  stop(w: Watch<B> | undefined): void {
    if (w) this.#watched.delete(w);
  }

  /** Stops sweeping; watch() starts again. */
  close(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  #sweep(): void {
    this.#timer = undefined;
    const expired: Watch<B>[] = [];
    for (const w of this.#watched) {
      if (this.#options.complete(w.body)) {
        this.#watched.delete(w);
        continue;
      }
      const bytes = this.#options.bytesRead(w.body);
      if (bytes !== w.bytes) {
        w.bytes = bytes;
        w.quiet = 0;
      } else if (++w.quiet >= SWEEPS) expired.push(w);
    }
    for (const w of expired) {
      this.#watched.delete(w);
      this.#options.onTimeout(w.body);
    }
    if (this.#watched.size > 0) this.#timer = this.#arm();
  }

  #arm(): TimerHandle {
    return this.#options.clock.setTimer(this.#options.timeoutMs / SWEEPS, () => this.#sweep());
  }
}
