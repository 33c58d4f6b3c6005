/**
 * Server-sent events onto a node:http response that respect backpressure: when `write()`
 * returns false the writer stops writing and keeps later events until 'drain'. What it keeps
 * is bounded by the response itself (the engine produces at most max_tokens events), and
 * callers that can merge events (OpenAI content deltas) ask `blocked` and coalesce, as vLLM
 * merges outputs a slow client has not collected yet.
 */
import type { ServerResponse } from 'node:http';

export class SseWriter {
  readonly #res: ServerResponse;
  readonly #prefix: string;
  #pending: string[] = [];
  #blocked = false;
  #endAfterDrain = false;

  /** `prefix` is 'data: ' for OpenAI (vLLM) streams and 'data:' for TGI's. */
  constructor(res: ServerResponse, prefix = 'data: ') {
    this.#res = res;
    this.#prefix = prefix;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    res.flushHeaders();
    res.on('drain', () => this.#onDrain());
  }

  /** True while the socket has not drained what was written. */
  get blocked(): boolean {
    return this.#blocked;
  }

  get closed(): boolean {
    return this.#res.destroyed || this.#res.writableEnded;
  }

  /** Sends one event whose data is `data` (an object is JSON-encoded). */
  event(data: unknown): void {
    this.#write(`${this.#prefix}${encode(data)}\n\n`);
  }

  /**
   * Sends one event with an `event:` line naming its type before its data, as vLLM's Responses
   * API streams (`event: response.output_text.delta\ndata: {...}\n\n`); held back while blocked
   * like any other event, so named and unnamed events keep their order.
   */
  namedEvent(type: string, data: unknown): void {
    this.#write(`event: ${type}\n${this.#prefix}${encode(data)}\n\n`);
  }

  /** Ends the response once everything pending is written. */
  end(): void {
    if (this.closed) return;
    if (this.#blocked) this.#endAfterDrain = true;
    else this.#res.end();
  }

  #write(text: string): void {
    if (this.closed) return;
    if (this.#blocked) {
      this.#pending.push(text);
      return;
    }
    if (!this.#res.write(text)) this.#blocked = true;
  }

  #onDrain(): void {
    this.#blocked = false;
    const pending = this.#pending;
    this.#pending = [];
    if (pending.length > 0) this.#write(pending.join(''));
    if (this.#endAfterDrain && !this.#blocked) this.#res.end();
  }
}

function encode(data: unknown): string {
  return typeof data === 'string' ? data : JSON.stringify(data);
}
