import { GatewayError } from '../core/errors.js';
import type { SendTimeout } from './send-timeout.js';

/** The part of a grpc-js ServerWritableStream that PacedWriter uses. */
export interface DrainingCall<T> {
  /** false once the stream's own buffer is full (it still took the message). */
  write(message: T): boolean;
  once(event: 'drain', listener: () => void): unknown;
  removeListener(event: 'drain', listener: () => void): unknown;
}

/**
 * Writes a worker's answer to a gRPC server stream at the client's pace, as the HTTP edge writes
 * to its socket: grpc-js's write() returns false once 16 messages wait for the client (HTTP/2
 * flow control has stopped the stream), and the reader of the worker's body then waits for
 * writable() before it reads on. The worker's body, halted, stops the worker's socket (BodyStream,
 * stoppingConnector), so a client that stops reading stops the worker's answer instead of the
 * gateway buffering all of it. What a stalled stream holds is then bounded: the call's 16
 * messages and those of the body chunk that filled it (an engine sends a token event per HTTP
 * chunk; undici hands on at most a socket read, READ_SIZE), the rest of that read, put back
 * into the socket, and the HTTP/2 stream's window. A JSON stream's messages are token events of
 * ~200 bytes, written as their protobuf bytes (Encoded): ~0.1 KiB of Buffer each as grpc-js holds
 * them, ~2 KiB for 16.
 */
export class PacedWriter<T> {
  readonly #call: DrainingCall<T>;
  readonly #signal: AbortSignal;
  readonly #sendTimeout: SendTimeout | undefined;
  #blocked = false;

  /**
   * `signal`: the call's cancellation; a wait for a client that went away ends with it.
   * `sendTimeout`: a wait longer than client_send_timeout fails with client_timeout.
   */
  constructor(call: DrainingCall<T>, signal: AbortSignal, sendTimeout?: SendTimeout) {
    this.#call = call;
    this.#signal = signal;
    this.#sendTimeout = sendTimeout;
  }

  write(message: T): void {
    if (!this.#call.write(message)) this.#blocked = true;
  }

  /**
   * Undefined when the stream takes more now; else a promise that resolves at its 'drain', or
   * fails with client_closed when the call is cancelled first, or with client_timeout when the
   * client takes nothing for client_send_timeout (the reader then drops the body, which aborts the
   * worker's request, rather than read what the worker had sent).
   */
  writable(): Promise<void> | undefined {
    if (!this.#blocked) return undefined;
    if (this.#signal.aborted) return Promise.reject(new GatewayError('client_closed'));
    return new Promise<void>((resolve, reject) => {
      const settle = (): void => {
        this.#call.removeListener('drain', drained);
        this.#signal.removeEventListener('abort', cancelled);
        timer?.cancel();
      };
      const drained = (): void => {
        settle();
        this.#blocked = false;
        resolve();
      };
      const cancelled = (): void => {
        settle();
        reject(new GatewayError('client_closed'));
      };
      const timer = this.#sendTimeout?.blocked((why) => {
        settle();
        reject(why);
      });
      this.#call.once('drain', drained);
      this.#signal.addEventListener('abort', cancelled, { once: true });
    });
  }
}
