import {
  Metadata,
  status as GrpcStatus,
  type ServerWritableStream,
  type ServerUnaryCall,
  type sendUnaryData,
} from '@grpc/grpc-js';
import type { BodyStream } from '../upstream/body-stream.js';
import { GatewayError } from '../core/errors.js';
import type {
  ChatCompletionRequest,
  ChatCompletionResponse,
  CompletionRequest,
  CompletionResponse,
  EmbeddingsRequest,
  EmbeddingsResponse,
  ForwardRequest,
  ForwardResponse,
  GenerateRequest,
  GenerateResponse,
  InferenceServiceServer,
} from '../gen/flockserve/v1/inference.js';
import type { InferenceReply, InferenceService } from './inference.js';
import { NOOP_OBSERVER, type RequestObserver, type RequestRecord } from './observer.js';
import * as T from './translate.js';
import { PacedWriter } from './paced-writer.js';
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
  _res?: Res;
}

const CHAT: JsonRoute<ChatCompletionRequest, ChatCompletionResponse> = {
  path: () => '/v1/chat/completions',
  streaming: (r) => r.stream,
  request: T.CHAT_REQUEST,
  response: T.CHAT_RESPONSE,
  sessionKey: (r) => r.user,
  check: (r) => (r.messages.length === 0 ? 'messages must be a non-empty list' : undefined),
};

const COMPLETION: JsonRoute<CompletionRequest, CompletionResponse> = {
  path: () => '/v1/completions',
  streaming: (r) => r.stream,
  request: T.COMPLETION_REQUEST,
  response: T.COMPLETION_RESPONSE,
  sessionKey: (r) => r.user,
  check: (r) => (r.prompt === undefined ? 'prompt is required' : undefined),
};

const GENERATE: JsonRoute<GenerateRequest, GenerateResponse> = {
  path: (r) => (r.stream ? '/generate_stream' : '/generate'),
  streaming: (r) => r.stream,
  request: T.GENERATE_REQUEST,
  response: T.GENERATE_RESPONSE,
  check: (r) => (r.inputs === '' ? 'inputs is required' : undefined),
};

const EMBEDDINGS: JsonRoute<EmbeddingsRequest, EmbeddingsResponse> = {
  path: () => '/v1/embeddings',
  streaming: () => false,
  request: T.EMBEDDINGS_REQUEST,
  response: T.EMBEDDINGS_RESPONSE,
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
 * error. `drain` reads the body to its end (the events arrive as its chunks pass), reading on
 * only when `writable` says the client keeps up, and throws that error, or the body's own failure.
 */
function sseEvents(onObject: (o: JsonObject) => void): {
  onEvents: (events: unknown[]) => void;
  drain: (body: BodyStream, onChunk: (c: Buffer) => void, writable: () => Promise<void> | undefined) => Promise<void>;
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
  const drain = (
    body: BodyStream,
    onChunk: (c: Buffer) => void,
    writable: () => Promise<void> | undefined,
  ): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const stop = (err: unknown): void => {
        body.destroy();
        reject(err);
      };
      // Read as the HTTP edge reads (answer.ts): flowing, paused only while the client is
      // behind, and then until it has read (the paused body pauses the worker's socket).
      body
        .read({
          data: (chunk) => {
            onChunk(chunk);
            if (failure) return stop(failure);
            const wait = writable();
            if (!wait) return;
            body.pause();
            wait.then(() => body.resume(), stop);
          },
          end: () => (failure ? reject(failure) : resolve()),
          error: (err) => reject(failure ?? err),
        })
        .resume();
    });
  return { onEvents, drain };
}

function isGrpcError(e: unknown): e is GrpcError {
  return typeof e === 'object' && e !== null && 'code' in e && 'details' in e && !(e instanceof Error);
}

export function createInferenceHandlers(
  service: InferenceService,
  observer: RequestObserver = NOOP_OBSERVER,
): InferenceServiceServer {
  /**
   * Runs one JSON route for a server-streaming call; `emit` writes each response, and a stream
   * is read on only when `writable` says the client keeps up.
   */
  async function run<Req, Res>(
    route: JsonRoute<Req, Res>,
    req: Req,
    signal: AbortSignal,
    headers: Record<string, string>,
    emit: (res: Res) => void,
    writable: () => Promise<void> | undefined = () => undefined,
  ): Promise<void> {
    const record = observer.begin({ transport: 'grpc', method: 'POST', route: route.path(req), headers });
    await observed(record, signal, route.sessionKey?.(req), (seen) =>
      answer(route, req, signal, headers, emit, writable, record, seen),
    );
  }

  async function answer<Req, Res>(
    route: JsonRoute<Req, Res>,
    req: Req,
    signal: AbortSignal,
    headers: Record<string, string>,
    emit: (res: Res) => void,
    writable: () => Promise<void> | undefined,
    record: RequestRecord,
    seen: (status: number) => void,
  ): Promise<void> {
    const problem = route.check?.(req);
    if (problem) throw new GatewayError('bad_request', { message: problem });
    const json = T.toJson(req as unknown as JsonObject, route.request);
    if (route.streaming(req) && route.path(req).startsWith('/v1/')) json['stream'] = true;
    const toRes = (o: JsonObject): Res => T.toProto(o, route.response) as Res;
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
    record.answered({ worker: reply.worker, status: reply.status, stream, queueWaitMs: reply.queueWaitMs });
    seen(reply.status);
    if (reply.status >= 400) throw await workerError(reply);
    if (stream) {
      await events.drain(reply.body, (c) => record.chunk(c), writable);
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
      const out = new PacedWriter<Res>(call, ac.signal);
      run(
        route,
        call.request,
        ac.signal,
        forwardedMetadata(call.metadata.getMap()),
        (r) => out.write(r),
        () => out.writable(),
      ).then(
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
      const out = new PacedWriter<ForwardResponse>(call, ac.signal);
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
          out.write({ part: { $case: 'head', value: { status: reply.status, headers: reply.headers } } });
          for await (const chunk of reply.body) {
            record.chunk(chunk);
            out.write({ part: { $case: 'bodyChunk', value: chunk as Buffer } });
            const wait = out.writable();
            if (wait) await wait;
          }
        })();
      observed(record, ac.signal, undefined, go).then(
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
  user: string | undefined,
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
    record.finish({ status, aborted: signal.aborted, user, error });
  }
}

/** gRPC metadata that is meant for the worker (e.g. its API key); gRPC's own keys stay behind. */
function forwardedMetadata(map: Record<string, string | Buffer>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(map)) {
    if (k.startsWith('grpc-') || k.startsWith(':') || k === 'content-type' || k === 'te' || k === 'user-agent')
      continue;
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}
