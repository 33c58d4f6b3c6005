import type { EngineLoadSample } from '../../core/balancer/types.js';
import type { Clock, TimerHandle } from '../../core/clock.js';
import type { ClusterInfo, Endpoint, Prober, Provisioner, TaskSpec } from '../../core/types.js';
import { EngineModel, type EngineProfile, type EngineRequest } from '../engine-model.js';

/** The part of a request a simulated worker needs; `fail` is called if the worker goes away under it. */
export interface SimJob extends EngineRequest {
  fail(error: Error): void;
}

/**
 * One SIMULATED worker: the engine simulator's performance model (EngineModel, the same code
 * `flockserve-sim` serves HTTP with) on the virtual clock, reached by name instead of HTTP.
 */
export class SimWorker {
  readonly name: string;
  readonly engine: EngineModel;
  readonly #active = new Set<{ job: SimJob; cancel(): void }>();

  constructor(name: string, engine: EngineModel) {
    this.name = name;
    this.engine = engine;
  }

  /** Runs one request; callbacks fire on the clock as the model produces tokens. Cancelling calls none of them. */
  run(job: SimJob): { cancel(): void } {
    const entry = {
      job,
      cancel: () => {},
    };
    this.#active.add(entry);
    const handle = this.engine.submit({
      promptTokens: job.promptTokens,
      maxTokens: job.maxTokens,
      ...(job.outputTokens === undefined ? {} : { outputTokens: job.outputTokens }),
      ...(job.promptBlocks === undefined ? {} : { promptBlocks: job.promptBlocks }),
      onToken: (i) => job.onToken(i),
      onDone: (reason) => {
        this.#active.delete(entry);
        job.onDone(reason);
      },
      onError: (err) => {
        this.#active.delete(entry);
        job.fail(err);
      },
    });
    entry.cancel = () => handle.cancel();
    return {
      cancel: () => {
        if (this.#active.delete(entry)) entry.cancel();
      },
    };
  }

  /** What a scrape of the engine's /metrics would say now (the engine-load policy's input). */
  engineLoad(): EngineLoadSample {
    const s = this.engine.stats();
    return { waiting: s.waiting, running: s.running, kvCacheUsage: s.kvCacheUsage };
  }

  /** The machine is gone: every request on it fails (as a real client would see a reset). */
  stop(): void {
    const active = [...this.#active];
    this.#active.clear();
    for (const e of active) {
      e.cancel();
      e.job.fail(connectionReset(`worker ${this.name} went away with the request in flight`));
    }
  }
}

/** What a client sees of a machine that vanished: its connection reset (retried before the headers, an error after). */
export function connectionReset(message: string): Error {
  return Object.assign(new Error(message), { code: 'ECONNRESET' });
}

/** Simulated faults, each off at 0; draws come from their own seeded stream. */
export interface SimFaults {
  /** Fraction of launches that fail at the end of their delay (the fleet retries them with backoff). */
  readonly launchFailureRate?: number;
  /** Preemptions per worker-hour of a running worker (exponential lifetimes): it vanishes, its requests fail. */
  readonly preemptionsPerHour?: number;
  /** Uniform [0, 1) source for the fault draws. */
  readonly random?: () => number;
}

export interface SimProvisionerOptions {
  readonly clock: Clock;
  /** The clock the engines step on (the simulation gives them one without its settle hook); default `clock`. */
  readonly engineClock?: Clock;
  /** Draws the time from launch to a worker that answers its readiness probe, ms. */
  readonly launchDelayMs: () => number;
  /** The first this many launches take no time: workers already running when the trace starts. */
  readonly instantLaunches?: number;
  readonly profile?: Partial<EngineProfile>;
  readonly faults?: SimFaults;
  /** A worker vanished on its own (preemption): the fleet's lost() path. */
  readonly onWorkerLost?: (name: string, reason: string) => void;
}

export interface SimFaultCounts {
  readonly launchFailures: number;
  readonly preemptions: number;
}

export const URL_PREFIX = 'sim://';

/**
 * A SIMULATED provisioner: a launch takes a drawn delay on the virtual clock and yields a
 * SimWorker; terminate stops it at once. It follows the Provisioner contract (launch
 * resolves with an endpoint, rejects when aborted; terminate is idempotent) so the real
 * Fleet drives it unchanged.
 */
export class SimProvisioner implements Provisioner {
  readonly kind = 'simulated';
  readonly #options: SimProvisionerOptions;
  readonly #workers = new Map<string, SimWorker>();
  readonly #launching = new Map<string, TimerHandle>();
  #instantLeft: number;
  /** Engine counters of workers already gone. */
  #gone = { queryTokens: 0, hitTokens: 0, prefillMs: 0 };
  readonly #preemptions = new Map<string, TimerHandle>();
  #faultCounts = { launchFailures: 0, preemptions: 0 };

  constructor(opts: SimProvisionerOptions) {
    this.#options = opts;
    this.#instantLeft = opts.instantLaunches ?? 0;
  }

  /** The worker behind a pool entry, while it exists. */
  worker(name: string): SimWorker | undefined {
    return this.#workers.get(name);
  }

  launch(name: string, _task: TaskSpec, signal: AbortSignal): Promise<Endpoint> {
    if (this.#workers.has(name) || this.#launching.has(name))
      return Promise.reject(new Error(`simulated worker ${name} already exists`));
    return new Promise<Endpoint>((resolve, reject) => {
      const onAbort = (): void => {
        this.#launching.get(name)?.cancel();
        this.#launching.delete(name);
        reject(new Error(`launch of ${name} aborted`, { cause: signal.reason }));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      // Workers already up when the trace starts neither wait nor fail.
      const instant = this.#instantLeft > 0;
      if (instant) this.#instantLeft--;
      const delay = instant ? 0 : Math.max(0, this.#options.launchDelayMs());
      this.#launching.set(
        name,
        this.#options.clock.setTimer(delay, () => {
          this.#launching.delete(name);
          signal.removeEventListener('abort', onAbort);
          if (!instant && this.#draw(this.#options.faults?.launchFailureRate)) {
            this.#faultCounts.launchFailures++;
            reject(new Error(`simulated launch failure of ${name}`));
            return;
          }
          this.#workers.set(
            name,
            new SimWorker(
              name,
              // The simulated upstream answers with one event at the first token (upstream.ts): no call per token.
              new EngineModel(this.#options.profile ?? {}, this.#options.engineClock ?? this.#options.clock, {
                firstTokenOnly: true,
              }),
            ),
          );
          this.#schedulePreemption(name);
          resolve({
            url: `${URL_PREFIX}${name}`,
            detail: { simulated: 'true', launchSeconds: (delay / 1000).toFixed(1) },
          });
        }),
      );
    });
  }

  terminate(name: string): Promise<void> {
    this.#launching.get(name)?.cancel();
    this.#launching.delete(name);
    this.#remove(name);
    return Promise.resolve();
  }

  /** Faults injected so far. */
  get faultCounts(): SimFaultCounts {
    return { ...this.#faultCounts };
  }

  /** The machine is gone (terminated or preempted): its requests fail, its cache counters are kept. */
  #remove(name: string): void {
    this.#preemptions.get(name)?.cancel();
    this.#preemptions.delete(name);
    const worker = this.#workers.get(name);
    if (!worker) return;
    const s = worker.engine.stats();
    this.#gone.queryTokens += s.prefixCacheQueries;
    this.#gone.hitTokens += s.prefixCacheHits;
    this.#gone.prefillMs += s.prefillMs;
    this.#workers.delete(name);
    worker.stop();
  }

  /** A running worker's lifetime until preemption is exponential with mean 1/rate hours. */
  #schedulePreemption(name: string): void {
    const rate = this.#options.faults?.preemptionsPerHour ?? 0;
    if (!(rate > 0)) return;
    const lifetimeMs = (-Math.log(1 - this.#random()) / rate) * 3600_000;
    this.#preemptions.set(
      name,
      this.#options.clock.setTimer(lifetimeMs, () => {
        this.#preemptions.delete(name);
        this.#faultCounts.preemptions++;
        this.#remove(name);
        this.#options.onWorkerLost?.(name, 'preempted (simulated)');
      }),
    );
  }

  #draw(rate: number | undefined): boolean {
    return rate !== undefined && rate > 0 && this.#random() < rate;
  }

  #random(): number {
    const r = this.#options.faults?.random;
    if (!r) throw new Error('simulated faults need a random source');
    return r();
  }

  /**
   * Over every worker ever launched: prompt tokens looked up in the engines' prefix caches and
   * those found, and the time the engines spent prefilling.
   */
  engineTotals(): { readonly queryTokens: number; readonly hitTokens: number; readonly prefillMs: number } {
    const t = { ...this.#gone };
    for (const w of this.#workers.values()) {
      const s = w.engine.stats();
      t.queryTokens += s.prefixCacheQueries;
      t.hitTokens += s.prefixCacheHits;
      t.prefillMs += s.prefillMs;
    }
    return t;
  }

  list(prefix: string): Promise<ClusterInfo[]> {
    const out: ClusterInfo[] = [];
    for (const name of this.#launching.keys()) if (name.startsWith(prefix)) out.push({ name, status: 'INIT' });
    for (const name of this.#workers.keys())
      if (name.startsWith(prefix)) out.push({ name, status: 'UP', endpoint: { url: `${URL_PREFIX}${name}` } });
    return Promise.resolve(out);
  }

  /** Readiness of simulated workers: up as soon as the launch has finished. */
  readonly prober: Prober = {
    probe: (url: string) =>
      Promise.resolve(url.startsWith(URL_PREFIX) && this.#workers.has(url.slice(URL_PREFIX.length))),
  };
}
