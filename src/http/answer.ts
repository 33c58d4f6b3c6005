import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { Cancellation } from '../core/cancellation.js';
import type { TimerHandle } from '../core/clock.js';
import { GatewayError, toGatewayError, toOpenAIError, toTgiError } from '../core/errors.js';
import { REQUEST_ID_HEADER, type RouteApi } from '../routes/table.js';
import type { InferenceReply, InferenceService } from '../service/inference.js';
import type { RequestRecord } from '../service/observer.js';
import type { SendTimeout } from '../service/send-timeout.js';
import { forwardableHeaders } from '../upstream/client.js';
import { workerError } from '../upstream/worker-error.js';

/** One request to forward to a worker, as an HTTP adapter read it. */
export interface Forward {
  readonly method: string;
  /** Path with query string, sent to the worker as is. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer | undefined;
  readonly record: RequestRecord;
  /** Sent to the worker and back to the client as `x-request-id`. */
  readonly requestId: string;
  /**
   * `openai`: a worker's error answer reaches the client in the catalogue's OpenAI shape, its
   * message and status kept. Otherwise it passes as the worker sent it (TGI's clients read TGI's
   * shape; an engine's own routes are the engine's).
   */
  readonly errorShape: RouteApi | undefined;
  /**
   * The shape of the gateway's own errors (its refusals, a worker that failed, a stream's error
   * event): errorShape's by default, OpenAI's without one. SGLang's body on TGI's /generate gets
   * OpenAI's (errorShapeOf), while the worker's own errors there pass as it sent them.
   */
  readonly gatewayErrorShape?: RouteApi | undefined;
  /** Signals for affinity policies; either may be missing. */
  readonly sessionKey?: string | undefined;
  readonly promptText?: string | undefined;
  /** Its place among the requests waiting for a slot (PRIORITY_HEADER); default 0. */
  readonly priority?: number | undefined;
  /**
   * What cancels the request when its client goes away, when the caller already watches the
   * response's close (one listener instead of two); else forward makes its own (cancelOnClose).
   */
  readonly abort?: Cancellation | undefined;
  /** Cuts a streamed answer its client takes nothing of for that long (client_send_timeout). */
  readonly sendTimeout?: SendTimeout | undefined;
}

/** Where an unexpected (internal) error is reported. */
export interface ErrorLog {
  error(obj: object, msg: string): void;
}

/**
 * Forwards one request through the service and copies the worker's answer to `res` (JSON whole,
 * or SSE chunk by chunk); any failure ends in an error in the route's shape, never a silent cut.
 */
export async function answer(
  service: InferenceService,
  res: ServerResponse,
  f: Forward,
  log?: ErrorLog | undefined,
): Promise<void> {
  const shape = f.gatewayErrorShape ?? f.errorShape ?? 'openai';
  // One async function from the request to the answer's write: a forward() of its own under
  // this try would cost a promise and an await more per request.
  try {
    // A client that goes away cancels its wait in the queue and its upstream request.
    const abort = f.abort ?? cancelOnClose(res);
    const headers = forwardableHeaders(f.headers, f.record.upstreamHeaders);
    headers[REQUEST_ID_HEADER] = f.requestId;
    const upstream = await service.dispatch({
      method: f.method,
      path: f.url,
      headers,
      body: f.body,
      signal: abort,
      sessionKey: f.sessionKey,
      promptText: f.promptText,
      priority: f.priority,
    });
    // Answered meanwhile without the worker (node's HTTP layer, on this connection): nobody
    // reads this answer, so the worker stops and its slot goes back now rather than never.
    if (res.writableEnded || res.destroyed) {
      upstream.body.destroy();
      return;
    }
    const stream = (upstream.headers['content-type'] ?? '').startsWith('text/event-stream');
    f.record.answered({
      worker: upstream.worker,
      status: upstream.status,
      stream,
      queueWaitMs: upstream.queueWaitMs,
      headers: upstream.headers,
    });
    if (upstream.status >= 400 && f.errorShape === 'openai') {
      readWhole(
        upstream,
        (whole) => {
          f.record.chunk(whole);
          writeError(res, workerError(upstream.status, upstream.headers, whole), f.requestId, log);
        },
        (err) => writeError(res, err, f.requestId, log),
      );
      return;
    }
    upstream.headers[REQUEST_ID_HEADER] = f.requestId;
    if (stream) {
      answerStream(res, upstream, f.record, f.sendTimeout, shape);
      return;
    }
    readWhole(
      upstream,
      (whole) => {
        f.record.chunk(whole);
        // The whole body is at hand: its length goes out with it, instead of chunked framing.
        const answerHeaders = upstream.headers;
        if (f.method !== 'HEAD' && mayHaveBody(upstream.status)) answerHeaders['content-length'] = String(whole.length);
        res.writeHead(upstream.status, answerHeaders).end(whole);
      },
      (err) => writeError(res, err, f.requestId, log, shape),
    );
  } catch (err) {
    writeError(res, toGatewayError(err), f.requestId, log, shape);
  }
}

/** A Cancellation that a client going away (the response closing before its end) aborts. */
function cancelOnClose(res: ServerResponse): Cancellation {
  const abort = new Cancellation();
  res.once('close', () => {
    if (!res.writableFinished) abort.abort(new GatewayError('client_closed'));
  });
  return abort;
}

/** A 1xx, 204 or 304 answer has no body, and no content-length either (RFC 9110 §8.6). */
function mayHaveBody(status: number): boolean {
  return status >= 200 && status !== 204 && status !== 304;
}

/**
 * Writes `err` as the catalogue's JSON, with the request's id: OpenAI's shape, or TGI's on TGI's
 * routes (`shape`); a response already started is cut instead (its client sees a broken answer,
 * not a second one), and a closed one is left alone.
 */
export function writeError(
  res: ServerResponse,
  err: GatewayError,
  requestId: string,
  log?: ErrorLog | undefined,
  shape: RouteApi = 'openai',
): void {
  if (err.status >= 500 && err.code === 'internal') {
    log?.error({ err: err.cause ?? err, request_id: requestId }, 'internal error');
  }
  // The client is gone: nobody reads an answer (the observer counted the request when it closed).
  if (res.destroyed) return;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(errorBody(err, shape));
  res.writeHead(err.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    [REQUEST_ID_HEADER]: requestId,
    ...(err.retryAfterSeconds !== undefined ? { 'retry-after': String(err.retryAfterSeconds) } : {}),
  });
  res.end(body);
}

/**
 * A non-streamed answer is read whole, so a worker that fails mid-body still gets the client a
 * clean 502 (or 504 when it stalled) instead of half a body. (A JSON answer arrives as one
 * chunk: the service checks it whole.) Callbacks rather than a promise: an answer that came
 * with its headers is whole at once, and goes out in the same turn.
 */
function readWhole(upstream: InferenceReply, done: (whole: Buffer) => void, failed: (err: GatewayError) => void): void {
  const chunks: Buffer[] = [];
  upstream.body
    .read({
      data: (c) => chunks.push(c),
      end: () => {
        // What done() throws (e.g. a header node refuses to write) is the answer's error, as
        // anything thrown on the way to it: it must not unwind into the worker's body.
        try {
          done(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
        } catch (err) {
          failed(toGatewayError(err));
        }
      },
      error: (err) => failed(midAnswerError(err, upstream.worker)),
    })
    .resume();
}

/**
 * Copies SSE events to the client as they come (the service passes only whole events), with
 * the worker's pace and the client's backpressure; if the answer fails after bytes went out,
 * the stream ends with an OpenAI-shaped error event, never silently. Written on the raw
 * response: one write per chunk, no stream layer or pipe between the worker and the socket.
 */
function answerStream(
  res: ServerResponse,
  upstream: InferenceReply,
  record: RequestRecord,
  sendTimeout: SendTimeout | undefined,
  shape: RouteApi,
): void {
  const body = upstream.body;
  res.writeHead(upstream.status, upstream.headers);
  // Runs while the client is behind: past client_send_timeout the connection is cut, and its
  // close below cancels the worker's request.
  let blocked: TimerHandle | undefined;
  const resume = (): void => {
    blocked?.cancel();
    blocked = undefined;
    body.resume();
  };
  res.on('drain', resume);
  // The client went away (or the response failed): stop reading the worker (after the end, a no-op).
  res.once('close', () => {
    blocked?.cancel();
    res.off('drain', resume);
    body.destroy();
  });
  body
    .read({
      data: (chunk) => {
        record.chunk(chunk);
        if (res.write(chunk)) return;
        body.pause();
        blocked ??= sendTimeout?.blocked(() => res.destroy());
      },
      // In the same tick as the last chunk: its write and the end go out as one.
      end: () => res.end(),
      error: (err) => {
        if (res.destroyed) return;
        res.end(`data: ${JSON.stringify(errorBody(midAnswerError(err, upstream.worker), shape))}\n\n`);
      },
    })
    .resume();
}

/** The error's body in the shape of the route's API: OpenAI's, or TGI's (`{"error", "error_type"}`). */
function errorBody(err: GatewayError, shape: RouteApi): object {
  return shape === 'tgi' ? toTgiError(err) : toOpenAIError(err);
}

function midAnswerError(err: unknown, worker: string): GatewayError {
  return err instanceof GatewayError
    ? err
    : new GatewayError('upstream_interrupted', {
        message: `worker ${worker} failed while sending its answer`,
        cause: err,
      });
}

/**
 * Finishes `record` when the response is over: sent, failed, or cut by the client (then 499,
 * nginx's "client closed request", if no answer had begun). `details` is read at that moment.
 * Returns what the client going away (the response closing before its end) aborts, for
 * Forward.abort: one close listener serves both.
 */
export function recordUntilClose(
  record: RequestRecord,
  res: ServerResponse,
  details: () => { user: string | undefined; model?: string | undefined; requestBody: Buffer | undefined },
): Cancellation {
  const abort = new Cancellation();
  res.once('close', () => {
    const aborted = !res.writableFinished;
    record.finish({ status: aborted && !res.headersSent ? 499 : res.statusCode, aborted, ...details() });
    if (aborted) abort.abort(new GatewayError('client_closed'));
  });
  return abort;
}
