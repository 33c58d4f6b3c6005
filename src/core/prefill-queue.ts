import type { Clock } from './clock.js';
import { LinkedList, type Linked } from './linked-list.js';

/** One request's prompt bytes on a worker's prefill queue, from its lease to its first byte. */
export interface PrefillTicket extends Linked<PrefillTicket> {
  readonly bytes: number;
  /** When the request was sent (clock ms). */
  readonly at: number;
}

/**
 * Each timed prefill's weight in the pace is this factor times the one after it: a worker's
 * pace belongs to its hardware and model, so it remembers about a hundred first tokens, enough
 * to smooth over the prompts an engine prefills together in one step.
 */
const PACE_MEMORY = 0.99;

/**
 * The prompt bytes this gateway sent a worker that it has yet to prefill, oldest first, and how
 * far the worker has got with the oldest.
 *
 * An engine prefills the prompts it admits in arrival order before it answers any of them
 * (vLLM's scheduler; in chunks of its per-step token budget), so the work a new request waits
 * behind is what is queued here. Counted whole until each first byte comes back, that work is
 * overstated by the part of the oldest prompt already done: on prompts of tens of thousands of
 * tokens, up to twice the true queue on average. So the queue also learns the worker's pace,
 * bytes prefilled per ms, from streamed answers whose first token ends the oldest prefill
 * (its bytes over the time since it became the oldest, summed with earlier ones at a fading
 * weight), and takes off the oldest prompt what that pace has done since it became the oldest,
 * never more than the prompt. Until a first token has been timed the pace is 0 and nothing is
 * taken off.
 *
 * Pure: time only through the injected clock.
 */
export class PrefillQueue {
  readonly #clock: Pick<Clock, 'now'>;
  readonly #tickets = new LinkedList<PrefillTicket>();
  #bytes = 0;
  /** When the oldest ticket's prefill began, at the latest: when the one before it ended. */
  #headSince = 0;
  #timedBytes = 0;
  #timedMs = 0;

  constructor(clock: Pick<Clock, 'now'>) {
    this.#clock = clock;
  }

  /** Every queued prompt's bytes, whole. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Bytes the worker prefills per ms, as measured so far; 0 until a first token was timed. */
  get pace(): number {
    return this.#timedMs > 0 ? this.#timedBytes / this.#timedMs : 0;
  }

  /** The bytes still to prefill now: every queued prompt less what the pace has done of the oldest. */
  left(): number {
    const head = this.#tickets.first;
    if (!head) return 0;
    const pace = this.pace;
    if (pace === 0) return this.#bytes;
    const elapsed = this.#clock.now() - this.#began(head);
    return this.#bytes - Math.min(head.bytes, pace * Math.max(0, elapsed));
  }

  /** A request of `bytes` to prefill was sent. */
  add(bytes: number): PrefillTicket {
    const ticket: PrefillTicket = { bytes, at: this.#clock.now(), prev: undefined, next: undefined };
    this.#tickets.add(ticket);
    this.#bytes += bytes;
    return ticket;
  }

  /**
   * `ticket`'s prefill ended: its first byte came back, or the request ended without one.
   * `timed`: a streamed first token, whose time says how long the prefill took; a whole answer's
   * first byte comes with its last, and a failure says nothing about the pace. Once per ticket;
   * a second call does nothing.
   */
  done(ticket: PrefillTicket, timed: boolean): void {
    const wasHead = this.#tickets.first === ticket;
    if (!this.#tickets.delete(ticket)) return;
    this.#bytes -= ticket.bytes;
    if (!wasHead) return;
    const now = this.#clock.now();
    if (timed) {
      this.#timedBytes = this.#timedBytes * PACE_MEMORY + ticket.bytes;
      this.#timedMs = this.#timedMs * PACE_MEMORY + Math.max(0, now - this.#began(ticket));
    }
    this.#headSince = now;
  }

  /** When the oldest ticket's prefill began: when it was sent, or when the one before it ended. */
  #began(head: PrefillTicket): number {
    return Math.max(this.#headSince, head.at);
  }
}
