import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { GatewayError, toGatewayError, toOpenAIError } from '../core/errors.js';
import type { InferenceReply, InferenceService } from '../service/inference.js';
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
  /** Serve HTTPS with this certificate and key. */
  readonly tls?: TlsFiles | undefined;
  readonly log?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The body exactly as the client sent it; forwarded unchanged. */
    rawBody: Buffer | undefined;
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
    logger: false,
    // Bodies are forwarded as sent, so the validator must not coerce or strip anything.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
  });
  app.decorateRequest('rawBody', undefined);

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
  registerLegacyRoutes(app, options.plane);

  for (const route of INFERENCE_ROUTES) {
    app.post(route.url, {
      schema: route.schema,
      preValidation: async (req) => {
        req.body = parseJson(req.rawBody);
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

  // Everything else (GET /v1/models, /tokenize, /metrics of the engine, ...) is forwarded as it is.
  app.all('/*', async (req, reply) => proxy(req, reply, options, req.rawBody, {}));
  return app;
}

function headerOf(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
}

function parseJson(raw: Buffer | undefined): unknown {
  if (!raw || raw.length === 0) throw new GatewayError('invalid_json', { message: 'The request body is empty.' });
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new GatewayError('invalid_json', {
      message: `The request body is not valid JSON: ${(err as Error).message}`,
      cause: err,
    });
  }
}

async function proxy(
  req: FastifyRequest,
  reply: FastifyReply,
  options: HttpAppOptions,
  body: Buffer | undefined,
  pick: { sessionKey?: string | undefined; promptText?: string | undefined },
): Promise<FastifyReply> {
  // A client that goes away cancels its wait in the queue and its upstream request.
  const abort = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) abort.abort();
  });
  const upstream = await options.service.dispatch({
    method: req.method,
    path: req.url,
    headers: forwardableHeaders(req.headers),
    body,
    signal: abort.signal,
    ...pick,
  });
  reply.code(upstream.status).headers(upstream.headers);
  if ((upstream.headers['content-type'] ?? '').startsWith('text/event-stream')) {
    return reply.send(Readable.from(sseWithErrorTail(upstream, options)));
  }
  return reply.send(await readWhole(upstream));
}

/** A non-streamed answer is read whole, so a worker that dies mid-body still gets the client a clean 502. */
async function readWhole(upstream: InferenceReply): Promise<Buffer> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of upstream.body) chunks.push(c as Buffer);
  } catch (err) {
    throw new GatewayError('upstream_error', {
      message: `worker ${upstream.worker} failed while sending its answer`,
      cause: err,
    });
  }
  return Buffer.concat(chunks);
}

/** Copies SSE bytes through; if the worker fails after bytes went out, the stream ends with an error event, never silently. */
async function* sseWithErrorTail(upstream: InferenceReply, options: HttpAppOptions): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of upstream.body) yield chunk as Buffer;
  } catch (err) {
    const g = new GatewayError('upstream_error', {
      message: `worker ${upstream.worker} failed mid-stream`,
      cause: err,
    });
    options.log?.warn({ worker: upstream.worker, err: String(err) }, 'stream ended by a worker failure');
    yield Buffer.from(`data: ${JSON.stringify(toOpenAIError(g))}\n\n`);
  }
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
  if (reply.sent || reply.raw.headersSent) {
    reply.raw.destroy();
    return reply;
  }
  if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
  return reply.code(err.status).header('content-type', 'application/json').send(toOpenAIError(err));
}
