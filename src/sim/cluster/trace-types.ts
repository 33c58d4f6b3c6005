/** One request of a trace: when it arrives and how many tokens go in and come out. */
export interface TraceRequest {
  /** Milliseconds after the trace's first request. */
  readonly arrivalMs: number;
  readonly promptTokens: number;
  readonly outputTokens: number;
  /** 1-based line in the file (a request log's row id), for messages and as the request's identity in synthesised text. */
  readonly line: number;
  /**
   * Mooncake traces: one id per 512-token block of the prompt, equal ids meaning the same
   * (cacheable) prefix. Absent for traces with lengths only.
   */
  readonly hashIds?: readonly number[];
}

/**
 * The most tokens one request's prompt or output may count: past any model's context, and under
 * what the lengths' packed arrays hold (2^32) and what a prompt's text can be built from.
 */
export const MAX_REQUEST_TOKENS = 10_000_000;

/** A trace that cannot be used; the message names the file, the line (or row) and what was expected. */
export class TraceError extends Error {
  override readonly name = 'TraceError';
}
