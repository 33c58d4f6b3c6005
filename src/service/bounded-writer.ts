/** The part of a grpc-js ServerWritableStream that BoundedWriter uses. */
export interface WritableCall<T> {
  /** false once the stream's own buffer is full (it still took the message). */
  write(message: T): boolean;
  on(event: 'drain', listener: () => void): unknown;
}

/**
 * Writes messages to a server stream, holding at most `limit` unsent ones for it.
 *
 * grpc-js's write() returns false once its buffer is full (the client reads slower than
 * we write, and HTTP/2 flow control has stopped us); from then on messages wait here
 * until 'drain'. A reader that falls `limit` messages behind is given up on: the queue is
 * dropped and `onOverflow` ends its stream with an explicit error, so one stuck watcher
 * never grows the gateway's memory. E.g. limit 1024 and ~200-byte events: at most ~200 KB
 * per watcher on top of grpc-js's own buffer (16 messages) and the HTTP/2 window (64 KB).
 */
export class BoundedWriter<T> {
  readonly #call: WritableCall<T>;
  readonly #limit: number;
  readonly #onOverflow: (limit: number) => void;
  #queue: T[] = [];
  #blocked = false;
  #overflowed = false;

  constructor(call: WritableCall<T>, limit: number, onOverflow: (limit: number) => void) {
    if (!(limit >= 1)) throw new RangeError(`limit must be ≥ 1, got ${limit}`);
    this.#call = call;
    this.#limit = limit;
    this.#onOverflow = onOverflow;
    call.on('drain', () => {
      this.#blocked = false;
      this.#flush();
    });
  }

  /** Messages waiting for the stream to drain. */
  get queued(): number {
    return this.#queue.length;
  }

  get overflowed(): boolean {
    return this.#overflowed;
  }

  push(message: T): void {
    if (this.#overflowed) return;
    if (!this.#blocked) {
      this.#blocked = !this.#call.write(message);
      return;
    }
    if (this.#queue.length >= this.#limit) {
      this.#overflowed = true;
      this.#queue = [];
      this.#onOverflow(this.#limit);
      return;
    }
    this.#queue.push(message);
  }

  #flush(): void {
    let sent = 0;
    while (!this.#blocked && sent < this.#queue.length) this.#blocked = !this.#call.write(this.#queue[sent++]!);
    this.#queue = this.#queue.slice(sent);
  }
}
