/**
 * The SIMULATED upstream: what the inference service sends to a `sim://NAME` worker reaches
 * that SimWorker's engine model, and comes back as a streamed SSE answer, as an engine's would
 * through undici: the headers at once (a streaming engine sends them before it generates), one
 * `data:` event at the first token (so the service's answer check sees a valid event and time
 * to first token is the first chunk), the final event and `data: [DONE]` when the last token is
 * out. Two chunks per request, not one per token: the simulation's cost stays in the engines.
 *
 * Failures look as they would on the wire: a worker that is gone resets the connection before
 * the headers (ECONNRESET: the service retries on another worker), a worker that vanishes with
 * the request in flight fails the body (the client gets an error), and the optional fault rate
 * answers 503 before the first byte (retried; counts against the worker for outlier detection).
 */
import { promptBlockHashes } from '../../core/hashing.js';
import { BodyStream } from '../../upstream/body-stream.js';
import { afterHeadersError, beforeHeadersError } from '../../upstream/errors.js';
import type { Headers, Upstream, UpstreamRequest, UpstreamResponse } from '../../upstream/types.js';
import { URL_PREFIX, connectionReset, type SimWorker } from './provisioner.js';

/** What a simulated request asks of an engine; the prompt's block hashes are computed at its first send. */
export interface SimJobSpec {
  readonly promptTokens: number;
  readonly outputTokens: number;
  /** The prompt as the engine reads it (its prefix cache keys on its blocks); none → no cache lookup. */
  readonly engineText?: string | undefined;
  /** No other prompt shares a block with this one: no lookup (it could not hit), its tokens counted as looked up. */
  readonly uniquePrompt?: boolean;
}

export interface SimUpstreamOptions {
  /** The worker behind a name, while it exists. */
  readonly worker: (name: string) => SimWorker | undefined;
  /** Fraction of attempts a worker answers 503 before the first byte; 0 (default) never. */
  readonly requestFailureRate?: number;
  /** Uniform [0, 1) source for the fault draws (needed with a failure rate). */
  readonly random?: () => number;
}

/** The request header that names a registered job (the body stays empty: nothing is serialised per request). */
const JOB_HEADER = 'x-sim-job';
const SSE_HEADERS: Headers = Object.freeze({ 'content-type': 'text/event-stream' }) as Headers;
const JSON_HEADERS: Headers = Object.freeze({ 'content-type': 'application/json' }) as Headers;
const FIRST_EVENT = Buffer.from('data: {"choices":[{"index":0,"text":" "}]}\n\n');
const LAST_EVENTS = Buffer.from('data: {"choices":[{"index":0,"text":"","finish_reason":"stop"}]}\n\ndata: [DONE]\n\n');
const OVERLOADED = Buffer.from('{"error":{"message":"simulated failure","type":"server_error"}}');

interface Job {
  readonly spec: SimJobSpec;
  blocks: readonly number[] | undefined;
}

export class SimUpstream implements Upstream {
  readonly #options: SimUpstreamOptions;
  readonly #jobs = new Map<string, Job>();
  #nextId = 0;
  #requestFailures = 0;
  #uniquePromptTokens = 0;

  constructor(options: SimUpstreamOptions) {
    if ((options.requestFailureRate ?? 0) > 0 && !options.random)
      throw new Error('a request failure rate needs a random source');
    this.#options = options;
  }

  /** Simulated 503s answered so far. */
  get requestFailures(): number {
    return this.#requestFailures;
  }

  /** Prompt tokens of unique prompts sent to engines: looked up in their caches, as it were, and never found. */
  get uniquePromptTokens(): number {
    return this.#uniquePromptTokens;
  }

  /** Registers a request's job; send the returned headers with it, and forget() them once it ended. */
  register(spec: SimJobSpec): Headers {
    const id = String(++this.#nextId);
    this.#jobs.set(id, { spec, blocks: undefined });
    return { [JOB_HEADER]: id };
  }

  /** The request ended: its job is dropped. */
  unregister(headers: Headers): void {
    const id = headers[JOB_HEADER];
    if (id !== undefined) this.#jobs.delete(id);
  }

  send(url: string, req: UpstreamRequest): Promise<UpstreamResponse> {
    const worker = url.startsWith(URL_PREFIX) ? this.#options.worker(url.slice(URL_PREFIX.length)) : undefined;
    if (!worker) return Promise.reject(beforeHeadersError(connectionReset(`nothing answers at ${url}`), url));
    const id = req.headers[JOB_HEADER];
    const job = id === undefined ? undefined : this.#jobs.get(id);
    if (!job) return Promise.reject(new Error(`simulated request without a registered job (header ${JOB_HEADER})`));
    const rate = this.#options.requestFailureRate ?? 0;
    if (rate > 0 && this.#options.random!() < rate) {
      this.#requestFailures++;
      return Promise.resolve({ status: 503, headers: JSON_HEADERS, body: BodyStream.whole(OVERLOADED) });
    }
    const signal = req.signal;
    const spec = job.spec;
    if (spec.uniquePrompt) this.#uniquePromptTokens += spec.promptTokens;
    else if (spec.engineText !== undefined) job.blocks ??= promptBlockHashes(spec.engineText);
    // The engine's events arrive on the clock, never inside run(): the handle is set before any.
    const running: { handle?: { cancel(): void } } = {};
    const body = new BodyStream({ pause() {}, resume() {}, abort: () => running.handle?.cancel() });
    const onAbort = (): void => {
      running.handle?.cancel();
      body.fail(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    const over = (): void => signal?.removeEventListener('abort', onAbort);
    running.handle = worker.run({
      promptTokens: spec.promptTokens,
      maxTokens: spec.outputTokens,
      outputTokens: spec.outputTokens,
      ...(job.blocks === undefined ? {} : { promptBlocks: job.blocks }),
      onToken: (i) => {
        if (i === 0) body.push(FIRST_EVENT);
      },
      onDone: () => {
        over();
        body.push(LAST_EVENTS);
        body.finish();
      },
      fail: (err) => {
        over();
        body.fail(afterHeadersError(err, worker.name));
      },
    });
    signal?.addEventListener('abort', onAbort, { once: true });
    return Promise.resolve({ status: 200, headers: SSE_HEADERS, body });
  }

  forget(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#jobs.clear();
    return Promise.resolve();
  }
}
