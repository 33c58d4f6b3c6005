import { GatewayError } from '../core/errors.js';

/** The part of a grpc-js ServerWritableStream that PacedWriter uses. */
export interface DrainingCall<T> {
  /** false once the stream's own buffer is full (it still took the message). */
  write(message: T): boolean;
  /** Messages it holds that the client has not taken yet (a Writable's writableLength). */
  readonly writableLength: number;
  once(event: 'drain', listener: () => void): unknown;
  removeListener(event: 'drain', listener: () => void): unknown;
}

/**
 * Writes a worker's answer to a gRPC server stream at the client's pace, as the HTTP edge writes
 * to its socket: grpc-js's write() returns false once 16 messages wait for the client (HTTP/2
 * flow control has stopped the stream), and the reader of the worker's body then waits for
 * writable() before it reads on. The worker's body, paused, holds its high-water mark and pauses
 * the worker's socket (BodyStream), so a client that stops reading stops the worker's answer
 * instead of the gateway buffering all of it. What a stalled stream holds is then bounded: the
 * two bodies' high-water marks (16 KiB each), the messages made from the events passed before
 * the pause, and the HTTP/2 stream's window.
 */
export class PacedWriter<T> {
  readonly #call: DrainingCall<T>;
  readonly #signal: AbortSignal;
  readonly #backlog: number;
  #blocked = false;

  /**
   * `signal`: the call's cancellation; a wait for a client that went away ends with it.
   * `backlog`: the messages the call may hold before writable() says wait (at least its own
   * high-water mark: by default the reader waits at the first write the call calls full).
   */
  constructor(call: DrainingCall<T>, signal: AbortSignal, backlog = 0) {
    this.#call = call;
    this.#signal = signal;
    this.#backlog = backlog;
  }

  write(message: T): void {
    if (!this.#call.write(message)) this.#blocked = true;
  }

  /**
   * Undefined when the stream takes more now; else a promise that resolves at its 'drain', or
   * fails with client_closed when the call is cancelled first (the reader then drops the body,
   * which aborts the worker's request, rather than read what the worker had sent).
   */
  writable(): Promise<void> | undefined {
    if (!this.#blocked || this.#call.writableLength < this.#backlog) return undefined;
    if (this.#signal.aborted) return Promise.reject(new GatewayError('client_closed'));
    return new Promise<void>((resolve, reject) => {
      const drained = (): void => {
        this.#signal.removeEventListener('abort', cancelled);
        this.#blocked = false;
        resolve();
      };
      const cancelled = (): void => {
        this.#call.removeListener('drain', drained);
        reject(new GatewayError('client_closed'));
      };
      this.#call.once('drain', drained);
      this.#signal.addEventListener('abort', cancelled, { once: true });
    });
  }
}
