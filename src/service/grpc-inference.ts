import { Metadata, type ServerWritableStream, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { readAll, type BodyStream } from '../upstream/body-stream.js';
import { GatewayError } from '../core/errors.js';
import {
  ChatCompletionResponse,
  CompletionResponse,
  EmbeddingsResponse,
  GenerateResponse,
  InferenceServiceService,
  type ChatCompletionRequest,
  type CompletionRequest,
  type EmbeddingsRequest,
  type ForwardRequest,
  type ForwardResponse,
  type GenerateRequest,
  type InferenceServiceServer,
} from '../gen/flockserve/v1/inference.js';
import {
  mustTellWorkerToStream,
  priorityOf,
  promptTextOf,
  requestIdOf,
  sessionKeyOf,
  streamAsked,
  wantsStream,
} from '../routes/rules.js';
import {
  PRIORITY_HEADER,
  REQUEST_ID_HEADER,
  SESSION_HEADER,
  STREAM_HEADER,
  type InferencePath,
} from '../routes/table.js';
import { checkedJson, checkedRoutes, tooDeep, valueExceedsDepth } from '../routes/validation.js';
import { forwardableHeaders, unsendable, type Headers } from '../upstream/client.js';
import { errorEventMessage, workerError, workerStreamError } from '../upstream/worker-error.js';
import { toGrpcError } from './grpc-errors.js';
import type { ApiKeys } from './auth.js';
import type { InferenceService } from './inference.js';
import { NOOP_OBSERVER, type RequestObserver, type RequestRecord } from './observer.js';
import { encoderOf, writesEncoded, type Encoded } from './grpc-encoded.js';
import { PacedWriter } from './paced-writer.js';
import type { SendTimeout } from './send-timeout.js';
import * as T from './translate.js';

export { ERROR_CODE_KEY, toGrpcError, type GrpcError } from './grpc-errors.js';

type JsonObject = Record<string, unknown>;

/**
 * How one JSON-bodied RPC maps onto its route of the route table (src/routes) and the proto
 * messages: the rest (schema and messages, stream rule, session key, routing text) is the
 * table's, as on HTTP.
 */
interface JsonRpc<Req, Res> {
  /** The route this call stands for, by whether it streams (Generate: /generate or /generate_stream). */
  path(streams: boolean): InferencePath;
  /** The message's own streaming switch. */
  stream(req: Req): boolean;
  request: Parameters<typeof T.toJson>[1];
  response: Parameters<typeof T.toProto>[1];
  /**
   * The response message with every field set (ts-proto's fromPartial): the encoder writes
   * whatever a field holds, so a key the worker left out (a delta's `role` after the first
   * chunk) would otherwise go out as the text "undefined".
   */
  complete(partial: JsonObject): Res;
}

const CHAT: JsonRpc<ChatCompletionRequest, ChatCompletionResponse> = {
  path: () => '/v1/chat/completions',
  stream: (r) => r.stream,
  request: T.CHAT_REQUEST,
  response: T.CHAT_RESPONSE,
  complete: (o) => ChatCompletionResponse.fromPartial(o as never),
};

const COMPLETION: JsonRpc<CompletionRequest, CompletionResponse> = {
  path: () => '/v1/completions',
  stream: (r) => r.stream,
  request: T.COMPLETION_REQUEST,
  response: T.COMPLETION_RESPONSE,
  complete: (o) => CompletionResponse.fromPartial(o as never),
};

const GENERATE: JsonRpc<GenerateRequest, GenerateResponse> = {
  path: (streams) => (streams ? '/generate_stream' : '/generate'),
  stream: (r) => r.stream,
  request: T.GENERATE_REQUEST,
  response: T.GENERATE_RESPONSE,
  complete: (o) => GenerateResponse.fromPartial(o as never),
};

const EMBEDDINGS: JsonRpc<EmbeddingsRequest, EmbeddingsResponse> = {
  path: () => '/v1/embeddings',
  stream: () => false,
  request: T.EMBEDDINGS_REQUEST,
  response: T.EMBEDDINGS_RESPONSE,
  complete: (o) => EmbeddingsResponse.fromPartial(o as never),
};

const encodeForward = encoderOf(InferenceServiceService.forward);

export interface InferenceHandlersOptions {
  /** Deepest JSON nesting accepted in the request built from a message (option max_json_depth); default 64. */
  readonly maxJsonDepth?: number;
  /** Cuts a stream whose client takes nothing for that long (client_send_timeout); default none. */
  readonly sendTimeout?: SendTimeout | undefined;
  /** The keys a client must present in its `authorization` metadata (option api_key); none: open. */
  readonly apiKeys?: ApiKeys | undefined;
}

/**
 * Takes the JSON objects of a worker's SSE events, as the service's check parsed them (no
 * second parse here), and hands each on; an error event inside the stream (the worker failed
 * after it began) ends the call with upstream_interrupted and the worker's message. `drain`
 * reads the body to its end (the events arrive as its chunks pass), reading on only when
 * `writable` says the client keeps up, and throws that error, or the body's own failure.
 */
function sseEvents(onObject: (o: JsonObject) => void): {
  onEvents: (events: unknown[]) => void;
  drain: (body: BodyStream, onChunk: (c: Buffer) => void, writable: () => Promise<void> | undefined) => Promise<void>;
} {
  let failure: GatewayError | undefined;
  const onEvents = (events: unknown[]): void => {
    for (const obj of events) {
      if (failure) return;
      if (typeof obj !== 'object' || obj === null) continue;
      const message = errorEventMessage(obj);
      if (message !== undefined) {
        failure = workerStreamError(message);
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
      // behind, and then until it has read. The pause stops the worker's socket at once: the
      // events of what the body would hold became messages for the call already (onEvents), so
      // a high-water mark held here is the client's backlog grown by ~80 messages.
      body
        .read({
          data: (chunk) => {
            onChunk(chunk);
            if (failure) return stop(failure);
            const wait = writable();
            if (!wait) return;
            body.halt();
            wait.then(() => body.resume(), stop);
          },
          end: () => (failure ? reject(failure) : resolve()),
          error: (err) => reject(failure ?? err),
        })
        .resume();
    });
  return { onEvents, drain };
}

export function createInferenceHandlers(
  service: InferenceService,
  observer: RequestObserver = NOOP_OBSERVER,
  options: InferenceHandlersOptions = {},
): InferenceServiceServer {
  const routes = checkedRoutes();
  const maxJsonDepth = options.maxJsonDepth ?? 64;
  /** Throws the 401 of a call without one of the API keys in its `authorization` metadata. */
  const admit = (call: Call): void => {
    const refused = options.apiKeys?.refusal(call.metadata['authorization']);
    if (refused) throw refused;
  };

  /**
   * Runs one JSON route for a call; `emit` writes each response, and a stream is read on only
   * when `writable` says the client keeps up.
   */
  async function run<Req, Res>(
    rpc: JsonRpc<Req, Res>,
    req: Req,
    call: Call,
    emit: (res: Res) => void,
    writable: () => Promise<void> | undefined = () => undefined,
  ): Promise<void> {
    const path = rpc.path(streamAsked(rpc.stream(req), call.metadata[STREAM_HEADER]));
    const record = observer.begin({
      transport: 'grpc',
      method: 'POST',
      route: path,
      headers: call.metadata,
      requestId: call.requestId,
    });
    await observed(record, call.signal, (seen) => answer(rpc, path, req, call, emit, writable, record, seen));
  }

  async function answer<Req, Res>(
    rpc: JsonRpc<Req, Res>,
    path: InferencePath,
    req: Req,
    call: Call,
    emit: (res: Res) => void,
    writable: () => Promise<void> | undefined,
    record: RequestRecord,
    seen: Seen,
  ): Promise<void> {
    admit(call);
    const check = routes.get(path)!;
    // The JSON the worker gets is checked as HTTP checks a body: the same schema, limit and messages.
    const built = T.toJson(req as unknown as JsonObject, rpc.request);
    const about = { user: stringField(built, 'user'), model: stringField(built, 'model') };
    seen(200, about);
    const json = checkedJson(built, check);
    if (valueExceedsDepth(json, maxJsonDepth)) throw tooDeep(maxJsonDepth);
    const route = check.route;
    const stream = wantsStream(route, json, call.metadata[STREAM_HEADER]);
    if (mustTellWorkerToStream(route, json, stream)) json['stream'] = true;
    const toRes = (o: JsonObject): Res => rpc.complete(T.toProto(o, rpc.response));
    const events = sseEvents((o) => emit(toRes(o)));
    const headers = forwardableHeaders(call.metadata, record.upstreamHeaders);
    headers['content-type'] = 'application/json';
    headers[REQUEST_ID_HEADER] = call.requestId;
    checkSendable('POST', path, headers);
    const reply = await service.dispatch({
      method: 'POST',
      path,
      headers,
      body: Buffer.from(JSON.stringify(json)),
      sessionKey: sessionKeyOf(json, call.metadata[SESSION_HEADER]),
      priority: priorityOf(call.metadata[PRIORITY_HEADER]),
      promptText: service.readsPrompt ? promptTextOf(json, route) : undefined,
      signal: call.signal,
      timeoutMs: call.timeoutMs(),
      onSseEvents: events.onEvents,
    });
    const isSse = (reply.headers['content-type'] ?? '').startsWith('text/event-stream');
    record.answered({
      worker: reply.worker,
      status: reply.status,
      stream: isSse,
      queueWaitMs: reply.queueWaitMs,
      headers: reply.headers,
    });
    seen(reply.status, about);
    if (reply.status >= 400) {
      const whole = await readAll(reply.body);
      record.chunk(whole);
      throw workerError(reply.status, reply.headers, whole);
    }
    if (isSse) {
      await events.drain(reply.body, (c) => record.chunk(c), writable);
    } else {
      const whole = await readAll(reply.body);
      record.chunk(whole);
      let parsed: unknown;
      try {
        parsed = JSON.parse(whole.toString('utf8'));
      } catch (err) {
        throw new GatewayError('upstream_malformed', {
          message: `worker ${reply.worker} answered with invalid JSON`,
          cause: err,
        });
      }
      // TGI's /generate may answer a list (one per input); each becomes one message.
      for (const o of Array.isArray(parsed) ? parsed : [parsed]) emit(toRes(o as JsonObject));
    }
  }

  /** `encode`: the method's response serializer (encoderOf); a stream writes the bytes. */
  function streaming<Req, Res>(rpc: JsonRpc<Req, Res>, encode: (res: Res) => Encoded<Res>) {
    return (call: ServerWritableStream<Req, Res>): void => {
      const c = callOf(call);
      const out = new PacedWriter(writesEncoded<Res>(call), c.signal, options.sendTimeout);
      run(
        rpc,
        call.request,
        c,
        (r) => out.write(encode(r)),
        () => out.writable(),
      ).then(
        () => call.end(),
        (err: unknown) => {
          if (c.signal.aborted) return;
          call.emit('error', toGrpcError(err));
        },
      );
    };
  }

  return {
    chatCompletion: streaming(CHAT, encoderOf(InferenceServiceService.chatCompletion)),
    completion: streaming(COMPLETION, encoderOf(InferenceServiceService.completion)),
    generate: streaming(GENERATE, encoderOf(InferenceServiceService.generate)),
    embeddings(call: ServerUnaryCall<EmbeddingsRequest, EmbeddingsResponse>, cb: sendUnaryData<EmbeddingsResponse>) {
      const c = callOf(call);
      let result: EmbeddingsResponse | undefined;
      run(EMBEDDINGS, call.request, c, (r) => (result = r)).then(
        () => cb(null, result),
        (err: unknown) => cb(toGrpcError(err)),
      );
    },
    forward(call: ServerWritableStream<ForwardRequest, ForwardResponse>) {
      const c = callOf(call);
      const out = new PacedWriter(writesEncoded<ForwardResponse>(call), c.signal, options.sendTimeout);
      const write = (part: ForwardResponse['part']): void => out.write(encodeForward({ part }));
      const req = call.request;
      const method = req.method || 'GET';
      const record = observer.begin({
        transport: 'grpc',
        method,
        route: 'other',
        headers: req.headers,
        requestId: c.requestId,
      });
      const go = (seen: Seen): Promise<void> =>
        (async () => {
          admit(c);
          if (!req.path.startsWith('/')) throw new GatewayError('bad_request', { message: 'path must start with /' });
          const headers = forwardableHeaders(req.headers, record.upstreamHeaders);
          headers[REQUEST_ID_HEADER] = c.requestId;
          checkSendable(method, req.path, headers);
          const reply = await service.dispatch({
            method,
            path: req.path,
            headers,
            body: req.body.length > 0 ? Buffer.from(req.body) : undefined,
            priority: priorityOf(c.metadata[PRIORITY_HEADER]),
            signal: c.signal,
            timeoutMs: c.timeoutMs(),
          });
          const stream = (reply.headers['content-type'] ?? '').startsWith('text/event-stream');
          record.answered({
            worker: reply.worker,
            status: reply.status,
            stream,
            queueWaitMs: reply.queueWaitMs,
            headers: reply.headers,
          });
          seen(reply.status, {});
          write({ $case: 'head', value: { status: reply.status, headers: reply.headers } });
          for await (const chunk of reply.body) {
            record.chunk(chunk);
            write({ $case: 'bodyChunk', value: chunk as Buffer });
            const wait = out.writable();
            if (wait) await wait;
          }
        })();
      observed(record, c.signal, go).then(
        () => call.end(),
        (err: unknown) => {
          if (!c.signal.aborted) call.emit('error', toGrpcError(err));
        },
      );
    },
  };
}

/**
 * A request built from gRPC input can carry what HTTP cannot (metadata values, a Forward call's
 * method, path and headers); it is refused here, as the client's fault, before undici sees it.
 */
function checkSendable(method: string, path: string, headers: Headers): void {
  const why = unsendable(method, path, headers);
  if (why === undefined) return;
  throw new GatewayError('bad_request', { message: `The request cannot be sent to a worker: ${why}.` });
}

/** One inference call as the handlers read it: its metadata, id, cancellation and deadline. */
interface Call {
  /** The client's metadata meant for the worker (text values; gRPC's own keys left out). */
  readonly metadata: Record<string, string>;
  readonly requestId: string;
  /** Aborted when the client cancels or its deadline passes (the reason says which). */
  readonly signal: AbortSignal;
  /** The client's deadline as ms left, or undefined without one. */
  timeoutMs(): number | undefined;
}

/**
 * Reads a call's metadata, request id and deadline, ties its cancellation to an AbortController,
 * and sends the request id back at once in the response headers.
 */
function callOf(call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>): Call {
  const metadata = forwardedMetadata(call.metadata.getMap());
  const requestId = requestIdOf(metadata[REQUEST_ID_HEADER]);
  const deadline = deadlineMs(call);
  const ac = new AbortController();
  call.on('cancelled', () =>
    ac.abort(
      deadline <= Date.now()
        ? new GatewayError('deadline_exceeded')
        : new GatewayError('client_closed', { message: 'The client cancelled the call.' }),
    ),
  );
  const head = new Metadata();
  head.set(REQUEST_ID_HEADER, requestId);
  call.sendMetadata(head);
  return {
    metadata,
    requestId,
    signal: ac.signal,
    timeoutMs: () => (Number.isFinite(deadline) ? Math.max(0, deadline - Date.now()) : undefined),
  };
}

/** The call's deadline in epoch ms; Infinity without one. */
function deadlineMs(call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>): number {
  const d = call.getDeadline();
  return d instanceof Date ? d.getTime() : d;
}

/**
 * Runs one call and finishes its record with the HTTP status it maps from: the worker's,
 * or the gateway error's, 502 for a worker failing after its answer began, the cancellation's
 * (499 client closed, 504 deadline) when the call was cancelled.
 */
async function observed(
  record: RequestRecord,
  signal: AbortSignal,
  body: (seen: Seen) => Promise<void>,
): Promise<void> {
  let status = 200;
  let about: About = {};
  let error: string | undefined;
  try {
    await body((s, a) => {
      status = s;
      about = a;
    });
  } catch (err) {
    if (err instanceof GatewayError) status = err.status;
    else if (status < 400) status = 502;
    error = err instanceof Error ? err.message : String(err);
    throw err;
  } finally {
    if (signal.aborted) status = signal.reason instanceof GatewayError ? signal.reason.status : 499;
    record.finish({ status, aborted: signal.aborted, user: about.user, model: about.model, error });
  }
}

/** What a call says about itself for telemetry (the request log's `user`, the metrics' `model`). */
interface About {
  readonly user?: string | undefined;
  readonly model?: string | undefined;
}

/** Reports the status the call maps to so far, and what it said about itself. */
type Seen = (status: number, about: About) => void;

function stringField(json: JsonObject, key: string): string | undefined {
  const v = json[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * gRPC metadata that may be meant for the worker (e.g. its API key); the rules read it, and
 * forwardableHeaders leaves out what is one hop's when the worker's request is built. gRPC's own
 * keys and binary values stay behind, and so do the headers that describe the gRPC request's
 * body rather than the JSON one the worker gets.
 */
function forwardedMetadata(map: Record<string, string | Buffer>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(map)) {
    if (k.startsWith('grpc-') || k.startsWith(':') || k === 'content-type' || k === 'user-agent') continue;
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}
