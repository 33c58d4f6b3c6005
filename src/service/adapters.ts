import { AdapterLedger } from '../core/adapter-ledger.js';
import { Cancellation, type CancelSignal } from '../core/cancellation.js';
import type { CarriedAnswer, FleetCommand, FleetCommandResult, SharedAdapter } from '../core/coordination.js';
import { errorMessage, GatewayError, isErrorCode, toGatewayError } from '../core/errors.js';
import type { Prober, StructuredLog, Worker } from '../core/types.js';
import type { Clock } from '../core/clock.js';
import { adapterBodyOf, type AdapterRequest } from '../routes/rules.js';
import { LOAD_ADAPTER_PATH, UNLOAD_ADAPTER_PATH } from '../routes/table.js';
import { BodyStream, readAll } from '../upstream/body-stream.js';
import { engineKey, LoraEngines, type EngineAnswer } from './lora-engine.js';
import type { Headers, Upstream } from '../upstream/types.js';

export interface AdapterSyncOptions {
  readonly upstream: Upstream;
  /** The workers a client's change goes to: those serving now (ready, not ejected). */
  readonly serving: () => readonly Worker[];
  readonly log: StructuredLog;
  /** Bounds each worker's sync (ADAPTER_SYNC_TIMEOUT_MS). */
  readonly clock: Clock;
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

/**
 * How long bringing one worker to the ledger may take (reading its model list, then each load):
 * an engine that hangs or trickles must not hold a readiness probe, or a client's change, for
 * good. Loading an adapter from local disk takes seconds; from a hub, longer.
 */
export const ADAPTER_SYNC_TIMEOUT_MS = 120_000;

/** The most the fleet's adapter changes may take as the leader shares them (see #checkRoom). */
export const MAX_SHARED_ADAPTER_BYTES = 512 * 1024;

/**
 * Keeps the fleet's run-time LoRA adapters alike (see AdapterLedger). A client's load or unload
 * goes to every worker serving. It is kept when a worker took it, or already holds what it asks
 * (its model list says so: a change that runs twice, after a failover, is no refusal); a load that
 * an engine refuses as the client's fault (4xx) is undone on the workers that took it, so that
 * one engine's verdict does not leave the others serving an adapter it cannot. A worker that
 * missed a kept change (an error of its own) is brought to the ledger at once, and otherwise at
 * its next readiness probe, which fails until it is (the health checker holds it out of service,
 * and replaces it after worker_unhealthy_timeout). A worker that turns ready is brought to the
 * ledger first: its readiness probe passes only once it matches.
 *
 * An engine says what it serves in GET /v1/models (vLLM lists each adapter by name, with the path
 * it was loaded from as `root`), so a worker is compared with the ledger, not replayed blindly: an
 * engine that kept its adapters through a failed probe is asked for nothing, and one that holds an
 * adapter from another path (it missed an in-place reload) unloads and loads it again.
 */
export class AdapterSync {
  readonly #options: AdapterSyncOptions;
  readonly #ledger = new AdapterLedger();
  readonly #engines: LoraEngines;
  /** The sync running per worker URL: callers share it rather than send each change twice. */
  readonly #syncing = new Map<string, Promise<boolean>>();
  /** The ledger version each worker's last failure was said at: said once per version, not per probe. */
  readonly #said = new Map<string, number>();

  constructor(options: AdapterSyncOptions) {
    this.#options = options;
    this.#engines = new LoraEngines(options.upstream);
  }

  /** The adapters loaded on the fleet through the gateway, oldest first (on a follower, as the leader last shared them). */
  loaded(): string[] {
    if (this.#leads()) return this.#ledger.loaded();
    return (this.#options.lastShared?.() ?? []).filter((a) => a.loaded).map((a) => a.name);
  }

  /**
   * A client's change (POST /v1/load_lora_adapter or /v1/unload_lora_adapter), sent as it came to
   * every worker serving. The client gets the answer of a worker that took it, or, when none did,
   * the first refusal (in the catalogue's shape, with the engine's message); with no worker
   * serving, no_workers (a change kept with no engine to check it could hold every later worker
   * out of service).
   */
  async change(
    request: AdapterRequest,
    call: { readonly headers: Headers; readonly body: Buffer | undefined; readonly signal: CancelSignal },
  ): Promise<AdapterReply> {
    if (!this.#leads()) return this.#passToLeader(request, call);
    if (request.kind === 'load') this.#checkRoom(request, call.body);
    const workers = this.#options.serving();
    if (workers.length === 0)
      throw new GatewayError('no_workers', {
        message: `No worker is serving to ${request.kind} LoRA adapter '${request.name}' on; send it again once one is ready.`,
      });
    const path = request.kind === 'load' ? LOAD_ADAPTER_PATH : UNLOAD_ADAPTER_PATH;
    const results = await Promise.allSettled(
      workers.map((w) => this.#engines.send(w, path, call.headers, call.body, call.signal)),
    );
    const answers = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const took = answers.filter((a) => a.status < 300);
    // A refusal from an engine that already holds what was asked (vLLM's "already loaded", its
    // "cannot be found" for an unload) is no refusal: its model list says so.
    const asked = answers.filter((a) => a.status >= 400 && a.status < 500);
    const holds = await Promise.all(
      asked.map((a) => this.#engines.holds(a.worker, request, this.#ledger.latestHeaders(), call.signal)),
    );
    const held = asked.filter((_, i) => holds[i]);
    const refused = asked.filter((_, i) => !holds[i]);
    if (took.length + held.length === 0) {
      const refusal = answers[0];
      if (refusal) return reply(refusal);
      const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')!;
      throw toGatewayError(failure.reason);
    }
    if (request.kind === 'load' && refused.length > 0) {
      await this.#undo(request, call.headers, took, refused, workers.length);
      return reply(refused[0]!);
    }
    // Read at the change, not before the fan-out: a change made meanwhile is one these workers may lack.
    const before = this.#ledger.version;
    const headers = engineKey(call.headers);
    const version =
      request.kind === 'load'
        ? this.#ledger.load(request.name, request.path, call.body?.toString('utf8') ?? '', headers)
        : this.#ledger.unload(request.name, headers);
    this.#options.onChange?.();
    const have = [...took, ...held];
    for (const a of have) {
      const url = a.worker.url ?? '';
      if (this.#ledger.appliedVersion(url) === before) this.#ledger.applied(url, version);
    }
    const missed = workers.filter((w) => !have.some((a) => a.worker === w));
    if (missed.length > 0) {
      this.#options.log.warn(
        {
          adapter: request.name,
          workers: missed.map((w) => w.name),
          answers: answers.filter((a) => a.status >= 300).map((a) => `${a.worker.name}: ${a.status}`),
        },
        `LoRA adapter '${request.name}': ${request.kind} taken by ${have.length} of ${workers.length} workers; the others are brought to it before they serve again`,
      );
      await Promise.all(missed.map((w) => this.sync(w.url ?? '')));
    }
    return reply(took[0] ?? held[0]!);
  }

  /**
   * Brings the worker at `url` to the ledger; true when it matches. Nothing is sent while it is
   * known to match, and nothing at all on a fleet where no adapter was ever changed. Callers share
   * one sync per worker, on its own deadline: one caller going away does not fail it for another.
   */
  sync(url: string): Promise<boolean> {
    if (this.#ledger.isCurrent(url)) return Promise.resolve(true);
    let running = this.#syncing.get(url);
    if (!running) {
      running = this.#syncUntilCurrent(url).finally(() => this.#syncing.delete(url));
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
    const deadline = this.#deadline();
    try {
      const body = Buffer.from(cmd.body);
      const reply = await this.change(
        { kind: cmd.kind, name: cmd.name, path: adapterBodyOf(body).path },
        { headers: cmd.headers, body, signal: deadline.signal },
      );
      const text = (await readAll(reply.body)).toString('utf8');
      return { ok: true, answer: { worker: reply.worker, status: reply.status, headers: reply.headers, body: text } };
    } catch (err) {
      const e = toGatewayError(deadline.signal.aborted ? deadline.signal.reason : err);
      return { ok: false, code: e.code, message: e.message, param: e.param };
    } finally {
      deadline.done();
    }
  }

  /**
   * A load the ledger has no room for is refused before any worker sees it: the leader shares the
   * ledger in one etcd value, which etcd caps (1.5 MiB by default), and a fleet write it refuses
   * would stop every change of the fleet from reaching the other replicas.
   */
  #checkRoom(request: AdapterRequest, body: Buffer | undefined): void {
    const bytes = JSON.stringify(this.#ledger.shared()).length + (body?.length ?? 0);
    if (bytes <= MAX_SHARED_ADAPTER_BYTES) return;
    throw new GatewayError('bad_request', {
      message: `The fleet holds ${this.#ledger.loaded().length} LoRA adapters; loading '${request.name}' would take their record past ${MAX_SHARED_ADAPTER_BYTES / 1024} KiB. Unload some first.`,
    });
  }

  /** A signal aborted after ADAPTER_SYNC_TIMEOUT_MS, for what no client's signal bounds; done() stops its timer. */
  #deadline(): { signal: Cancellation; done(): void } {
    const signal = new Cancellation();
    const timer = this.#options.clock.setTimer(ADAPTER_SYNC_TIMEOUT_MS, () =>
      signal.abort(
        new GatewayError('upstream_timeout', {
          message: `The LoRA adapter change was not done within ${ADAPTER_SYNC_TIMEOUT_MS / 1000} s.`,
        }),
      ),
    );
    return { signal, done: () => timer.cancel() };
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
      headers: engineKey(call.headers),
    });
    if (!r.ok)
      throw new GatewayError(isErrorCode(r.code) ? r.code : 'internal', { message: r.message, param: r.param });
    if (!r.answer)
      throw new GatewayError('internal', { message: 'The leader answered the adapter change without its answer.' });
    return carriedReply(r.answer);
  }

  async #probe(inner: Prober, url: string, signal: AbortSignal): Promise<boolean> {
    if (await inner.probe(url, signal)) return this.sync(url);
    this.forget(url);
    return false;
  }

  /** A load some engine refused as the client's fault: undone where it was taken, and said. */
  async #undo(
    request: AdapterRequest,
    clientHeaders: Headers,
    took: readonly EngineAnswer<Worker>[],
    refused: readonly EngineAnswer<Worker>[],
    of: number,
  ): Promise<void> {
    const headers = engineKey(clientHeaders);
    const body = Buffer.from(JSON.stringify({ lora_name: request.name }));
    const deadline = this.#deadline();
    const undone = await Promise.allSettled(
      took.map((a) => this.#engines.send(a.worker, UNLOAD_ADAPTER_PATH, headers, body, deadline.signal)),
    ).finally(() => deadline.done());
    this.#options.log.warn(
      {
        adapter: request.name,
        refusedBy: refused.map((a) => `${a.worker.name}: ${a.status}`),
        undoneOn: undone.map(
          (r, i) => `${took[i]!.worker.name}: ${r.status === 'fulfilled' ? r.value.status : 'failed'}`,
        ),
      },
      `LoRA adapter '${request.name}': load refused by ${refused.length} of ${of} workers; not kept, and unloaded where it was taken`,
    );
    // The undo unloaded what the ledger may still hold (a refused in-place reload of an adapter the
    // fleet keeps): those workers are compared with the ledger again, and given back what it has.
    for (const a of took) this.#ledger.forget(a.worker.url ?? '');
    await Promise.all(took.map((a) => this.sync(a.worker.url ?? '')));
  }

  /** Syncs until the worker matches the ledger as it is now: a change made during a sync is one more round. */
  async #syncUntilCurrent(url: string): Promise<boolean> {
    for (let round = 0; round < 3; round++) {
      if (this.#ledger.isCurrent(url)) return true;
      if (!(await this.#bring(url))) return false;
    }
    return this.#ledger.isCurrent(url);
  }

  async #bring(url: string): Promise<boolean> {
    const version = this.#ledger.version;
    const worker = { name: url, url } as const;
    const { signal: deadline, done } = this.#deadline();
    // The engine's key as the client last sent it: a key rotated since must not hold workers out.
    const headers = this.#ledger.latestHeaders();
    try {
      const steps = this.#ledger.stepsFor(await this.#engines.modelList(worker, headers, deadline));
      for (const name of steps.unload) {
        await this.#engines.expect(worker, UNLOAD_ADAPTER_PATH, headers, JSON.stringify({ lora_name: name }), deadline);
      }
      for (const c of steps.load)
        await this.#engines.expect(worker, LOAD_ADAPTER_PATH, headers, c.body ?? '', deadline);
      this.#ledger.applied(url, version);
      this.#said.delete(url);
      return true;
    } catch (err) {
      if (this.#said.get(url) !== version) {
        this.#said.set(url, version);
        const why = deadline.aborted ? errorMessage(deadline.reason) : errorMessage(err);
        this.#options.log.warn(
          { worker: url, err: why },
          `worker at ${url} cannot be brought to the fleet's LoRA adapters (${this.#ledger.loaded().join(', ') || 'none loaded'}); it does not serve until it is: ${why} (said once per change)`,
        );
      }
      return false;
    } finally {
      done();
    }
  }
}

function carriedReply(a: CarriedAnswer): AdapterReply {
  return { status: a.status, headers: { ...a.headers }, body: BodyStream.whole(Buffer.from(a.body)), worker: a.worker };
}

function reply(a: EngineAnswer<Worker>): AdapterReply {
  return { status: a.status, headers: a.headers, body: BodyStream.whole(a.body), worker: a.worker.name };
}
