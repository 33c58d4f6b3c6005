/**
 * flockserve-sim: an ENGINE SIMULATOR, not an inference engine. A real HTTP server (node:http)
 * that answers like vLLM's OpenAI-compatible server and like TGI, with token timing from
 * EngineModel (continuous batching, prefill, KV cache), so FlockServe can be tried and tested
 * without GPUs. Fault knobs (simulator test knobs, not engine features): startup delay, error
 * rate and status, crash after N requests, hang (all routes, generation routes, or mid-stream),
 * malformed output, and text that loops.
 *
 * Routes: GET /health, GET /v1/models, POST /v1/chat/completions, /v1/completions,
 * /v1/embeddings, /v1/responses, GET /v1/responses/{id}, POST /v1/responses/{id}/cancel,
 * POST /generate, /generate_stream, GET /metrics, POST /v1/load_lora_adapter and
 * /v1/unload_lora_adapter (only with runtime LoRA updating, as vLLM), and the simulator-only extension
 * GET /sim/stats (counters plus the last 20 request bodies with path and headers, so tests can
 * check what reached the worker).
 */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { seededRandom } from '../core/clock.js';
import { promptBlockHashes } from '../core/hashing.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../runtime/system-clock.js';
import { EngineModel } from './engine-model.js';
import { generatedText, loopText, loopTokenText, tokenText } from './fake-text.js';
import type { EngineHandle, EngineProfile, EngineStats } from './engine-model.js';
import { BodyTooLargeError, asRecord, readBody, sendJson, sendTgiError, sendVllmError } from './http-util.js';
import { LoraAdapters } from './lora-adapters.js';
import type { LoraModule } from './lora-adapters.js';
import { LORA_ROUTES, refuseUnknownModel } from './lora-routes.js';
import { handleChatCompletions, handleCompletions, handleEmbeddings, handleModels } from './openai-routes.js';
import { renderMetrics } from './prometheus.js';
import { handleCancelResponse, handleCreateResponse, handleRetrieveResponse } from './responses-routes.js';
import { ResponseStore } from './responses-store.js';
import type { Generation, SimContext } from './sim-context.js';
import { handleGenerate, handleGenerateStream } from './tgi-routes.js';

export interface EngineSimulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /**
   * The served model name; default "sim". Requests may name any model (it is echoed back), unless
   * enableLora: then only this name or a loaded adapter's, as vLLM checks them.
   */
  modelName?: string;
  /** Overrides of DEFAULT_PROFILE. */
  profile?: Partial<EngineProfile>;
  /** /health answers 503 until this many ms after start (a model loading). Default 0. */
  startupDelayMs?: number;
  /** Fraction 0..1 of generation requests answered with an error (vLLM's or TGI's error JSON). Default 0. */
  errorRate?: number;
  /** HTTP status of the errors errorRate draws, e.g. 503 as a proxy in front of an engine answers. Default 500. */
  errorStatus?: number;
  /** Generation answers stop after their first token: a stream goes silent and stays open, a whole answer never comes. */
  hangMidStream?: boolean;
  /**
   * Generation answers fail after their first token as an engine error fails them: a stream ends
   * with vLLM's error event and [DONE], a whole answer is vLLM's error JSON.
   */
  errorMidStream?: boolean;
  /**
   * Generation answers are malformed: a stream's second event is cut JSON followed by the end of
   * the response; a non-streamed answer is a 200 whose JSON is cut short.
   */
  malformed?: boolean;
  /** The generated text is one line repeated ("All work and no play makes Jack a dull boy."), as a model stuck in a loop writes. */
  repetitive?: boolean;
  /**
   * The first N generation requests are served; request N+1 crashes the engine right after its
   * first token (mid-stream): `onCrash` runs (the CLI exits with code 1), or, in-process, every
   * socket is destroyed and the server closes.
   */
  crashAfter?: number;
  onCrash?: () => void;
  /** 'all': every route except /sim/stats accepts and never answers; 'generation': only generation routes. */
  hang?: false | 'all' | 'generation';
  /** Fixed time between tokens (ms): sets decodeStepMs and zeroes the per-sequence growth. */
  tokenIntervalMs?: number;
  /** Seeds the error-rate draws and the generated words. Default 0. */
  seed?: number;
  /** Default the system clock; timing of tokens and startup runs on it. */
  clock?: Clock;
  /** Largest request body, bytes. Default 16 MiB. */
  maxBodyBytes?: number;
  /**
   * Keep Responses API answers in this process's memory for previous_response_id and
   * GET /v1/responses/{id}, as vLLM does with VLLM_ENABLE_RESPONSES_API_STORE=1. Default false,
   * as vLLM's: then a request's `store` is ignored and every previous_response_id is a 404.
   */
  responsesStore?: boolean;
  /**
   * vLLM's --enable-lora: adapters can be loaded, /v1/models lists them, and a request's `model`
   * must be the served name or a loaded adapter's (else vLLM's 404). Default false.
   */
  enableLora?: boolean;
  /**
   * vLLM's --lora-modules: adapters loaded at start. Each path must be a directory holding
   * adapter_config.json; startEngineSimulator rejects with vLLM's message when one is not, or
   * when enableLora is off (vLLM does not start then either).
   */
  loraModules?: readonly LoraModule[];
  /**
   * vLLM's VLLM_ALLOW_RUNTIME_LORA_UPDATING: POST /v1/load_lora_adapter and
   * /v1/unload_lora_adapter exist. Default false: they are unknown routes (404).
   */
  allowRuntimeLora?: boolean;
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: unknown;
}

/** GET /sim/stats (simulator extension). */
export interface SimStats {
  readonly received: number;
  readonly completed: number;
  readonly aborted: number;
  readonly errors: number;
  readonly running: number;
  readonly waiting: number;
  readonly kvCacheUsage: number;
  /** Prompt tokens looked up in the prefix cache and found there. */
  readonly prefixCacheQueries: number;
  readonly prefixCacheHits: number;
  readonly ready: boolean;
  readonly lastRequests: readonly RecordedRequest[];
}

export interface EngineSimulator {
  readonly url: string;
  readonly port: number;
  readonly host: string;
  readonly model: EngineModel;
  stats(): SimStats;
  close(): Promise<void>;
}

const LAST_REQUESTS = 20;
const GENERATION_PATHS = new Set([
  '/v1/chat/completions',
  '/v1/completions',
  '/v1/responses',
  '/generate',
  '/generate_stream',
]);
const TGI_PATHS = new Set(['/generate', '/generate_stream']);
/** The routes whose `model` vLLM checks against the served name and the loaded adapters. */
const MODEL_PATHS = new Set(['/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/v1/responses']);

export async function startEngineSimulator(options: EngineSimulatorOptions = {}): Promise<EngineSimulator> {
  const host = options.host ?? '127.0.0.1';
  const clock = options.clock ?? systemClock;
  const modelName = options.modelName ?? 'sim';
  const seed = options.seed ?? 0;
  const random = seededRandom(seed);
  const errorRate = options.errorRate ?? 0;
  const errorStatus = options.errorStatus ?? 500;
  const hang = options.hang ?? false;
  const maxBodyBytes = options.maxBodyBytes ?? 16 * 1024 * 1024;
  const profile: Partial<EngineProfile> =
    options.tokenIntervalMs === undefined
      ? { ...options.profile }
      : { ...options.profile, decodeStepMs: options.tokenIntervalMs, decodeStepMsPerSeq: 0 };
  const loras = LoraAdapters.atStart(modelName, options.enableLora ?? false, options.loraModules ?? []);
  const adminRoutes: Readonly<Record<string, Route | undefined>> = options.allowRuntimeLora ? LORA_ROUTES : {};
  const model = new EngineModel(profile, clock);
  const readyAt = clock.now() + (options.startupDelayMs ?? 0);
  const inflight = new Set<EngineHandle>();
  /** The sequences of each answer (n choices, a list of prompts: several). */
  const byResponse = new WeakMap<ServerResponse, Set<EngineHandle>>();
  const lastRequests: RecordedRequest[] = [];
  let received = 0;
  let errors = 0;
  let generations = 0;
  let crashed = false;

  const isReady = () => clock.now() >= readyAt;

  const ctx: SimContext = {
    modelName,
    model,
    responseStore: options.responsesStore ? new ResponseStore() : undefined,
    loras,
    seed,
    tokenText: options.repetitive ? loopTokenText : (i) => tokenText(i, seed),
    generatedText: options.repetitive ? loopText : (n) => generatedText(n, seed),
    generate(res: ServerResponse, gen: Generation): void {
      generations++;
      const crashes = options.crashAfter !== undefined && generations === options.crashAfter + 1;
      const handle = model.submit({
        promptTokens: gen.promptTokens,
        maxTokens: gen.maxTokens,
        ...(gen.promptText === undefined ? {} : { promptBlocks: promptBlockHashes(gen.promptText) }),
        onToken: (i) => {
          if (res.destroyed) return;
          if (options.hangMidStream && i > 0) return; // silent from the second token on
          if (options.errorMidStream && i === 1) {
            gen.onError(new Error('EngineCore encountered an issue (simulated: --error-mid-stream)'));
            return;
          }
          if (options.malformed && i === 1 && res.headersSent) {
            // Half an event, then the end of the response: what a broken engine or proxy sends.
            res.end('data: {"id": "cmpl-broken", "choices": [{"delta": {"content": "trunc\n\n');
            return;
          }
          gen.onToken(i);
          if (crashes && i === 0) crash();
        },
        onDone: (reason) => {
          inflight.delete(handle);
          if (res.destroyed || res.writableEnded || options.hangMidStream) return;
          if (options.malformed && !res.headersSent) {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end('{"id": "cmpl-broken", "object": "chat.completion", "choices": [{"index": 0, "mess');
            return;
          }
          gen.onDone(reason);
        },
        onError: (e) => {
          inflight.delete(handle);
          errors++;
          if (!res.destroyed) gen.onError(e);
        },
      });
      inflight.add(handle);
      let sequences = byResponse.get(res);
      if (!sequences) {
        byResponse.set(res, (sequences = new Set()));
        const mine = sequences;
        // A client gone before the answer is complete cancels its sequences (a no-op for those
        // that finished): one listener for all of them, however many choices and prompts.
        res.on('close', () => {
          for (const h of mine) {
            inflight.delete(h);
            h.cancel();
          }
        });
      }
      sequences.add(handle);
    },
  };

  function crash(): void {
    if (crashed) return;
    crashed = true;
    if (options.onCrash) {
      // Let the bytes already written (the first token) leave before the process dies.
      setImmediate(options.onCrash);
      return;
    }
    abortEverything();
    server.close();
  }

  function abortEverything(): void {
    for (const h of inflight) h.cancel();
    inflight.clear();
    model.abortAll();
    server.closeAllConnections();
  }

  function record(req: IncomingMessage, path: string, body: unknown): void {
    lastRequests.push({ method: req.method ?? 'GET', path, headers: req.headers, body });
    if (lastRequests.length > LAST_REQUESTS) lastRequests.shift();
  }

  function stats(): SimStats {
    const s: EngineStats = model.stats();
    return {
      received,
      completed: s.completed,
      aborted: s.aborted,
      errors,
      running: s.running,
      waiting: s.waiting,
      kvCacheUsage: s.kvCacheUsage,
      prefixCacheQueries: s.prefixCacheQueries,
      prefixCacheHits: s.prefixCacheHits,
      ready: isReady(),
      lastRequests: [...lastRequests],
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const method = req.method ?? 'GET';
    if (method === 'GET' && path === '/sim/stats') return sendJson(res, 200, stats());
    if (hang === 'all' || (hang === 'generation' && GENERATION_PATHS.has(path))) return; // never answers
    const isTgi = TGI_PATHS.has(path);

    if (method === 'GET') {
      switch (path) {
        case '/health':
          if (isReady()) {
            res.writeHead(200).end();
          } else {
            sendVllmError(res, 503, 'The engine is starting (simulated startup delay).', 'ServiceUnavailableError');
          }
          return;
        case '/v1/models':
          record(req, path, null);
          return handleModels(ctx, res);
        case '/metrics':
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
          res.end(renderMetrics(modelName, model.stats()));
          return;
      }
    }

    const stored = storedResponseRoute(path);
    if (stored) {
      record(req, path, null);
      if (stored.method !== method)
        return sendJson(res, 405, { detail: 'Method Not Allowed' }, { allow: stored.method });
      return stored.handle(ctx, stored.id, res);
    }

    // Adapter loading is not a request to the engine: it counts as received by neither the
    // stats nor the error-rate draw.
    const admin = adminRoutes[path];
    const route = POST_ROUTES[path] ?? admin;
    if (route && method !== 'POST') {
      // Starlette's (vLLM's) answer to a route asked with another method; axum's (TGI's) has no body.
      if (isTgi) return void res.writeHead(405, { allow: 'POST', 'content-length': 0 }).end();
      return sendJson(res, 405, { detail: 'Method Not Allowed' }, { allow: 'POST' });
    }
    if (!route) {
      return sendJson(res, 404, { detail: 'Not Found' }); // FastAPI's (vLLM's) 404 body
    }

    let text: string;
    try {
      text = await readBody(req, maxBodyBytes);
    } catch (e) {
      if (e instanceof BodyTooLargeError) {
        errors++;
        return isTgi
          ? sendTgiError(res, 413, e.message, 'validation')
          : sendVllmError(res, 413, e.message, 'BadRequestError');
      }
      throw e;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      errors++;
      record(req, path, text);
      const message = `Invalid JSON body: ${(e as Error).message}`;
      return isTgi
        ? sendTgiError(res, 400, message, 'validation')
        : sendVllmError(res, 400, message, 'BadRequestError');
    }
    record(req, path, parsed);
    const body = asRecord(parsed);
    if (!body) {
      errors++;
      const message = 'The request body must be a JSON object.';
      return isTgi
        ? sendTgiError(res, 400, message, 'validation')
        : sendVllmError(res, 400, message, 'BadRequestError');
    }
    if (admin) {
      admin(ctx, body, res);
      if (res.statusCode >= 400) errors++;
      return;
    }
    if (path !== '/v1/embeddings') received++;
    if (MODEL_PATHS.has(path) && refuseUnknownModel(ctx, body, res)) {
      errors++;
      return;
    }
    if (path !== '/v1/embeddings' && errorRate > 0 && random() < errorRate) {
      errors++;
      const message = `Simulated engine error ${errorStatus} (flockserve-sim --error-rate).`;
      return isTgi
        ? sendTgiError(res, errorStatus, message, 'generation')
        : sendVllmError(
            res,
            errorStatus,
            message,
            errorStatus === 503 ? 'ServiceUnavailableError' : 'InternalServerError',
          );
    }
    route(ctx, body, res);
    if (res.statusCode >= 400 && res.headersSent) errors++;
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      errors++;
      sendVllmError(res, 500, `Simulator failure: ${(e as Error).message}`, 'InternalServerError');
    });
  });
  server.keepAliveTimeout = 65_000; // longer than common client/proxy idle timeouts, as uvicorn recommends behind proxies

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${port}`,
    port,
    host,
    model,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        abortEverything();
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

type Route = (ctx: SimContext, body: Record<string, unknown>, res: ServerResponse) => void;

const POST_ROUTES: Record<string, Route | undefined> = {
  '/v1/chat/completions': handleChatCompletions,
  '/v1/completions': handleCompletions,
  '/v1/embeddings': handleEmbeddings,
  '/generate': handleGenerate,
  '/generate_stream': handleGenerateStream,
  // TGI's compat route, where huggingface_hub's InferenceClient.text_generation posts: /generate, or its stream when the body says so.
  '/': handleGenerate,
  '/v1/responses': handleCreateResponse,
};

/** A route on a stored response: the method it answers, its handler, and the id from the path. */
interface StoredResponseRoute {
  readonly method: 'GET' | 'POST';
  readonly handle: (ctx: SimContext, id: string, res: ServerResponse) => void;
  readonly id: string;
}

/** GET /v1/responses/{id} and POST /v1/responses/{id}/cancel (no body: vLLM reads none); undefined for other paths. */
function storedResponseRoute(path: string): StoredResponseRoute | undefined {
  const m = /^\/v1\/responses\/([^/]+)(\/cancel)?$/.exec(path);
  if (!m?.[1]) return undefined;
  let id = m[1];
  try {
    id = decodeURIComponent(id);
  } catch {
    // A malformed escape stays as sent: the id is then unknown, or not a 'resp' id.
  }
  return m[2]
    ? { method: 'POST', handle: handleCancelResponse, id }
    : { method: 'GET', handle: handleRetrieveResponse, id };
}
