import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { isUtf8 } from 'node:buffer';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { Cancellation } from '../core/cancellation.js';
import { GatewayError, toGatewayError, toOpenAIError } from '../core/errors.js';
import type { InferenceReply, InferenceService } from '../service/inference.js';
import { NOOP_OBSERVER, type RequestObserver, type RequestRecord } from '../service/observer.js';
import { promptTextOf } from '../service/prompt.js';
import { legacyStatusJson, type ControlPlane } from '../service/status.js';
import { forwardableHeaders } from '../upstream/client.js';
import type { TlsFiles } from '../service/grpc-server.js';
import { registerLegacyRoutes } from './legacy.js';
import { INFERENCE_ROUTES } from './routes.js';

export interface HttpAppOptions {
  readonly service: InferenceService;
  readonly plane: ControlPlane;
  readonly maxBodySize: number;
  /** Largest request head in bytes (option max_header_size); default Node's 16 KiB. */
  readonly maxHeaderSize?: number;
  /** Deepest JSON nesting accepted (option max_json_depth); default 64. */
  readonly maxJsonDepth?: number;
  /** Serve HTTPS with this certificate and key. */
  readonly tls?: TlsFiles | undefined;
  readonly log?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** Told about every inference request (metrics, tracing, request log). */
  readonly observer?: RequestObserver;
  /** The gateway's metrics in Prometheus text format, served on GET /metrics. */
  readonly metricsText?: () => Promise<string>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The body exactly as the client sent it; forwarded unchanged. */
    rawBody: Buffer | undefined;
    /** The observer's record of this request (a no-op for the gateway's own routes). */
    record: RequestRecord;
  }
}

type JsonObject = Record<string, unknown>;

/** FlockServe's header switch: `stream: 1` asks for a streamed answer as the body's `"stream": true` does. */
function wantsStream(req: FastifyRequest, body: JsonObject): boolean {
  const h = req.headers['stream'];
  return body['stream'] === true || h === '1' || h === 'true';
}

/**
 * The HTTP adapters. They hold no logic of their own: parse and check the body, turn it
 * into an InferenceCall, and copy the worker's answer back (JSON, or SSE chunk by chunk).
 */
export function buildHttpApp(options: HttpAppOptions): FastifyInstance {
  const app = Fastify({
    // The HTTPS server has the same API for everything the gateway uses (listen, close, connections).
    ...(options.tls ? { https: { cert: options.tls.cert, key: options.tls.key } } : {}),
    bodyLimit: options.maxBodySize,
    http: { maxHeaderSize: options.maxHeaderSize ?? 16 * 1024 },
    clientErrorHandler: answerClientError,
    logger: false,
    // Bodies are forwarded as sent, so the validator must not coerce or strip anything.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
  });
  app.decorateRequest('rawBody', undefined);
  observeRequests(app, options.observer ?? NOOP_OBSERVER);

  // Every body arrives as bytes; JSON routes parse it in preValidation, other routes forward it as is.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    req.rawBody = body as Buffer;
    done(null, body);
  });

  app.setErrorHandler((err: unknown, _req, reply) => sendError(reply, fromFastifyError(err), options.log));
  app.setNotFoundHandler((_req, reply) => sendError(reply, new GatewayError('not_found')));

  app.get('/', async () => legacyStatusJson(options.plane.status()));
  app.get('/health', async () => {
    const s = options.plane.status();
    return { status: 'ok', ready_worker_count: s.readyWorkerCount };
  });
  const metricsText = options.metricsText;
  if (metricsText) {
    app.get('/metrics', async (_req, reply) =>
      reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8').send(await metricsText()),
    );
  }
  registerLegacyRoutes(app, options.plane);

  for (const route of INFERENCE_ROUTES) {
    app.post(route.url, {
      schema: route.schema,
      // Callback-style hooks: no promise per request for work that is synchronous.
      preValidation: (req, _reply, done) => {
        try {
          req.body = parseJson(req.rawBody, options.maxJsonDepth ?? 64);
        } catch (err) {
          done(err as Error);
          return;
        }
        done();
      },
      handler: async (req, reply) => {
        const body = req.body as JsonObject;
        let raw = req.rawBody ?? Buffer.alloc(0);
        const stream = wantsStream(req, body);
        // The header asked for streaming but the body did not: the worker must be told too.
        if (stream && body['stream'] !== true && route.url.startsWith('/v1/'))
          raw = Buffer.from(JSON.stringify({ ...body, stream: true }));
        const sessionKey =
          (typeof body['user'] === 'string' ? body['user'] : undefined) ?? headerOf(req, 'x-session-id');
        return proxy(req, reply, options, raw, { sessionKey, promptText: promptTextOf(body) });
      },
    });
  }

  // Everything else (GET /v1/models, /tokenize, ...) is forwarded as it is.
  app.all('/*', async (req, reply) => proxy(req, reply, options, req.rawBody, {}));
  return app;
}

function headerOf(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
}

function parseJson(raw: Buffer | undefined, maxDepth: number): unknown {
  if (!raw || raw.length === 0) throw new GatewayError('invalid_json', { message: 'The request body is empty.' });
  // JSON is UTF-8 (RFC 8259 §8.1); decoding would turn bad bytes into U+FFFD and forward a different body.
  if (!isUtf8(raw)) throw new GatewayError('invalid_json', { message: 'The request body is not valid UTF-8.' });
  // Checked before parsing: deep nesting is cheap to send and overflows recursive code later.
  // Nesting past maxDepth needs more than maxDepth bytes of brackets, so a body no longer than
  // that cannot exceed it (64 bytes for the default 64): skip the scan, the answer is the same.
  if (raw.length > maxDepth && exceedsDepth(raw, maxDepth)) {
    throw new GatewayError('json_too_deep', {
      message: `The request body nests objects or arrays deeper than ${maxDepth} levels.`,
    });
  }
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new GatewayError('invalid_json', {
      message: `The request body is not valid JSON: ${(err as Error).message}`,
      cause: err,
    });
  }
}

/**
 * True when objects/arrays nest deeper than `limit`, counting brackets outside strings in one
 * pass over the bytes. `{"a":[1]}` has depth 2. Brackets left unbalanced are JSON.parse's to report.
 */
export function exceedsDepth(raw: Buffer, limit: number): boolean {
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (b === 0x5c)
        escaped = true; // backslash
      else if (b === 0x22) inString = false; // "
    } else if (b === 0x22) inString = true;
    else if (b === 0x7b || b === 0x5b) {
      if (++depth > limit) return true; // { [
    } else if (b === 0x7d || b === 0x5d) depth--; // } ]
  }
  return false;
}

async function proxy(
  req: FastifyRequest,
  reply: FastifyReply,
  options: HttpAppOptions,
  body: Buffer | undefined,
  pick: { sessionKey?: string | undefined; promptText?: string | undefined },
): Promise<FastifyReply> {
  // A client that goes away cancels its wait in the queue and its upstream request.
  const abort = new Cancellation();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) abort.abort(new GatewayError('client_closed'));
  });
  const upstream = await options.service.dispatch({
    method: req.method,
    path: req.url,
    headers: forwardableHeaders(req.headers, req.record.upstreamHeaders),
    body,
    signal: abort,
    ...pick,
  });
  const stream = (upstream.headers['content-type'] ?? '').startsWith('text/event-stream');
  req.record.answered({ worker: upstream.worker, status: upstream.status, stream, queueWaitMs: upstream.queueWaitMs });
  if (stream) {
    answerStream(reply, upstream, req.record);
    return reply;
  }
  const whole = await readWhole(upstream);
  req.record.chunk(whole);
  rawAnswer(reply, upstream).end(whole);
  return reply;
}

/**
 * Takes the response from fastify and starts the worker's answer on it: the body is bytes the
 * service already checked, so fastify's serialisation and onSend machinery have nothing to do.
 */
function rawAnswer(reply: FastifyReply, upstream: InferenceReply): FastifyReply['raw'] {
  reply.hijack();
  return reply.raw.writeHead(upstream.status, upstream.headers);
}

/**
 * A non-streamed answer is read whole, so a worker that fails mid-body still gets the client a
 * clean 502 (or 504 when it stalled) instead of half a body. (A JSON answer arrives as one
 * chunk: the service checks it whole.)
 */
function readWhole(upstream: InferenceReply): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    upstream.body.on('data', (c: Buffer) => chunks.push(c));
    upstream.body.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    upstream.body.once('error', (err) => reject(midAnswerError(err, upstream.worker)));
  });
}

/**
 * Copies SSE events to the client as they come (the service passes only whole events), with
 * the worker's pace and the client's backpressure; if the answer fails after bytes went out,
 * the stream ends with an OpenAI-shaped error event, never silently. Written on the raw
 * response: one write per chunk, no stream layer or pipe between the worker and the socket.
 */
function answerStream(reply: FastifyReply, upstream: InferenceReply, record: RequestRecord): void {
  const body = upstream.body;
  const res = rawAnswer(reply, upstream);
  const resume = (): void => {
    body.resume();
  };
  res.on('drain', resume);
  // The client went away (or the response failed): stop reading the worker.
  res.once('close', () => {
    res.off('drain', resume);
    if (!body.readableEnded) body.destroy();
  });
  body.on('data', (chunk: Buffer) => {
    record.chunk(chunk);
    if (!res.write(chunk)) body.pause();
  });
  body.once('end', () => res.end());
  body.once('error', (err) => {
    if (res.destroyed) return;
    res.end(`data: ${JSON.stringify(toOpenAIError(midAnswerError(err, upstream.worker)))}\n\n`);
  });
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
 * Answers what fails before fastify sees a request (node's HTTP parser): an oversized head gets
 * 431, anything else that is not HTTP 400, both OpenAI-shaped, then the connection closes.
 */
function answerClientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy(err);
    return;
  }
  const g =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new GatewayError('headers_too_large')
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new GatewayError('client_timeout')
        : new GatewayError('bad_request', { message: 'The request is not valid HTTP.' });
  const body = JSON.stringify(toOpenAIError(g));
  socket.end(
    `HTTP/1.1 ${g.status} ${STATUS_CODES[g.status] ?? ''}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  message?: string;
  validation?: Array<{ instancePath?: string; params?: { missingProperty?: string } }>;
}

/** Maps fastify's own errors (validation, body limit, media type) to the catalogue. */
function fromFastifyError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const e = (err ?? {}) as FastifyLikeError;
  if (e.validation) {
    const first = e.validation[0];
    const param =
      first?.params?.missingProperty ?? (first?.instancePath ? first.instancePath.slice(1).replaceAll('/', '.') : '');
    return new GatewayError('bad_request', {
      message: `Invalid request: ${e.message ?? 'validation failed'}`,
      ...(param ? { param } : {}),
      cause: err,
    });
  }
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || e.statusCode === 413)
    return new GatewayError('body_too_large', { cause: err });
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500)
    return new GatewayError('bad_request', { message: e.message ?? 'Bad request.', cause: err });
  return toGatewayError(err);
}

function sendError(reply: FastifyReply, err: GatewayError, log?: HttpAppOptions['log']): FastifyReply {
  if (err.status >= 500 && err.code === 'internal') log?.error({ err: err.cause ?? err }, 'internal error');
  // The client is gone: nobody reads an answer (the observer counted the request when it closed).
  if (reply.raw.destroyed) return reply.hijack();
  if (reply.sent || reply.raw.headersSent) {
    reply.raw.destroy();
    return reply;
  }
  if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
  return reply.code(err.status).header('content-type', 'application/json').send(toOpenAIError(err));
}

/** Routes whose requests are observed: the inference routes by name, everything forwarded as `other`. */
const OBSERVED_ROUTES = new Map<string, string>([
  ...INFERENCE_ROUTES.map((r) => [r.url, r.url] as const),
  ['/*', 'other'],
]);

/**
 * Opens the observer's record when a request arrives (so 400s and 413s count too) and
 * finishes it when the response is over: sent, failed, or cut by the client.
 */
function observeRequests(app: FastifyInstance, observer: RequestObserver): void {
  app.decorateRequest('record', undefined as unknown as RequestRecord);
  const noop = NOOP_OBSERVER.begin({ transport: 'http', method: 'GET', route: '', headers: {} });
  app.addHook('onRequest', (req, reply, done) => {
    const route = OBSERVED_ROUTES.get(req.routeOptions.url ?? '');
    if (route === undefined) {
      req.record = noop;
      done();
      return;
    }
    const record = observer.begin({ transport: 'http', method: req.method, route, headers: req.headers });
    req.record = record;
    reply.raw.once('close', () => {
      const body = req.body as JsonObject | undefined;
      const aborted = !reply.raw.writableFinished;
      record.finish({
        // 499 (nginx's "client closed request"): the client left before an answer began.
        status: aborted && !reply.raw.headersSent ? 499 : reply.raw.statusCode,
        aborted,
        user: body && typeof body['user'] === 'string' ? body['user'] : undefined,
        requestBody: req.rawBody,
      });
    });
    done();
  });
}
