import Fastify, { type FastifyInstance, type FastifyReply, type FastifyServerFactory } from 'fastify';
import { createServer, STATUS_CODES, type RequestListener } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { GatewayError, toGatewayError, toOpenAIError } from '../core/errors.js';
import type { TlsFiles } from '../runtime/tls.js';
import type { InferenceService } from '../service/inference.js';
import { NOOP_OBSERVER, type RequestObserver, type RequestRecord } from '../service/observer.js';
import { legacyStatusJson, type ControlPlane } from '../service/status.js';
import { answer, recordUntilClose, writeError } from './answer.js';
import { inferenceEdge, type InferenceEdge } from './inference-edge.js';
import { registerLegacyRoutes } from './legacy.js';

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

/**
 * The HTTP adapters. They hold no logic of their own: read and check the request, turn it into
 * an InferenceCall, and copy the worker's answer back (JSON, or SSE chunk by chunk). The
 * inference routes are served by the inference edge, ahead of fastify (see inference-edge.ts);
 * fastify serves the gateway's own routes and forwards everything else as it is.
 */
export function buildHttpApp(options: HttpAppOptions): FastifyInstance {
  const observer = options.observer ?? NOOP_OBSERVER;
  const edge = inferenceEdge({
    service: options.service,
    observer,
    maxBodySize: options.maxBodySize,
    maxJsonDepth: options.maxJsonDepth ?? 64,
    log: options.log,
  });
  const app = Fastify({
    serverFactory: serverWith(edge, options),
    bodyLimit: options.maxBodySize,
    clientErrorHandler: answerClientError,
    logger: false,
  });
  app.decorateRequest('rawBody', undefined);
  observeRequests(app, observer);

  // Every body arrives as bytes and is forwarded as it is.
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

  // Everything else (GET /v1/models, /tokenize, ...) is forwarded as it is.
  app.all('/*', async (req, reply) => {
    reply.hijack();
    await answer(
      options.service,
      reply.raw,
      { method: req.method, url: req.url, headers: req.headers, body: req.rawBody, record: req.record },
      options.log,
    );
  });
  return app;
}

/**
 * The server fastify runs on, created as fastify creates its own (HTTPS when there are
 * certificates; fastify's timeouts: 72 s keep-alive, no request or socket timeout), with the
 * head size limit, and the inference edge taking its requests first.
 */
function serverWith(edge: InferenceEdge, options: HttpAppOptions): FastifyServerFactory {
  return (handler) => {
    const serve: RequestListener = (req, res) => {
      if (!edge(req, res)) handler(req, res);
    };
    const maxHeaderSize = options.maxHeaderSize ?? 16 * 1024;
    // The HTTPS server has the same API for everything the gateway uses (listen, close, connections).
    const server = options.tls
      ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key, maxHeaderSize }, serve)
      : createServer({ maxHeaderSize }, serve);
    server.keepAliveTimeout = 72_000;
    server.requestTimeout = 0;
    server.setTimeout(0);
    return server;
  };
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
}

/** Maps fastify's own errors (body limit, bad requests) to the catalogue. */
function fromFastifyError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const e = (err ?? {}) as FastifyLikeError;
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || e.statusCode === 413)
    return new GatewayError('body_too_large', { cause: err });
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500)
    return new GatewayError('bad_request', { message: e.message ?? 'Bad request.', cause: err });
  return toGatewayError(err);
}

function sendError(reply: FastifyReply, err: GatewayError, log?: HttpAppOptions['log']): FastifyReply {
  writeError(reply.hijack().raw, err, log);
  return reply;
}

/**
 * Opens the observer's record of a forwarded request when it arrives (so 400s and 413s count
 * too) and finishes it when the response is over; the gateway's own routes are not observed.
 * (The inference routes are observed by the inference edge.)
 */
function observeRequests(app: FastifyInstance, observer: RequestObserver): void {
  app.decorateRequest('record', undefined as unknown as RequestRecord);
  const noop = NOOP_OBSERVER.begin({ transport: 'http', method: 'GET', route: '', headers: {} });
  app.addHook('onRequest', (req, reply, done) => {
    if (req.routeOptions.url !== '/*') {
      req.record = noop;
      done();
      return;
    }
    const record = observer.begin({ transport: 'http', method: req.method, route: 'other', headers: req.headers });
    req.record = record;
    recordUntilClose(record, reply.raw, () => ({ user: undefined, requestBody: req.rawBody }));
    done();
  });
}
