import { AdapterLedger, type AdapterChange } from '../core/adapter-ledger.js';
import { Cancellation, type CancelSignal } from '../core/cancellation.js';
import type { CarriedAnswer, FleetCommand, FleetCommandResult, SharedAdapter } from '../core/coordination.js';
import { GatewayError, isErrorCode, toGatewayError } from '../core/errors.js';
import type { Prober, StructuredLog, Worker } from '../core/types.js';
import type { AdapterRequest } from '../routes/rules.js';
import { LOAD_ADAPTER_PATH, UNLOAD_ADAPTER_PATH } from '../routes/table.js';
import { BodyStream } from '../upstream/body-stream.js';
import type { Headers, Upstream } from '../upstream/types.js';

export interface AdapterSyncOptions {
  readonly upstream: Upstream;
  /** The workers a client's change goes to: those serving now (ready, not ejected). */
  readonly serving: () => readonly Worker[];
  readonly log: StructuredLog;
  /**
   * Whether this replica leads the fleet (default: always, a gateway alone). Only the leader keeps
   * the ledger and brings workers to it; a follower passes a client's change to the leader.
   */
  readonly leading?: () => boolean;
  /** Passes a command to the leader (Coordinator.submit). */
  readonly submit?: (cmd: FleetCommand) => Promise<FleetCommandResult>;
  /** The ledger changed: the leader shares it with the other replicas. */
  readonly onChange?: () => void;
  /** On a follower: the changes the leader last shared (the shared fleet's). */
  readonly lastShared?: () => readonly SharedAdapter[] | undefined;
}

type AdapterCommand = Extract<FleetCommand, { op: 'adapter' }>;

/** A client's change, as the fleet answered it. */
export interface AdapterReply {
  readonly status: number;
  readonly headers: Headers;
  readonly body: BodyStream;
  /** The worker whose answer the client gets. */
  readonly worker: string;
}

/** One worker's answer to a change. */
interface Answer {
  readonly worker: Worker;
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
}

/** The model list an engine serves: vLLM's (and OpenAI's) GET /v1/models. */
const MODELS_PATH = '/v1/models';

/**
 * Keeps the fleet's run-time LoRA adapters alike (see AdapterLedger). A client's load or unload
 * goes to every worker serving, and is kept when one of them took it; the worker that did not is
 * brought to the ledger at once, and otherwise at its next readiness probe, which fails until it
 * is (the health checker then holds it out of service, and replaces it after
 * worker_unhealthy_timeout). A worker that turns ready is brought to the ledger first: the
 * readiness probe passes only once it lists every adapter loaded.
 *
 * An engine says what it serves in GET /v1/models (vLLM lists each adapter by name), so a worker
 * is compared with the ledger, not replayed blindly: an engine that kept its adapters through a
 * failed probe is asked for nothing.
 */
export class AdapterSync {
  readonly #options: AdapterSyncOptions;
  readonly #ledger = new AdapterLedger();
  /** The sync running per worker URL: callers share it rather than send each change twice. */
  readonly #syncing = new Map<string, Promise<boolean>>();

  constructor(options: AdapterSyncOptions) {
    this.#options = options;
  }

  /** The adapters loaded on the fleet through the gateway, oldest first (on a follower, as the leader last shared them). */
  loaded(): string[] {
    if (this.#leads()) return this.#ledger.loaded();
    return (this.#options.lastShared?.() ?? []).filter((a) => a.loaded).map((a) => a.name);
  }

  /**
   * A client's change (POST /v1/load_lora_adapter or /v1/unload_lora_adapter), sent as it came to
   * every worker serving. The client gets the answer of a worker that took it, or, when none did,
   * the first refusal as the engine wrote it; with no worker serving, no_workers (a change kept
   * with no engine to check it could hold every later worker out of service).
   */
  async change(
    request: AdapterRequest,
    call: { readonly headers: Headers; readonly body: Buffer | undefined; readonly signal: CancelSignal },
  ): Promise<AdapterReply> {
    if (!this.#leads()) return this.#passToLeader(request, call);
    const workers = this.#options.serving();
    if (workers.length === 0)
      throw new GatewayError('no_workers', {
        message: `No worker is serving to ${request.kind} LoRA adapter '${request.name}' on; send it again once one is ready.`,
      });
    const versionBefore = this.#ledger.version;
    const path = request.kind === 'load' ? LOAD_ADAPTER_PATH : UNLOAD_ADAPTER_PATH;
    const results = await Promise.allSettled(
      workers.map((w) => this.#send(w, path, call.headers, call.body, call.signal)),
    );
    const answers = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const taken = answers.filter((a) => a.status < 300);
    if (taken.length === 0) {
      const refusal = answers[0];
      if (refusal) return reply(refusal);
      const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')!;
      throw toGatewayError(failure.reason);
    }
    const version =
      request.kind === 'load'
        ? this.#ledger.load(request.name, call.body?.toString('utf8') ?? '', replayHeaders(call.headers))
        : this.#ledger.unload(request.name);
    this.#options.onChange?.();
    // A worker that took it and had every change before it now has this one too.
    const wasCurrent = (w: Worker): boolean => this.#ledger.appliedVersion(w.url ?? '') === versionBefore;
    for (const a of taken) if (wasCurrent(a.worker)) this.#ledger.applied(a.worker.url ?? '', version);
    const missed = workers.filter((w) => !taken.some((a) => a.worker === w));
    if (missed.length > 0) {
      this.#options.log.warn(
        {
          adapter: request.name,
          workers: missed.map((w) => w.name),
          answers: answers.filter((a) => a.status >= 300).map((a) => `${a.worker.name}: ${a.status}`),
        },
        `LoRA adapter '${request.name}': ${request.kind} taken by ${taken.length} of ${workers.length} workers; the others are brought to it before they serve again`,
      );
      await Promise.all(missed.map((w) => this.sync(w.url ?? '', call.signal)));
    }
    return reply(taken[0]!);
  }

  /**
   * Brings the worker at `url` to the ledger; true when it matches. Nothing is sent while it is
   * known to match, and nothing at all on a fleet where no adapter was ever changed.
   */
  sync(url: string, signal: CancelSignal): Promise<boolean> {
    if (this.#ledger.isCurrent(url)) return Promise.resolve(true);
    let running = this.#syncing.get(url);
    if (!running) {
      running = this.#bring(url, signal).finally(() => this.#syncing.delete(url));
      this.#syncing.set(url, running);
    }
    return running;
  }

  /** The worker at `url` may have lost its adapters (a failed probe: its engine may have restarted), or is gone. */
  forget(url: string): void {
    this.#ledger.forget(url);
  }

  /**
   * A prober whose probe passes only when the worker is up and matches the ledger. Until an adapter
   * is changed, and on a follower (the leader brings the workers to the ledger), it is the inner one alone.
   */
  prober(inner: Prober): Prober {
    return {
      probe: (url, signal) =>
        this.#ledger.version === 0 || !this.#leads() ? inner.probe(url, signal) : this.#probe(inner, url, signal),
    };
  }

  /** The ledger as the leader shares it; undefined while no adapter was ever changed. */
  shared(): SharedAdapter[] | undefined {
    return this.#ledger.version === 0 ? undefined : this.#ledger.shared();
  }

  /** This replica comes to lead: it takes the ledger the previous leader shared. */
  restore(shared: readonly SharedAdapter[]): void {
    this.#ledger.restore(shared);
  }

  /** On the leader: a client's change that reached a follower, made here; its answer carried back. */
  async commanded(cmd: AdapterCommand): Promise<FleetCommandResult> {
    try {
      const reply = await this.change(
        { kind: cmd.kind, name: cmd.name },
        { headers: cmd.headers, body: Buffer.from(cmd.body), signal: new Cancellation() },
      );
      const chunks: Buffer[] = [];
      for await (const chunk of reply.body) chunks.push(chunk);
      const body = Buffer.concat(chunks).toString('utf8');
      return { ok: true, answer: { worker: reply.worker, status: reply.status, headers: reply.headers, body } };
    } catch (err) {
      const e = toGatewayError(err);
      return { ok: false, code: e.code, message: e.message, param: e.param };
    }
  }

  #leads(): boolean {
    return this.#options.leading?.() ?? true;
  }

  async #passToLeader(
    request: AdapterRequest,
    call: { readonly headers: Headers; readonly body: Buffer | undefined },
  ): Promise<AdapterReply> {
    const submit = this.#options.submit;
    if (!submit) throw new GatewayError('no_leader');
    const r = await submit({
      op: 'adapter',
      kind: request.kind,
      name: request.name,
      body: call.body?.toString('utf8') ?? '',
      headers: replayHeaders(call.headers),
    });
    if (!r.ok)
      throw new GatewayError(isErrorCode(r.code) ? r.code : 'internal', { message: r.message, param: r.param });
    if (!r.answer)
      throw new GatewayError('internal', { message: 'The leader answered the adapter change without its answer.' });
    return carriedReply(r.answer);
  }

  async #probe(inner: Prober, url: string, signal: AbortSignal): Promise<boolean> {
    if (await inner.probe(url, signal)) return this.sync(url, signal);
    this.forget(url);
    return false;
  }

  async #bring(url: string, signal: CancelSignal): Promise<boolean> {
    const version = this.#ledger.version;
    const worker = { name: url, url } as const;
    try {
      const listed = await this.#send(worker, MODELS_PATH, {}, undefined, signal, 'GET');
      if (listed.status !== 200) throw new Error(`GET ${MODELS_PATH} answered ${listed.status}`);
      const steps = this.#ledger.stepsFor(modelIds(listed.body));
      for (const c of steps.unload) await this.#replay(worker, c, signal);
      for (const c of steps.load) await this.#replay(worker, c, signal);
      this.#ledger.applied(url, version);
      return true;
    } catch (err) {
      if (!signal.aborted)
        this.#options.log.warn(
          { worker: url, err: errorText(err) },
          `worker at ${url} cannot be brought to the fleet's LoRA adapters (${this.#ledger.loaded().join(', ') || 'none loaded'}); it does not serve until it is`,
        );
      return false;
    }
  }

  async #replay(worker: Pick<Worker, 'name' | 'url'>, c: AdapterChange, signal: CancelSignal): Promise<void> {
    const path = c.loaded ? LOAD_ADAPTER_PATH : UNLOAD_ADAPTER_PATH;
    const body = Buffer.from(c.body ?? JSON.stringify({ lora_name: c.name }));
    const a = await this.#send(worker, path, c.headers, body, signal);
    if (a.status >= 300) throw new Error(`${path} of '${c.name}' answered ${a.status}: ${a.body.toString('utf8')}`);
  }

  async #send<W extends Pick<Worker, 'name' | 'url'>>(
    worker: W,
    path: string,
    headers: Headers,
    body: Buffer | undefined,
    signal: CancelSignal,
    method = 'POST',
  ): Promise<{ worker: W; status: number; headers: Headers; body: Buffer }> {
    const res = await this.#options.upstream.send(worker.url ?? '', {
      method,
      path,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body,
      signal,
      worker: worker.name,
    });
    const chunks: Buffer[] = [];
    for await (const chunk of res.body) chunks.push(chunk);
    return { worker, status: res.status, headers: res.headers, body: Buffer.concat(chunks) };
  }
}

/** What a replayed change carries of the client's headers: its type and the engine's key, if the engine wants one. */
function replayHeaders(headers: Headers): Headers {
  const out: Headers = {};
  for (const k of ['content-type', 'authorization']) if (headers[k] !== undefined) out[k] = headers[k];
  return out;
}

/** The model ids an engine's GET /v1/models lists: the base model and each adapter loaded. */
function modelIds(body: Buffer): Set<string> {
  const parsed = JSON.parse(body.toString('utf8')) as { data?: unknown };
  if (!Array.isArray(parsed.data)) throw new Error(`GET ${MODELS_PATH} answered without a data list`);
  const ids = new Set<string>();
  for (const m of parsed.data) {
    const id = (m as { id?: unknown } | null)?.id;
    if (typeof id === 'string') ids.add(id);
  }
  return ids;
}

function carriedReply(a: CarriedAnswer): AdapterReply {
  return { status: a.status, headers: { ...a.headers }, body: BodyStream.whole(Buffer.from(a.body)), worker: a.worker };
}

function reply(a: Answer): AdapterReply {
  return { status: a.status, headers: a.headers, body: BodyStream.whole(a.body), worker: a.worker.name };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
