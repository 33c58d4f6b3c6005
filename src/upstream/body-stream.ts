import { EventEmitter } from 'node:events';

/** How a BodyStream steers the side that feeds it. */
export interface BodyControl {
  /** Stop sending chunks (the reader is not reading). */
  pause(): void;
  /** Go on sending. */
  resume(): void;
  /** The reader dropped the body before its end: stop for good (e.g. abort the request). */
  abort(): void;
}

/**
 * Bytes held for a paused reader before the feeder is asked to pause, as a Readable's
 * highWaterMark. A reader about to read (the service resumes an answer a few microtasks after
 * its headers) then costs the feeder no pause and resume: undici's pause stops its parser,
 * and its resume restarts the parser and the client's dispatch loop, for every answer that
 * came with its headers.
 */
export const HIGH_WATER_MARK = 16 * 1024;

/**
 * A body passed on chunk by chunk: 'data' for each chunk while flowing, chunks held while
 * paused (the feeder paused once they reach HIGH_WATER_MARK), then 'end' or 'error' once the
 * held chunks are read, then 'close' on the next tick (also after destroy()). Starts paused:
 * the first chunks can come before anyone listens, and nothing flows until the reader calls
 * resume().
 *
 * Lighter than a Readable, which buffers, defers its 'end' by a tick and schedules a read per
 * chunk: on the gateway's hottest path (a worker's SSE chunk to the client) those costs were
 * most of what a stream layer added, and the deferred 'end' sent a stream's last chunk and its
 * end in two writes (bench/results/datapath-profile.md).
 */
export class BodyStream extends EventEmitter {
  readonly #control: BodyControl;
  readonly #held: Buffer[] = [];
  #heldBytes = 0;
  #paused = true;
  /** The feeder sent everything: 'end' follows the held chunks. */
  #complete = false;
  /** The feeder failed: this error follows the held chunks. */
  #failure: Error | undefined;
  /** 'end' or 'error' went out, or it was destroyed: nothing more is emitted but 'close'. */
  #over = false;

  constructor(control: BodyControl) {
    super();
    this.#control = control;
  }

  /** The feeder's next chunk. */
  push(chunk: Buffer): void {
    if (this.#over || this.#complete || this.#failure) return;
    if (this.#paused || this.#held.length > 0) {
      this.#held.push(chunk);
      this.#heldBytes += chunk.length;
      // Asked for inside the feeder's callback (undici's), the pause stops it before its next chunk.
      if (this.#heldBytes >= HIGH_WATER_MARK) this.#control.pause();
    } else this.emit('data', chunk);
  }

  /** The feeder sent everything. */
  finish(): void {
    if (this.#over || this.#complete || this.#failure) return;
    this.#complete = true;
    this.#settle();
  }

  /** The feeder failed: the reader gets the chunks pushed before, then `err`. */
  fail(err: Error): void {
    if (this.#over || this.#complete || this.#failure) return;
    this.#failure = err;
    this.#settle();
  }

  pause(): this {
    this.#paused = true;
    return this;
  }

  resume(): this {
    if (!this.#paused || this.#over) return this;
    this.#paused = false;
    while (!this.#paused && !this.#over && this.#held.length > 0) {
      const chunk = this.#held.shift()!;
      this.#heldBytes -= chunk.length;
      this.emit('data', chunk);
    }
    if (this.#paused || this.#over) return this;
    if (this.#complete || this.#failure) this.#settle();
    else this.#control.resume();
    return this;
  }

  isPaused(): boolean {
    return this.#paused;
  }

  /** The reader is done with it: before the end this aborts the feeder. */
  destroy(): this {
    if (this.#over) return this;
    const unfinished = !this.#complete && !this.#failure;
    this.#held.length = 0;
    this.#heldBytes = 0;
    this.#close();
    if (unfinished) this.#control.abort();
    return this;
  }

  /** Reads chunk by chunk (one held at a time); breaking out of the loop destroys it. */
  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    const queue: Buffer[] = [];
    let ended = false;
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    this.on('data', (chunk: Buffer) => {
      queue.push(chunk);
      this.pause();
      wake?.();
    });
    this.once('end', () => {
      ended = true;
      wake?.();
    });
    this.once('error', (err: Error) => {
      failure = err;
      wake?.();
    });
    return {
      next: async () => {
        for (;;) {
          const chunk = queue.shift();
          if (chunk) return { value: chunk, done: false };
          if (failure) throw failure;
          if (ended) return { value: undefined, done: true };
          const woken = new Promise<void>((resolve) => (wake = resolve));
          this.resume();
          await woken;
          wake = undefined;
        }
      },
      return: () => {
        this.destroy();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  /** Emits the terminal event once nothing is held before it ('end' only while flowing). */
  #settle(): void {
    if (this.#over || this.#held.length > 0) return;
    if (this.#failure) {
      this.#close();
      // Nobody listening: the failure was the feeder's, and nobody reads the body.
      if (this.listenerCount('error') > 0) this.emit('error', this.#failure);
    } else if (this.#complete && !this.#paused) {
      this.#close();
      this.emit('end');
    }
  }

  #close(): void {
    this.#over = true;
    process.nextTick(() => this.emit('close'));
  }
}
