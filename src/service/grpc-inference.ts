import {
  Metadata,
  status as GrpcStatus,
  type ServerWritableStream,
  type ServerUnaryCall,
  type sendUnaryData,
} from '@grpc/grpc-js';
import type { BodyStream } from '../upstream/body-stream.js';
import { forwardableHeaders } from '../upstream/client.js';
import { GatewayError } from '../core/errors.js';
import {
  ChatCompletionResponse,
  CompletionResponse,
  EmbeddingsResponse,
  GenerateResponse,
  type ChatCompletionRequest,
  type CompletionRequest,
  type EmbeddingsRequest,
  type ForwardRequest,
  type ForwardResponse,
  type GenerateRequest,
  type InferenceServiceServer,
} from '../gen/flockserve/v1/inference.js';
import type { InferenceReply, InferenceService } from './inference.js';
import { NOOP_OBSERVER, type RequestObserver, type RequestRecord } from './observer.js';
import * as T from './translate.js';
import { promptTextOf } from './prompt.js';

type JsonObject = Record<string, unknown>;

/** How one JSON-bodied RPC maps onto a worker's HTTP route. */
interface JsonRoute<Req, Res> {
  path(req: Req): string;
  streaming(req: Req): boolean;
  request: Parameters<typeof T.toJson>[1];
  response: Parameters<typeof T.toProto>[1];
  sessionKey?(req: Req): string | undefined;
  check?(req: Req): string | undefined;
  /**
   * The response message with every field set (ts-proto's fromPartial): the encoder writes
   * whatever a field holds, so a key the worker left out (a delta's `role` after the first
   * chunk) would otherwise go out as the text "undefined".
   */
  complete(partial: JsonObject): Res;
}

const CHAT: JsonRoute<ChatCompletionRequest, ChatCompletionResponse> = {
  path: () => '/v1/chat/completions',
  streaming: (r) => r.stream,
  request: T.CHAT_REQUEST,
  response: T.CHAT_RESPONSE,
  complete: (o) => ChatCompletionResponse.fromPartial(o as never),
  sessionKey: (r) => r.user,
  check: (r) => (r.messages.length === 0 ? 'messages must be a non-empty list' : undefined),
};

const COMPLETION: JsonRoute<CompletionRequest, CompletionResponse> = {
  path: () => '/v1/completions',
  streaming: (r) => r.stream,
  request: T.COMPLETION_REQUEST,
  response: T.COMPLETION_RESPONSE,
  complete: (o) => CompletionResponse.fromPartial(o as never),
  sessionKey: (r) => r.user,
  check: (r) => (r.prompt === undefined ? 'prompt is required' : undefined),
};

const GENERATE: JsonRoute<GenerateRequest, GenerateResponse> = {
  path: (r) => (r.stream ? '/generate_stream' : '/generate'),
  streaming: (r) => r.stream,
  request: T.GENERATE_REQUEST,
  response: T.GENERATE_RESPONSE,
  complete: (o) => GenerateResponse.fromPartial(o as never),
  check: (r) => (r.inputs === '' ? 'inputs is required' : undefined),
};

const EMBEDDINGS: JsonRoute<EmbeddingsRequest, EmbeddingsResponse> = {
  path: () => '/v1/embeddings',
  streaming: () => false,
  request: T.EMBEDDINGS_REQUEST,
  response: T.EMBEDDINGS_RESPONSE,
  complete: (o) => EmbeddingsResponse.fromPartial(o as never),
  sessionKey: (r) => r.user,
  check: (r) => (r.input === undefined ? 'input is required' : undefined),
};

/** HTTP status of a worker's answer → gRPC status (per the gRPC HTTP-to-status mapping, extended). */
export function grpcStatusOfHttp(status: number): GrpcStatus {
  if (status === 400 || status === 422) return GrpcStatus.INVALID_ARGUMENT;
  if (status === 401) return GrpcStatus.UNAUTHENTICATED;
  if (status === 403) return GrpcStatus.PERMISSION_DENIED;
  if (status === 404) return GrpcStatus.NOT_FOUND;
  if (status === 413 || status === 429) return GrpcStatus.RESOURCE_EXHAUSTED;
  if (status === 501) return GrpcStatus.UNIMPLEMENTED;
  if (status === 502 || status === 503) return GrpcStatus.UNAVAILABLE;
  if (status === 504) return GrpcStatus.DEADLINE_EXCEEDED;
  return GrpcStatus.INTERNAL;
}

export interface GrpcError {
  code: GrpcStatus;
  details: string;
  metadata?: Metadata;
}

/** Trailing metadata key that carries the catalogue code (e.g. unknown_worker), as OpenAI errors carry `code`. */
export const ERROR_CODE_KEY = 'flockserve-error-code';

export function toGrpcError(err: unknown): GrpcError {
  if (err instanceof GatewayError) {
    const metadata = new Metadata();
    metadata.set(ERROR_CODE_KEY, err.code);
    return { code: err.grpcCode as GrpcStatus, details: err.message, metadata };
  }
  return { code: GrpcStatus.INTERNAL, details: err instanceof Error ? err.message : String(err) };
}

async function readAll(body: BodyStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c);
  return Buffer.concat(chunks);
}

/** An error answer from a worker (OpenAI, vLLM or TGI shape) → gRPC error with its message. */
async function workerError(reply: InferenceReply): Promise<GrpcError> {
  const text = (await readAll(reply.body)).toString('utf8');
  let message = text.slice(0, 1000);
  try {
    const parsed = JSON.parse(text) as { error?: unknown; message?: unknown };
    const e = parsed.error;
    if (typeof e === 'string') message = e;
    else if (e && typeof e === 'object' && typeof (e as JsonObject)['message'] === 'string')
      message = (e as JsonObject)['message'] as string;
    else if (typeof parsed.message === 'string') message = parsed.message;
  } catch {
    /* not JSON: keep the text */
  }
  return { code: grpcStatusOfHttp(reply.status), details: `worker ${reply.worker}: ${message}` };
}

/**
 * Takes the JSON objects of a worker's SSE events, as the service's check parsed them (no
 * second parse here), and hands each on; an `error` object inside the stream becomes a gRPC
 * error. `drain` reads the body to its end (the events arrive as its chunks pass) and throws
 * that error, or the body's own failure.
 */
function sseEvents(onObject: (o: JsonObject) => void): {
  onEvents: (events: unknown[]) => void;
  drain: (body: BodyStream, onChunk: (c: Buffer) => void) => Promise<void>;
} {
  let failure: GrpcError | undefined;
  const onEvents = (events: unknown[]): void => {
    for (const obj of events) {
      if (failure) return;
      if (typeof obj !== 'object' || obj === null) continue;
      const e = (obj as JsonObject)['error'];
      if (
        e !== undefined &&
        (obj as JsonObject)['choices'] === undefined &&
        (obj as JsonObject)['token'] === undefined
      ) {
        const msg = typeof e === 'string' ? e : ((e as JsonObject)['message'] as string | undefined);
        failure = { code: GrpcStatus.UNAVAILABLE, details: `worker stream error: ${msg ?? JSON.stringify(e)}` };
        return;
      }
      onObject(obj as JsonObject);
    }
  };
  const drain = async (body: BodyStream, onChunk: (c: Buffer) => void): Promise<void> => {
    for await (const chunk of body) {
      onChunk(chunk);
      if (failure) break;
    }
    if (failure) {
      body.destroy();
      throw failure;
    }
  };
  return { onEvents, drain };
}

function isGrpcError(e: unknown): e is GrpcError {
  return typeof e === 'object' && e !== null && 'code' in e && 'details' in e && !(e instanceof Error);
}

export function createInferenceHandlers(
  service: InferenceService,
  observer: RequestObserver = NOOP_OBSERVER,
): InferenceServiceServer {
  /** Runs one JSON route for a server-streaming call; `emit` writes each response. */
  async function run<Req, Res>(
    route: JsonRoute<Req, Res>,
    req: Req,
    signal: AbortSignal,
    headers: Record<string, string>,
    emit: (res: Res) => void,
  ): Promise<void> {
    const record = observer.begin({ transport: 'grpc', method: 'POST', route: route.path(req), headers });
    const model = (req as { model?: unknown }).model;
    const about = {
      user: route.sessionKey?.(req),
      model: typeof model === 'string' && model !== '' ? model : undefined,
    };
    await observed(record, signal, about, (seen) => answer(route, req, signal, headers, emit, record, seen));
  }

  async function answer<Req, Res>(
    route: JsonRoute<Req, Res>,
    req: Req,
    signal: AbortSignal,
    headers: Record<string, string>,
    emit: (res: Res) => void,
    record: RequestRecord,
    seen: (status: number) => void,
  ): Promise<void> {
    const problem = route.check?.(req);
    if (problem) throw new GatewayError('bad_request', { message: problem });
    const json = T.toJson(req as unknown as JsonObject, route.request);
    if (route.streaming(req) && route.path(req).startsWith('/v1/')) json['stream'] = true;
    const toRes = (o: JsonObject): Res => route.complete(T.toProto(o, route.response));
    const events = sseEvents((o) => emit(toRes(o)));
    const reply = await service.dispatch({
      method: 'POST',
      path: route.path(req),
      headers: { ...headers, ...record.upstreamHeaders, 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify(json)),
      sessionKey: route.sessionKey?.(req),
      promptText: promptTextOf(json),
      signal,
      onSseEvents: events.onEvents,
    });
    const stream = (reply.headers['content-type'] ?? '').startsWith('text/event-stream');
    record.answered({
      worker: reply.worker,
      status: reply.status,
      stream,
      queueWaitMs: reply.queueWaitMs,
      headers: reply.headers,
    });
    seen(reply.status);
    if (reply.status >= 400) throw await workerError(reply);
    if (stream) {
      await events.drain(reply.body, (c) => record.chunk(c));
    } else {
      const whole = await readAll(reply.body);
      record.chunk(whole);
      const text = whole.toString('utf8');
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw { code: GrpcStatus.UNAVAILABLE, details: `worker ${reply.worker} answered with invalid JSON` };
      }
      // TGI's /generate may answer a list (one per input); each becomes one message.
      for (const o of Array.isArray(parsed) ? parsed : [parsed]) emit(toRes(o as JsonObject));
    }
  }

  function streaming<Req, Res>(route: JsonRoute<Req, Res>) {
    return (call: ServerWritableStream<Req, Res>): void => {
      const ac = new AbortController();
      call.on('cancelled', () => ac.abort());
      run(route, call.request, ac.signal, forwardedMetadata(call.metadata.getMap()), (r) => call.write(r)).then(
        () => call.end(),
        (err: unknown) => {
          if (ac.signal.aborted) return;
          call.emit('error', isGrpcError(err) ? err : toGrpcError(err));
        },
      );
    };
  }

  return {
    chatCompletion: streaming(CHAT),
    completion: streaming(COMPLETION),
    generate: streaming(GENERATE),
    embeddings(call: ServerUnaryCall<EmbeddingsRequest, EmbeddingsResponse>, cb: sendUnaryData<EmbeddingsResponse>) {
      const ac = new AbortController();
      call.on('cancelled', () => ac.abort());
      let result: EmbeddingsResponse | undefined;
      run(EMBEDDINGS, call.request, ac.signal, forwardedMetadata(call.metadata.getMap()), (r) => (result = r)).then(
        () => cb(null, result),
        (err: unknown) => cb(isGrpcError(err) ? err : toGrpcError(err)),
      );
    },
    forward(call: ServerWritableStream<ForwardRequest, ForwardResponse>) {
      const ac = new AbortController();
      call.on('cancelled', () => ac.abort());
      const req = call.request;
      const method = req.method || 'GET';
      const record = observer.begin({ transport: 'grpc', method, route: 'other', headers: req.headers });
      const go = (seen: (status: number) => void): Promise<void> =>
        (async () => {
          if (!req.path.startsWith('/')) throw new GatewayError('bad_request', { message: 'path must start with /' });
          const reply = await service.dispatch({
            method,
            path: req.path,
            headers: { ...req.headers, ...record.upstreamHeaders },
            body: req.body.length > 0 ? Buffer.from(req.body) : undefined,
            signal: ac.signal,
          });
          const stream = (reply.headers['content-type'] ?? '').startsWith('text/event-stream');
          record.answered({ worker: reply.worker, status: reply.status, stream, queueWaitMs: reply.queueWaitMs });
          seen(reply.status);
          call.write({ part: { $case: 'head', value: { status: reply.status, headers: reply.headers } } });
          for await (const chunk of reply.body) {
            record.chunk(chunk);
            call.write({ part: { $case: 'bodyChunk', value: chunk as Buffer } });
          }
        })();
      observed(record, ac.signal, {}, go).then(
        () => call.end(),
        (err: unknown) => {
          if (!ac.signal.aborted) call.emit('error', toGrpcError(err));
        },
      );
    },
  };
}

/**
 * Runs one call and finishes its record with the HTTP status it maps from: the worker's,
 * or the gateway error's, 502 for a worker failing after its answer began, 499 when
 * the client cancelled.
 */
async function observed(
  record: RequestRecord,
  signal: AbortSignal,
  about: { readonly user?: string | undefined; readonly model?: string | undefined },
  body: (seen: (status: number) => void) => Promise<void>,
): Promise<void> {
  let status = 200;
  let error: string | undefined;
  try {
    await body((s) => (status = s));
  } catch (err) {
    if (err instanceof GatewayError) status = err.status;
    else if (status < 400) status = 502;
    error = isGrpcError(err) ? err.details : err instanceof Error ? err.message : String(err);
    throw err;
  } finally {
    if (signal.aborted) status = 499;
    record.finish({ status, aborted: signal.aborted, user: about.user, model: about.model, error });
  }
}

/**
 * gRPC metadata that is meant for the worker (e.g. its API key). gRPC's own keys stay behind, and
 * so do the headers that describe the gRPC request's body rather than the JSON one the worker
 * gets: a content-length (Go's HTTP/2 clients send one) would not match it, and an
 * accept-encoding would let the worker compress an answer the gateway has to read.
 */
function forwardedMetadata(map: Record<string, string | Buffer>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(map)) {
    if (k.startsWith('grpc-') || k.startsWith(':') || k === 'content-type' || k === 'user-agent') continue;
    if (k === 'accept-encoding') continue;
    if (typeof v === 'string') out[k] = v;
  }
  return forwardableHeaders(out);
}
