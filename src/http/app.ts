import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyServerFactory,
  type onRequestHookHandler,
} from 'fastify';
import {
  createServer,
  STATUS_CODES,
  type IncomingHttpHeaders,
  type RequestListener,
  type ServerOptions,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { OPTIONS } from '../config/options.js';
import type { Clock } from '../core/clock.js';
import { GatewayError, toGatewayError, toOpenAIError } from '../core/errors.js';
import { priorityOf, requestIdOf } from '../routes/rules.js';
import { apiOfPath, inferenceRoute, pathOf, PRIORITY_HEADER, REQUEST_ID_HEADER } from '../routes/table.js';
import { systemClock } from '../runtime/system-clock.js';
import type { TlsFiles } from '../runtime/tls.js';
import { ClientConnectionStats, limitConnections } from '../service/connections.js';
import type { ApiKeys } from '../service/auth.js';
import type { InferenceService } from '../service/inference.js';
import { NOOP_OBSERVER, type RequestObserver, type RequestRecord } from '../service/observer.js';
import { legacyStatusJson, type ControlPlane } from '../service/status.js';
import { answer, recordUntilClose, writeError } from './answer.js';
import { BodyTimeouts } from './body-timeouts.js';
import { CorsPolicy } from './cors.js';
import { SendTimeout } from '../service/send-timeout.js';
import { InTurns } from './in-turns.js';
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
  /** The keys a client must present for the inference and engine routes (option api_key); none: open. */
  readonly apiKeys?: ApiKeys | undefined;
  /** Origins whose pages may call the gateway from a browser (option cors_allow_origins); none by default. */
  readonly corsAllowOrigins?: readonly string[];
  readonly log?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** Told about every inference request (metrics, tracing, request log). */
  readonly observer?: RequestObserver;
  /** The gateway's metrics in Prometheus text format, served on GET /metrics. */
  readonly metricsText?: () => Promise<string>;
  /** How long and how many clients may hold the listener; default: the options' defaults. */
  readonly clientLimits?: ClientLimits;
  /** Counts connections and what the limits cut (read by the metrics). */
  readonly connections?: ClientConnectionStats;
  /** Runs the body timeouts' sweeps; default the system clock. */
  readonly clock?: Clock;
}

/** Bounds on what a client may hold of the HTTP listener, in ms (0: no bound), as the options name them. */
export interface ClientLimits {
  /** client_header_timeout: the request head must be in within this. */
  readonly headerTimeoutMs: number;
  /** client_body_timeout: longest silence while a body arrives. */
  readonly bodyTimeoutMs: number;
  /** client_request_timeout: the whole request, head and body, must be in within this. */
  readonly requestTimeoutMs: number;
  /** client_send_timeout: longest time an answer may go with its client taking none of it. */
  readonly sendTimeoutMs: number;
  /** keepalive_timeout: an idle connection is closed after this. */
  readonly keepAliveTimeoutMs: number;
  /** max_connections: open connections at once; more are closed when accepted. */
  readonly maxConnections: number;
}

/** The options' defaults. */
export const DEFAULT_CLIENT_LIMITS: ClientLimits = {
  headerTimeoutMs: OPTIONS.client_header_timeout.default * 1000,
  bodyTimeoutMs: OPTIONS.client_body_timeout.default * 1000,
  requestTimeoutMs: OPTIONS.client_request_timeout.default * 1000,
  sendTimeoutMs: OPTIONS.client_send_timeout.default * 1000,
  keepAliveTimeoutMs: OPTIONS.keepalive_timeout.default * 1000,
  maxConnections: OPTIONS.max_connections.default,
};

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
  const limits = options.clientLimits ?? DEFAULT_CLIENT_LIMITS;
  const connections = options.connections ?? new ClientConnectionStats();
  const cuts = new InTurns();
  const bodyTimeouts = new BodyTimeouts<ServerResponse>({
    clock: options.clock ?? systemClock,
    timeoutMs: limits.bodyTimeoutMs,
    bytesRead: (res) => res.req.socket.bytesRead,
    // A request answered already (a 413 before its body, a 400 for a client that hung up) is
    // node's to finish: it reads and drops the rest of the body, or the connection is gone.
    complete: (res) => res.req.complete || res.writableEnded || res.destroyed,
    onTimeout: (res) => {
      connections.timeouts.body++;
      cuts.add(() =>
        answerSlowClient(
          res,
          new GatewayError('client_timeout', {
            message: `The request body stopped arriving: no byte for ${limits.bodyTimeoutMs / 1000} s (client_body_timeout).`,
          }),
        ),
      );
    },
  });
  const sendTimeout = new SendTimeout(
    options.clock ?? systemClock,
    limits.sendTimeoutMs,
    () => connections.timeouts.answer++,
  );
  const edge = inferenceEdge({
    service: options.service,
    observer,
    maxBodySize: options.maxBodySize,
    maxJsonDepth: options.maxJsonDepth ?? 64,
    log: options.log,
    bodyTimeouts,
    sendTimeout,
    apiKeys: options.apiKeys,
  });
  const app = Fastify({
    serverFactory: serverWith(edge, bodyTimeouts, limits, connections, options),
    bodyLimit: options.maxBodySize,
    clientErrorHandler: (err, socket) => {
      // Timeouts come by the thousand when slow clients connected together: answered in turns.
      if ((err as { code?: string }).code === 'ERR_HTTP_REQUEST_TIMEOUT')
        cuts.add(() => answerClientError(err, socket, connections));
      else answerClientError(err, socket, connections);
    },
    logger: false,
    // `req.id` is the request's id by the inference routes' rule: the client's, else a new one.
    requestIdHeader: false,
    genReqId: (req) => requestIdOf(single(req.headers[REQUEST_ID_HEADER])),
  });
  app.addHook('onClose', (_app, done) => {
    bodyTimeouts.close();
    done();
  });
  app.decorateRequest('rawBody', undefined);
  observeRequests(app, observer);

  // Every body arrives as bytes and is forwarded as it is.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    req.rawBody = body as Buffer;
    done(null, body);
  });

  app.setErrorHandler((err: unknown, req, reply) => sendError(reply, fromFastifyError(err), req.id, options.log));
  // fastify routes the common methods only: another one (PROPFIND, PURGE, ...) lands here.
  app.setNotFoundHandler((req, reply) => {
    const path = pathOf(req.url);
    return inferenceRoute(path)
      ? methodNotAllowed(reply, req.method, path, req.id)
      : sendError(reply, new GatewayError('not_found'), req.id);
  });

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

  // Everything else (GET /v1/models, /tokenize, ...) is forwarded as it is, but for an inference
  // route asked with another method: the edge serves their POSTs, and no engine serves the rest.
  app.all('/*', { onRequest: refuseWithoutKey(options.apiKeys) }, async (req, reply) => {
    const path = pathOf(req.url);
    if (inferenceRoute(path)) return methodNotAllowed(reply, req.method, path, req.id);
    let priority: number;
    try {
      priority = priorityOf(single(req.headers[PRIORITY_HEADER]));
    } catch (e) {
      return sendError(reply, toGatewayError(e), req.id);
    }
    reply.hijack();
    await answer(
      options.service,
      reply.raw,
      {
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: req.rawBody,
        record: req.record,
        requestId: req.id,
        sendTimeout,
        errorShape: apiOfPath(path),
        priority,
      },
      options.log,
    );
  });
  return app;
}

/**
 * The server fastify runs on, created as fastify creates its own (HTTPS when there are
 * certificates; no socket inactivity timeout), with the head size limit, the client limits,
 * and the inference edge taking its requests first. The head and whole-request timeouts are
 * node's (headersTimeout, requestTimeout), checked every quarter of the shorter one; the body
 * timeout is BodyTimeouts'; the connection cap is limitConnections'.
 */
function serverWith(
  edge: InferenceEdge,
  bodyTimeouts: BodyTimeouts<ServerResponse>,
  limits: ClientLimits,
  connections: ClientConnectionStats,
  options: HttpAppOptions,
): FastifyServerFactory {
  return (handler) => {
    const cors = CorsPolicy.of(options.corsAllowOrigins ?? []);
    const serve: RequestListener = (req, res) => {
      // An absolute-form target (RFC 9112 §3.2.2: proxies send one) is served by its path.
      if (req.url !== undefined && req.url.charCodeAt(0) !== 0x2f) req.url = originForm(req.url);
      if (cors?.handle(req, res)) return;
      if (edge(req, res)) return;
      // The gateway's own routes and forwarded paths: their bodies are read by fastify.
      if (hasBody(req.headers)) {
        const watch = bodyTimeouts.watch(res);
        res.once('close', () => bodyTimeouts.stop(watch));
      }
      handler(req, res);
    };
    // node takes whole milliseconds only.
    const [headerMs, requestMs] = [limits.headerTimeoutMs, limits.requestTimeoutMs].map(Math.round) as [number, number];
    const checked = [headerMs, requestMs].filter((ms) => ms > 0);
    const serverOptions: ServerOptions = {
      maxHeaderSize: options.maxHeaderSize ?? 16 * 1024,
      // node refuses a head timeout longer than the whole request's.
      headersTimeout: requestMs > 0 ? Math.min(headerMs, requestMs) : headerMs,
      requestTimeout: requestMs,
      // node keeps an idle connection 1 s longer than this (its keep-alive buffer).
      keepAliveTimeout: Math.round(limits.keepAliveTimeoutMs),
      // How often node checks the two (its default, 30 s, would cut a 60 s head at up to 90 s).
      connectionsCheckingInterval: Math.max(10, Math.round(Math.min(30_000, ...checked.map((ms) => ms / 4)))),
    };
    // The HTTPS server has the same API for everything the gateway uses (listen, close, connections).
    const server = options.tls
      ? createHttpsServer({ ...serverOptions, cert: options.tls.cert, key: options.tls.key }, serve)
      : createServer(serverOptions, serve);
    server.setTimeout(0);
    // A client that waits for leave to send its body (Expect: 100-continue) is told no before
    // it sends one larger than the limit, rather than invited to upload what is then dropped.
    server.on('checkContinue', (req, res) => {
      if (Number(req.headers['content-length']) > options.maxBodySize) {
        writeError(res, new GatewayError('body_too_large'), requestIdOf(single(req.headers[REQUEST_ID_HEADER])));
        return;
      }
      res.writeContinue();
      serve(req, res);
    });
    limitConnections(server, 'http', limits.maxConnections, connections);
    return server;
  };
}

/** A request that says it has a body (a length other than 0, or chunks). */
function hasBody(headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length'];
  return (length !== undefined && length !== '0') || headers['transfer-encoding'] !== undefined;
}

/**
 * Answers a request whose client is too slow (or whose bytes are not HTTP) with `err` and
 * closes the connection once the answer is out; a response already under way is cut instead.
 */
function answerSlowClient(res: ServerResponse, err: GatewayError): void {
  if (res.writableEnded || res.destroyed) return;
  if (res.headersSent) {
    res.socket?.destroy();
    return;
  }
  // node closes a connection after a response that says so, once it is written.
  res.setHeader('connection', 'close');
  writeError(res, err, requestIdOf(single(res.req.headers[REQUEST_ID_HEADER])));
}

/**
 * Answers what fails in node's HTTP layer before or while a request is read: an oversized head
 * gets 431, a head or a whole request that did not arrive within client_header_timeout or
 * client_request_timeout 408, anything else that is not HTTP 400, all OpenAI-shaped, then the
 * connection closes. A request whose head was read already is answered through its response
 * (so the observer records it); one whose response has begun is cut. A request read whole
 * keeps its own answer: the error is the next request's on the connection, said after it. A
 * client that closed its side mid-request gets no answer.
 */
function answerClientError(err: Error & { code?: string }, socket: Socket, connections: ClientConnectionStats): void {
  // The response of the request being read on this connection, if its head was read: node's own
  // clientError handling looks at the same field to decide whether it may still answer.
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') connections.timeouts[inFlight ? 'request' : 'headers']++;
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  // A client that closed its side in the middle of a request (node finishes the parser at the
  // end of its input: HPE_INVALID_EOF_STATE) reads no answer, and a connection this side has
  // ended already (after its 408) has nothing left to say: both are closed at once, without an
  // answer and without the error (destroying with it formats its stack, which costs more than
  // the rest). A request whose head was read is recorded as its client's going (499).
  if (err.code === 'HPE_INVALID_EOF_STATE' || !socket.writable) {
    socket.destroy();
    return;
  }
  const g =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new GatewayError('headers_too_large')
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new GatewayError('client_timeout', {
            message: inFlight
              ? 'The request did not arrive in time (client_request_timeout).'
              : 'The request head did not arrive in time (client_header_timeout).',
          })
        : new GatewayError('bad_request', { message: 'The request is not valid HTTP.' });
  if (inFlight && !inFlight.req.complete) {
    answerSlowClient(inFlight, g);
    return;
  }
  if (answering.has(socket)) return; // the parser reports each later read of this connection again
  answering.add(socket);
  const body = JSON.stringify(toOpenAIError(g));
  const answerOnSocket = (): void => {
    if (socket.destroyed || !socket.writable) return;
    socket.end(
      `HTTP/1.1 ${g.status} ${STATUS_CODES[g.status] ?? ''}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `X-Request-Id: ${requestIdOf(undefined)}\r\nConnection: close\r\n\r\n${body}`,
    );
  };
  // A request read whole is still being answered: the error is the next one's on this connection
  // (pipelined after it), and is said after that answer, in order.
  if (inFlight) inFlight.once('finish', answerOnSocket);
  else answerOnSocket();
}

/** Connections whose bytes stopped being HTTP, answered once (or to be, after the request before). */
const answering = new WeakSet<Socket>();

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

function sendError(
  reply: FastifyReply,
  err: GatewayError,
  requestId: string,
  log?: HttpAppOptions['log'],
): FastifyReply {
  writeError(reply.hijack().raw, err, requestId, log);
  return reply;
}

/** `http://host/path?q` as `/path?q`; any other target (`*`, or not a URL) as it is. */
function originForm(target: string): string {
  if (!/^https?:\/\//i.test(target)) return target;
  try {
    const u = new URL(target);
    return u.pathname + u.search;
  } catch {
    return target;
  }
}

/** An inference route asked with another method than POST. */
function methodNotAllowed(reply: FastifyReply, method: string, path: string, requestId: string): FastifyReply {
  reply.raw.setHeader('allow', 'POST');
  const message = `Invalid method for URL (${method} ${path}): it takes POST.`;
  return sendError(reply, new GatewayError('method_not_allowed', { message }), requestId);
}

/**
 * The forwarded routes' key check, as an onRequest hook: it runs before fastify reads the body,
 * so a client without a key costs no more than its head (as on the inference edge).
 */
function refuseWithoutKey(apiKeys: ApiKeys | undefined): onRequestHookHandler {
  return (req, reply, done) => {
    const refused = apiKeys?.refusal(single(req.headers.authorization));
    if (refused) sendError(reply, refused, req.id);
    else done();
  };
}

function single(v: string | string[] | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/**
 * Opens the observer's record of a forwarded request when it arrives (so 400s and 413s count
 * too) and finishes it when the response is over; the gateway's own routes are not observed.
 * (The inference routes are observed by the inference edge.)
 */
function observeRequests(app: FastifyInstance, observer: RequestObserver): void {
  app.decorateRequest('record', undefined as unknown as RequestRecord);
  const noop = NOOP_OBSERVER.begin({ transport: 'http', method: 'GET', route: '', headers: {}, requestId: '' });
  app.addHook('onRequest', (req, reply, done) => {
    // Every answer carries the request's id (the forwarded and error answers write it themselves).
    reply.header(REQUEST_ID_HEADER, req.id);
    if (req.routeOptions.url !== '/*') {
      req.record = noop;
      done();
      return;
    }
    const record = observer.begin({
      transport: 'http',
      method: req.method,
      route: 'other',
      headers: req.headers,
      requestId: req.id,
    });
    req.record = record;
    recordUntilClose(record, reply.raw, () => ({ user: undefined, requestBody: req.rawBody }));
    done();
  });
}
