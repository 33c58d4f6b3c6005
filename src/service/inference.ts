import type { Admission, Lease } from '../core/admission.js';
import { Cancellation, type CancelSignal } from '../core/cancellation.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { GatewayError, toGatewayError } from '../core/errors.js';
import { LinkedList, type Linked } from '../core/linked-list.js';
import { ResponseHomes } from '../core/response-homes.js';
import type { Worker } from '../core/types.js';
import { adapterBodyOf, adapterChangeOf, mayStoreResponse, storedResponseOf } from '../routes/rules.js';
import { systemClock } from '../runtime/system-clock.js';
import type { BodyStream } from '../upstream/body-stream.js';
import type { AdapterSync } from './adapters.js';
import { bodyKind, checkedAnswer } from '../upstream/checked-answer.js';
import { isRetryable, lowLevelCode } from '../upstream/errors.js';
import type { Headers, Upstream } from '../upstream/types.js';
import { EngineStreamError } from '../upstream/worker-error.js';

/** What every inference entry point (HTTP route or gRPC method) turns into. */
export interface InferenceCall {
  readonly method: string;
  readonly path: string;
  readonly headers: Headers;
  readonly body?: Buffer | undefined;
  /** Signals for affinity policies; either may be missing. */
  readonly sessionKey?: string | undefined;
  readonly promptText?: string | undefined;
  /** Its place among the requests waiting for a slot: lower goes first (PRIORITY_HEADER); default 0. */
  readonly priority?: number | undefined;
  /** Aborted when the client goes away: the upstream request is cancelled with it. */
  readonly signal: CancelSignal;
  /**
   * The client's deadline as time left, in ms (gRPC's grpc-timeout): it bounds the wait for a
   * slot and the upstream request, and when it passes the request ends with deadline_exceeded
   * (the upstream request cancelled, the slot freed). Undefined: the client set none.
   */
  readonly timeoutMs?: number | undefined;
  /**
   * For an SSE answer: receives the JSON of its checked events as they pass (see checkedAnswer's
   * onEvents), so an adapter that needs objects (gRPC) reuses the service's parse.
   */
  readonly onSseEvents?: ((events: unknown[]) => void) | undefined;
}

export interface InferenceReply {
  readonly status: number;
  readonly headers: Headers;
  /**
   * The worker's body, checked on its way (see checkedAnswer); it flows once resumed, and the
   * worker's slot is released when it closes. A failure after the headers errors it with a
   * GatewayError (upstream_interrupted, upstream_stalled, upstream_malformed, shutting_down).
   */
  readonly body: BodyStream;
  readonly worker: string;
  /** Time spent waiting in the gateway queue for worker slots, over all attempts. */
  readonly queueWaitMs: number;
}

export interface InferenceServiceOptions {
  readonly admission: Admission;
  readonly upstream: Upstream;
  readonly queueTimeoutMs: number;
  /** Further attempts, on another worker where there is one, after a failure before the first byte. */
  readonly maxRetries: number;
  /** Wait before the first retry; doubles for each further one (option retry_backoff). Default 0. */
  readonly retryBackoffMs?: number;
  /** From the first send to the last byte (option request_timeout); 0 or undefined means none. */
  readonly requestTimeoutMs?: number;
  /** Ends a stream whose generated text repeats one line more than this (option repetition_guard); 0 off. */
  readonly repetitionGuard?: number;
  /** Default the system clock; backoff and the request timeout run on it. */
  readonly clock?: Clock;
  readonly onRetry?: (worker: string, reason: string) => void;
  /** A worker slot was given back (a draining worker may now be empty). */
  readonly onRelease?: () => void;
  /** The outcome of one attempt on one worker, for outlier detection. Client aborts are not reported. */
  readonly onOutcome?: (worker: Worker, ok: boolean) => void;
  /** An answer failed after its headers (the client got an error tail or 502/504). */
  readonly onMidStreamFailure?: (worker: string, err: GatewayError) => void;
  /** The repetition guard ended a stream. */
  readonly onRepetitionGuard?: (worker: string) => void;
  /**
   * A request named a stored answer (`id`) whose worker no longer serves (scaled in, failed,
   * draining, ejected): it is balanced as any other, and an engine that keeps its answers in its
   * own memory will not know it.
   */
  readonly onHomeGone?: (id: string, worker: string) => void;
  /** Where a run-time LoRA adapter change goes: to every worker (see AdapterSync); without it, to one, as any request. */
  readonly adapters?: AdapterSync | undefined;
}

/** Counters the telemetry reads (reliabilityStats, the simulation's report); all only grow. */
export interface InferenceStats {
  requests: number;
  retries: number;
  /** Answers that failed after their headers, by error code. */
  midStreamFailures: number;
  repetitionGuardTrips: number;
  /** Requests cut at the shutdown deadline. */
  abortedAtShutdown: number;
}

/** Statuses that mean "this worker could not take it": safe to retry elsewhere before any byte went out. */
const RETRYABLE_STATUS = new Set([502, 503]);

/** One request's cancellation: the client's signal, its deadline, the request timeout and shutdown, in one. */
interface Active extends Linked<Active> {
  readonly abort: Cancellation;
  /** When the request timeout cuts it (clock ms); Infinity without one. */
  readonly deadline: number;
  /** The timer of the client's own deadline, when it set one. */
  readonly clientDeadline: TimerHandle | undefined;
  readonly unlink: () => void;
}

/**
 * The one dispatch path behind the Inference RPCs and the HTTP adapters: wait for a worker
 * slot, send, retry before the first byte (on another worker, with backoff), check the answer
 * on its way, and tie the slot's release to the answer's end.
 */
export class InferenceService {
  readonly #options: InferenceServiceOptions;
  readonly #clock: Clock;
  /**
   * The requests running, oldest first. Every request gets the same timeout, so this is also
   * deadline order: one timer, armed for the oldest deadline, serves them all, instead of a
   * timer (and its closures) per request.
   */
  readonly #active = new LinkedList<Active>();
  /** Which worker wrote each stored Responses API answer: later turns that name one go there. */
  readonly #homes = new ResponseHomes();
  #deadlineTimer: TimerHandle | undefined;
  readonly #stats: InferenceStats = {
    requests: 0,
    retries: 0,
    midStreamFailures: 0,
    repetitionGuardTrips: 0,
    abortedAtShutdown: 0,
  };

  constructor(options: InferenceServiceOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
  }

  /**
   * Whether a call's `promptText` is read (the balancer routes on the prompt): the edges build
   * it only then, as joining a long history costs a copy of it per request.
   */
  get readsPrompt(): boolean {
    return this.#options.admission.readsPrompt;
  }

  get totalRequests(): number {
    return this.#stats.requests;
  }

  get stats(): Readonly<InferenceStats> {
    return { ...this.#stats };
  }

  /** Requests between dispatch and the end of their answer. */
  get inFlight(): number {
    return this.#active.size;
  }

  /**
   * Ends every request still running with `err` (shutdown, after drain_timeout): streams get
   * their error tail, whole answers a 503, instead of a cut connection.
   */
  abortAll(err: GatewayError): number {
    // A copy: an abort may end its request (and leave the list) at once.
    const all = [...this.#active];
    for (const a of all) a.abort.abort(err);
    this.#stats.abortedAtShutdown += all.length;
    return all.length;
  }

  /**
   * Not an async function of its own: the attempts' promise is the call's, one promise and one
   * await fewer per request on the way to the answer.
   */
  dispatch(call: InferenceCall): Promise<InferenceReply> {
    this.#stats.requests++;
    const adapterChange = this.#options.adapters && adapterChangeOf(call.method, call.path);
    if (adapterChange) return this.#changeAdapter(this.#options.adapters!, adapterChange, call);
    return this.#attempts(call, this.#track(call.signal, call.timeoutMs));
  }

  /** A LoRA adapter change, made on every worker serving; the request timeout and shutdown cut it as any request. */
  async #changeAdapter(adapters: AdapterSync, kind: 'load' | 'unload', call: InferenceCall): Promise<InferenceReply> {
    const { name, path } = adapterBodyOf(call.body);
    const active = this.#track(call.signal, call.timeoutMs);
    try {
      const reply = await adapters.change(
        { kind, name, path },
        { headers: call.headers, body: call.body, signal: active.abort },
      );
      return { ...reply, queueWaitMs: 0 };
    } catch (err) {
      throw call.signal.aborted
        ? new GatewayError('client_closed', { cause: err })
        : active.abort.aborted
          ? abortReason(active.abort)
          : err;
    } finally {
      this.#untrack(active);
    }
  }

  async #attempts(call: InferenceCall, active: Active): Promise<InferenceReply> {
    try {
      // The workers this request failed on; made at its first retry (few requests retry).
      let tried: Set<string> | undefined;
      const signal = active.abort;
      let queueWaitMs = 0;
      const stored = storedResponseOf(call.method, call.path, call.body);
      const home = stored === undefined ? undefined : this.#homeOf(stored);
      const stores = mayStoreResponse(call.method, call.path);
      for (let attempt = 0; ; attempt++) {
        if (attempt > 0) await this.#backoff(attempt, signal);
        // Whatever ends the request (the client, its deadline, the request timeout) ends its wait.
        const wanted = {
          ctx: { sessionKey: call.sessionKey, promptText: call.promptText, exclude: tried, home },
          timeoutMs: this.#options.queueTimeoutMs,
          signal,
          priority: call.priority,
        };
        let lease = this.#options.admission.tryAcquire(wanted);
        if (!lease) {
          try {
            lease = await this.#options.admission.acquire(wanted);
          } catch (err) {
            throw signal.aborted ? abortReason(signal) : err;
          }
        }
        const worker = lease.worker;
        queueWaitMs += lease.waitedMs;
        const retriesLeft = attempt < this.#options.maxRetries;
        let res;
        try {
          res = await this.#options.upstream.send(worker.url ?? '', {
            method: call.method,
            path: call.path,
            headers: call.headers,
            body: call.body,
            signal,
            worker: worker.name,
          });
        } catch (err) {
          this.#release(lease);
          if (call.signal.aborted) throw new GatewayError('client_closed', { cause: err });
          if (signal.aborted) throw abortReason(signal);
          // The upstream names its failures from the catalogue (src/upstream/errors.ts); one that
          // is the request's fault (undici refused to send it) is no failure of the worker's.
          const failure = toGatewayError(err);
          if (failure.status >= 500) this.#options.onOutcome?.(worker, false);
          if (retriesLeft && isRetryable(failure)) {
            tried = this.#retry(tried, worker, lowLevelCode(failure.cause));
            continue;
          }
          throw failure;
        }
        if (res.status >= 500) this.#options.onOutcome?.(worker, false);
        if (RETRYABLE_STATUS.has(res.status) && retriesLeft) {
          res.body.discard();
          this.#release(lease);
          tried = this.#retry(tried, worker, `status ${res.status}`);
          continue;
        }
        const kind = bodyKind(call.method, res.status, res.headers);
        const body = checkedAnswer(res.body, {
          kind,
          worker: worker.name,
          repetitionLimit: this.#options.repetitionGuard ?? 0,
          openaiStream: call.path.startsWith('/v1/'),
          onRepetition: () => {
            this.#stats.repetitionGuardTrips++;
            this.#options.onRepetitionGuard?.(worker.name);
          },
          mapError: (err) => this.#bodyError(err, call.signal, signal),
          onEvents: call.onSseEvents,
          onResponseId: stores && res.status < 300 ? (id) => this.#homes.remember(id, worker.name) : undefined,
          // A stream's first chunk is its first token; a whole answer's first byte comes at its end.
          onFirstChunk: kind === 'sse' ? lease.firstToken : lease.prefilled,
        });
        this.#settleWhenClosed(body, lease, active, res.status < 500, call.signal);
        return { status: res.status, headers: res.headers, body, worker: worker.name, queueWaitMs };
      }
    } catch (err) {
      this.#untrack(active);
      throw err;
    }
  }

  /** The worker that stored answer `id`, if remembered; says so when it no longer serves. */
  #homeOf(id: string): string | undefined {
    const home = this.#homes.homeOf(id);
    if (home !== undefined && !this.#options.admission.servesBound(home)) this.#options.onHomeGone?.(id, home);
    return home;
  }

  /** Counts a retry and returns `tried` with the worker added. */
  #retry(tried: Set<string> | undefined, worker: Worker, reason: string): Set<string> {
    const set = tried ?? new Set<string>();
    set.add(worker.name);
    this.#stats.retries++;
    this.#options.onRetry?.(worker.name, reason);
    return set;
  }

  /** retry_backoff × 2^(attempt−1): 50 ms, 100 ms, 200 ms ... for the default 50 ms. */
  #backoff(attempt: number, signal: CancelSignal): Promise<void> {
    const ms = (this.#options.retryBackoffMs ?? 0) * 2 ** (attempt - 1);
    if (ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        timer.cancel();
        reject(abortReason(signal));
      };
      const timer = this.#clock.setTimer(ms, () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * A failure of the worker's body after the headers: the upstream names its own failures from
   * the catalogue (src/upstream/errors.ts); a cancellation is named by what cancelled it.
   */
  #bodyError(err: unknown, client: CancelSignal, own: CancelSignal): GatewayError {
    if (client.aborted) return new GatewayError('client_closed', { cause: err });
    if (own.aborted) {
      const reason = abortReason(own);
      // The request timeout is a 504 before the headers; after them it is a stalled answer.
      return reason.code === 'upstream_timeout'
        ? new GatewayError('upstream_stalled', { message: reason.message, cause: err })
        : reason;
    }
    return toGatewayError(err);
  }

  /**
   * Releases the slot when the answer closes, reports the attempt's outcome (a clean end is a
   * success unless the status was 5xx; a failure of the worker is a failure; a client that
   * went away is neither), and forgets the request.
   */
  #settleWhenClosed(body: BodyStream, lease: Lease, active: Active, statusOk: boolean, client: CancelSignal): void {
    body.onClose((failure) => {
      this.#release(lease);
      this.#untrack(active);
      if (client.aborted) return;
      if (failure === undefined) {
        if (statusOk) this.#options.onOutcome?.(lease.worker, true);
        return;
      }
      const g = failure instanceof GatewayError ? failure : undefined;
      if (g?.code === 'client_closed') return;
      this.#stats.midStreamFailures++;
      // A stream the engine ended with its own error event: the worker answered, and is not at fault.
      const engineSaid = g?.cause instanceof EngineStreamError;
      if (g?.code !== 'shutting_down' && !engineSaid) this.#options.onOutcome?.(lease.worker, false);
      this.#options.onMidStreamFailure?.(
        lease.worker.name,
        g ?? new GatewayError('upstream_interrupted', { cause: failure }),
      );
    });
  }

  #release(lease: Lease): void {
    lease.release();
    this.#options.onRelease?.();
  }

  #track(client: CancelSignal, clientTimeoutMs: number | undefined): Active {
    const abort = new Cancellation();
    const onClient = (): void => abort.abort(new GatewayError('client_closed', { cause: client.reason }));
    if (client.aborted) onClient();
    else client.addEventListener('abort', onClient, { once: true });
    const limit = this.#options.requestTimeoutMs ?? 0;
    const active: Active = {
      abort,
      deadline: limit > 0 ? this.#clock.now() + limit : Infinity,
      // Its own timer: deadlines differ from call to call, unlike the request timeout's.
      clientDeadline:
        clientTimeoutMs === undefined
          ? undefined
          : this.#clock.setTimer(Math.max(0, clientTimeoutMs), () =>
              abort.abort(
                new GatewayError('deadline_exceeded', {
                  message: `the request's deadline (${clientTimeoutMs} ms) passed before its answer was complete`,
                }),
              ),
            ),
      unlink: () => client.removeEventListener('abort', onClient),
      prev: undefined,
      next: undefined,
    };
    this.#active.add(active);
    if (limit > 0 && !this.#deadlineTimer) this.#armDeadline(limit);
    return active;
  }

  #untrack(active: Active): void {
    if (!this.#active.delete(active)) return;
    active.unlink();
    active.clientDeadline?.cancel();
  }

  /**
   * The deadline timer fired: cuts every request past its deadline, then re-arms for the
   * oldest one left (requests that ended meanwhile are gone from the list, so the timer fires
   * about once per timeout period however many requests pass).
   */
  #expire(): void {
    this.#deadlineTimer = undefined;
    const now = this.#clock.now();
    const expired: Active[] = [];
    for (const a of this.#active) {
      if (a.deadline > now) {
        this.#armDeadline(a.deadline - now);
        break;
      }
      if (!a.abort.aborted) expired.push(a);
    }
    const limit = this.#options.requestTimeoutMs ?? 0;
    for (const a of expired) {
      a.abort.abort(
        new GatewayError('upstream_timeout', {
          message: `the request took longer than the request timeout (${limit / 1000} s)`,
        }),
      );
    }
  }

  #armDeadline(ms: number): void {
    this.#deadlineTimer = this.#clock.setTimer(ms, () => this.#expire());
  }
}

function abortReason(signal: CancelSignal): GatewayError {
  const r: unknown = signal.reason;
  return r instanceof GatewayError ? r : new GatewayError('client_closed', { cause: r });
}
