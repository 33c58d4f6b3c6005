import type { Logger } from 'pino';
import type { RequestAnswered, RequestEnd, RequestObserver, RequestRecord, RequestStart } from '../service/observer.js';
import type { Headers } from '../upstream/client.js';
import type { GatewayMetrics } from './metrics.js';
import type { RequestLog } from './request-log.js';
import { TokenTally } from './token-count.js';
import type { RequestSpan, RequestTracer } from './tracing.js';

export interface TelemetryObserverOptions {
  readonly metrics: GatewayMetrics;
  /** Monotonic milliseconds for durations (performance.now). */
  readonly now: () => number;
  /** Wall-clock milliseconds for the request log's timestamp. */
  readonly wallClock: () => number;
  readonly log: Logger;
  readonly tracer?: RequestTracer | undefined;
  readonly requestLog?: RequestLog | undefined;
  /** Keep request and response bodies for the request log. */
  readonly logBodies?: boolean;
}

/** A response body kept for the request log is cut at this size. */
const MAX_LOGGED_BODY = 1024 * 1024;

/**
 * The telemetry side of RequestObserver: on each finished request it records the
 * metrics, ends the span, queues a request-log row and writes the debug line. Per
 * request it costs one small object, a byte scan of each chunk for token counts, and
 * the instruments' record calls at the end.
 */
export class TelemetryObserver implements RequestObserver {
  readonly #options: TelemetryObserverOptions;

  constructor(options: TelemetryObserverOptions) {
    this.#options = options;
  }

  begin(start: RequestStart): RequestRecord {
    return new ObservedRequest(this.#options, start);
  }
}

class ObservedRequest implements RequestRecord {
  readonly #options: TelemetryObserverOptions;
  readonly #start: RequestStart;
  readonly #startedAt: number;
  readonly #span: RequestSpan | undefined;
  readonly upstreamHeaders: Headers | undefined;
  #answer: RequestAnswered | undefined;
  #tally: TokenTally | undefined;
  #firstChunkAt: number | undefined;
  #body: Buffer[] | undefined;
  #bodyBytes = 0;
  #done = false;

  constructor(o: TelemetryObserverOptions, start: RequestStart) {
    this.#options = o;
    this.#start = start;
    this.#startedAt = o.now();
    if (o.tracer) {
      this.#span = o.tracer.start(`${start.method} ${start.route}`, start.headers['traceparent'], {
        'http.request.method': start.method,
        'http.route': start.route,
        'flockserve.transport': start.transport,
      });
      this.upstreamHeaders = { traceparent: this.#span.traceparent };
    }
  }

  answered(info: RequestAnswered): void {
    this.#answer = info;
    this.#tally = new TokenTally(info.stream);
    const h = info.headers;
    if (h !== undefined && h['x-generated-tokens'] !== undefined) this.#tally.reported(h);
    if (this.#options.logBodies && this.#options.requestLog) this.#body = [];
  }

  chunk(data: Buffer): void {
    this.#firstChunkAt ??= this.#options.now();
    this.#tally?.add(data);
    if (this.#body && this.#bodyBytes < MAX_LOGGED_BODY) {
      const part = data.subarray(0, MAX_LOGGED_BODY - this.#bodyBytes);
      this.#body.push(part);
      this.#bodyBytes += part.length;
    }
  }

  finish(end: RequestEnd): void {
    if (this.#done) return;
    this.#done = true;
    const o = this.#options;
    const s = this.#start;
    const a = this.#answer;
    const durationMs = o.now() - this.#startedAt;
    const ttftMs = a?.stream && this.#firstChunkAt !== undefined ? this.#firstChunkAt - this.#startedAt : undefined;
    const tokens = this.#tally?.counts;
    const worker = a?.worker ?? '';
    // The chunks after the first carry the other tokens; the answer ends with its last chunk.
    const after = (tokens?.completion ?? 0) - 1;
    const tpotMs =
      ttftMs !== undefined && after > 0 && end.status < 400 && !end.aborted ? (durationMs - ttftMs) / after : undefined;
    o.metrics.request({
      transport: s.transport,
      route: s.route,
      status: end.status,
      worker,
      model: end.model,
      durationMs,
      ttftMs,
      tpotMs,
      queueWaitMs: a?.queueWaitMs,
      completionTokens: tokens?.completion,
      promptTokens: tokens?.prompt,
    });
    this.#span?.end(
      {
        'http.response.status_code': end.status,
        'flockserve.worker': worker,
        ...(tokens?.completion !== undefined ? { 'gen_ai.usage.output_tokens': tokens.completion } : {}),
        ...(tokens?.prompt !== undefined ? { 'gen_ai.usage.input_tokens': tokens.prompt } : {}),
        ...(end.aborted ? { 'flockserve.client_aborted': true } : {}),
      },
      end.status >= 500,
    );
    o.requestLog?.add({
      timestamp: new Date(o.wallClock() - durationMs).toISOString(),
      route: s.route,
      method: s.method,
      transport: s.transport,
      worker: worker || null,
      status: end.status,
      execution_time: durationMs / 1000,
      ttft: ttftMs === undefined ? null : ttftMs / 1000,
      queue_wait: a ? a.queueWaitMs / 1000 : null,
      prompt_tokens: tokens?.prompt ?? null,
      completion_tokens: tokens?.completion ?? null,
      user: end.user ?? null,
      stream: a?.stream ? 1 : 0,
      trace_id: this.#span?.traceId ?? null,
      request_id: s.requestId,
      request: o.logBodies && end.requestBody ? end.requestBody.toString('utf8') : null,
      response: this.#body ? Buffer.concat(this.#body).toString('utf8') : null,
    });
    if (o.log.isLevelEnabled('debug')) {
      o.log.debug(
        {
          route: s.route,
          method: s.method,
          transport: s.transport,
          status: end.status,
          worker: worker || undefined,
          ms: round(durationMs),
          ttft_ms: ttftMs === undefined ? undefined : round(ttftMs),
          queue_ms: a ? round(a.queueWaitMs) : undefined,
          tokens: tokens?.completion,
          aborted: end.aborted || undefined,
          error: end.error,
          request_id: s.requestId,
          trace_id: this.#span?.traceId,
        },
        `${s.method} ${s.route} ${end.status} ${round(durationMs)} ms`,
      );
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
