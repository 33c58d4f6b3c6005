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

/** What reads a body: its chunks in order, then its end or its failure (one of the two, once). */
export interface BodyReader {
  data(chunk: Buffer): void;
  end(): void;
  error(err: Error): void;
}

const NOTHING_TO_STEER: BodyControl = { pause() {}, resume() {}, abort() {} };

/** The reader of a body nobody needs: it is read to its end (the worker's socket stays reusable). */
const DISCARD: BodyReader = { data() {}, end() {}, error() {} };

/**
 * A body passed on chunk by chunk to its one reader: chunks while flowing, chunks held while
 * paused (the feeder paused once they reach HIGH_WATER_MARK, when they are merged into one
 * chunk that owns its memory), then the end or the failure once
 * the held chunks are read; the close callback follows on the next tick (also after destroy()).
 * Starts paused: the first chunks can come before the reader is set, and nothing flows until it
 * calls resume().
 *
 * Lighter than a Readable, which buffers, defers its 'end' by a tick and schedules a read per
 * chunk, and than an EventEmitter, whose listener lists and once-wrappers cost more than the
 * calls themselves: on the gateway's hottest path (a worker's answer to the client, through two
 * of these per request) those costs are most of what a stream layer adds, and a deferred 'end'
 * sends a stream's last chunk and its end in two writes (bench/results/datapath-profile.md).
 */
export class BodyStream {
  readonly #control: BodyControl;
  #reader: BodyReader | undefined;
  #onClose: ((failure: Error | undefined) => void) | undefined;
  readonly #held: Buffer[] = [];
  #heldBytes = 0;
  #paused = true;
  /** The feeder sent everything: the end follows the held chunks. */
  #complete = false;
  /** The feeder failed: this error follows the held chunks. */
  #failure: Error | undefined;
  /** The end or the failure went out, or it was destroyed: nothing more is delivered. */
  #over = false;

  constructor(control: BodyControl) {
    this.#control = control;
  }

  /** A body whose bytes are all at hand: nothing feeds it, so nothing is paused or aborted. */
  static whole(bytes: Buffer): BodyStream {
    const body = new BodyStream(NOTHING_TO_STEER);
    body.push(bytes);
    body.finish();
    return body;
  }

  /**
   * The feeder's next chunk. An empty one is dropped: undici hands one on when its parser
   * resumes, and a reader that waits after each chunk would wait on it, its resume bringing
   * another (the worker's socket, stopped at each pause, would never read again).
   */
  push(chunk: Buffer): void {
    if (this.#over || this.#complete || this.#failure || chunk.length === 0) return;
    if (this.#paused || this.#held.length > 0) {
      const before = this.#heldBytes;
      this.#held.push(chunk);
      this.#heldBytes += chunk.length;
      if (this.#heldBytes >= HIGH_WATER_MARK) {
        if (before < HIGH_WATER_MARK) this.#compact();
        // Asked for inside the feeder's callback (undici's), the pause stops it before its next chunk.
        this.#control.pause();
      }
    } else this.#reader!.data(chunk);
  }

  /**
   * The reader is behind by a high-water mark: the held chunks become one buffer of their own.
   * A chunk is a slice of the socket read it came in (64 KiB when the worker sends fast), and
   * held slices keep those whole reads alive: a stalled answer's ~80 held SSE events pinned
   * ~4 reads, ~256 KiB, per body. Copied, it is the 16 KiB held. Once per stall, never on the
   * flowing path.
   */
  #compact(): void {
    if (this.#held.length < 2 && this.#held[0]?.buffer.byteLength === this.#heldBytes) return;
    const one = Buffer.allocUnsafeSlow(this.#heldBytes);
    let at = 0;
    for (const c of this.#held) at += c.copy(one, at);
    this.#held.length = 0;
    this.#held.push(one);
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

  /** Sets the one reader; the chunks flow from its first resume(). */
  read(reader: BodyReader): this {
    if (this.#reader) throw new Error('BodyStream: a body has one reader');
    this.#reader = reader;
    return this;
  }

  /** Reads the rest and drops it (an answer thrown away, as before a retry). */
  discard(): void {
    this.read(DISCARD).resume();
  }

  /**
   * Called once on the tick after the body is over (ended, failed or destroyed), with the
   * feeder's failure if there was one. One callback: the service's, which frees the worker slot.
   */
  onClose(callback: (failure: Error | undefined) => void): void {
    this.#onClose = callback;
  }

  pause(): this {
    this.#paused = true;
    return this;
  }

  /**
   * Pauses, and asks the feeder to stop now rather than once a high-water mark is held: for a
   * reader that knows it will not read for a while (its client is behind, and every chunk held
   * for it is memory a stalled client costs), and for a body that feeds another, paused one
   * (which holds a high-water mark of its own already).
   */
  halt(): this {
    this.#paused = true;
    if (!this.#over && !this.#complete && !this.#failure) this.#control.pause();
    return this;
  }

  resume(): this {
    if (!this.#paused || this.#over) return this;
    const reader = this.#reader;
    if (!reader) throw new Error('BodyStream: resume() before read()');
    this.#paused = false;
    while (!this.#paused && !this.#over && this.#held.length > 0) {
      const chunk = this.#held.shift()!;
      this.#heldBytes -= chunk.length;
      reader.data(chunk);
    }
    if (this.#paused || this.#over) return this;
    if (this.#complete || this.#failure) this.#settle();
    else this.#control.resume();
    return this;
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
    this.read({
      data: (chunk) => {
        queue.push(chunk);
        this.pause();
        wake?.();
      },
      end: () => {
        ended = true;
        wake?.();
      },
      error: (err) => {
        failure = err;
        wake?.();
      },
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

  /** Delivers the end or the failure once nothing is held before it (the end only while flowing). */
  #settle(): void {
    if (this.#over || this.#held.length > 0) return;
    if (this.#failure) {
      this.#close();
      // Without a reader the failure only reaches the close callback: nobody reads the body.
      this.#reader?.error(this.#failure);
    } else if (this.#complete && !this.#paused) {
      this.#close();
      this.#reader!.end();
    }
  }

  #close(): void {
    this.#over = true;
    // The callback set by now is the one called (a later onClose() is not): a body nobody
    // watches, such as the worker's answer under the service's checked one, schedules no tick.
    const callback = this.#onClose;
    if (callback) process.nextTick(callback, this.#failure);
  }
}

/** A body read to its end, as one buffer (for answers read whole: errors, short JSON, text). */
export async function readAll(body: BodyStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c);
  return Buffer.concat(chunks);
}
