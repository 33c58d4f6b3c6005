import type { Clock, TimerHandle } from './clock.js';
import { errorMessage } from './errors.js';
import type { WorkerPool } from './pool.js';
import type { FleetLog, Prober, Worker, WorkerState } from './types.js';

export interface HealthCheckerOptions {
  readonly pool: WorkerPool;
  readonly prober: Prober;
  readonly clock: Clock;
  /** Time between readiness probes of one worker (option worker_probe_interval). */
  readonly probeIntervalMs: number;
  /** A worker starting or not_ready this long is replaced (option worker_unhealthy_timeout). */
  readonly unhealthyTimeoutMs: number;
  readonly log?: FleetLog;
  /**
   * A worker must go and another take its place: it stayed starting/not_ready for the
   * unhealthy timeout, or it was reported lost (then it is already `failed`). It is no
   * longer watched when this runs.
   */
  readonly replace: (w: Worker) => void;
  /** A worker turned ready. */
  readonly onReady?: (w: Worker) => void;
  /** Every readiness probe's result, after the state change it caused. */
  readonly onProbe?: (w: Worker, ok: boolean) => void;
}

/** The states whose workers are probed. */
const PROBED: readonly WorkerState[] = ['starting', 'ready', 'not_ready'];

/** One watched worker. */
interface Watch {
  /** Aborts the probe in flight when the watch ends. */
  readonly abort: AbortController;
  probing: boolean;
  timer: TimerHandle | undefined;
}

/**
 * Health checking, as Envoy keeps it apart from balancing and from the cluster's membership:
 * probes each watched worker every interval (never two probes of one worker at once, so a
 * hung probe costs one), moves it between ready and not_ready on the results, and asks for
 * its replacement when it stays starting/not_ready for the unhealthy timeout or when it is
 * reported lost. Pure: time from the Clock, I/O only through the Prober.
 */
export class HealthChecker {
  readonly #options: HealthCheckerOptions;
  readonly #log: FleetLog;
  readonly #watched = new Map<string, Watch>();
  #replaced = 0;

  constructor(opts: HealthCheckerOptions) {
    if (opts.probeIntervalMs <= 0) throw new Error('fleet: probeIntervalMs must be > 0');
    this.#options = opts;
    this.#log = opts.log ?? (() => {});
  }

  /** Workers replaced for staying starting/not_ready past the unhealthy timeout, or lost. */
  get replaced(): number {
    return this.#replaced;
  }

  /** Starts probing `w` (the first probe goes out now); it stays watched until unwatch or replace. */
  watch(w: Worker): void {
    this.unwatch(w.name);
    const watch: Watch = { abort: new AbortController(), probing: false, timer: undefined };
    this.#watched.set(w.name, watch);
    this.#tick(w.name, watch);
  }

  /** Stops probing `name` and aborts its probe in flight. */
  unwatch(name: string): void {
    const watch = this.#watched.get(name);
    if (!watch) return;
    this.#watched.delete(name);
    watch.timer?.cancel();
    watch.timer = undefined;
    watch.abort.abort(new Error('worker leaving'));
  }

  /** The worker's cluster or process is gone on its own (preemption, crash): it is `failed` and replaced. */
  lost(w: Worker, reason: string): void {
    this.#log('warn', `fleet: worker ${w.name} lost: ${reason}`, { worker: w.name, reason });
    this.#replaced++;
    this.unwatch(w.name);
    if (w.state !== 'failed') this.#options.pool.setState(w.name, 'failed', `lost: ${reason}`);
    this.#options.replace(w);
  }

  /** Every probe interval: replace if unhealthy too long, else probe (unless one is still out). */
  #tick(name: string, watch: Watch): void {
    watch.timer = undefined;
    const w = this.#options.pool.get(name);
    if (this.#watched.get(name) !== watch) return;
    if (!w || !PROBED.includes(w.state)) {
      this.unwatch(name);
      return;
    }
    const stuck = w.state === 'starting' || w.state === 'not_ready';
    if (stuck && this.#options.clock.now() - w.stateSince >= this.#options.unhealthyTimeoutMs) {
      this.#replace(w);
      return;
    }
    watch.timer = this.#options.clock.setTimer(this.#options.probeIntervalMs, () => this.#tick(name, watch));
    if (!watch.probing) void this.#probe(w, watch);
  }

  async #probe(w: Worker, watch: Watch): Promise<void> {
    watch.probing = true;
    let ok: boolean;
    try {
      ok = await this.#options.prober.probe(w.url ?? '', watch.abort.signal);
    } catch {
      ok = false;
    } finally {
      watch.probing = false;
    }
    const { pool } = this.#options;
    if (this.#watched.get(w.name) !== watch || pool.get(w.name) !== w || !PROBED.includes(w.state)) return;
    w.lastProbeAt = this.#options.clock.now();
    if (ok && w.state !== 'ready') {
      pool.setState(w.name, 'ready', 'readiness probe passed');
      this.#log('info', `fleet: ${w.name} is ready`, { worker: w.name });
      try {
        this.#options.onReady?.(w);
      } catch (err) {
        this.#log('error', `fleet: onReady threw: ${errorMessage(err)}`);
      }
    } else if (!ok && w.state === 'ready') {
      pool.setState(w.name, 'not_ready', 'readiness probe failed');
      this.#log('warn', `fleet: ${w.name} failed its readiness probe`, { worker: w.name });
    }
    try {
      this.#options.onProbe?.(w, ok);
    } catch (err) {
      this.#log('error', `fleet: onProbe threw: ${errorMessage(err)}`);
    }
  }

  #replace(w: Worker): void {
    const since = this.#options.clock.now() - w.stateSince;
    this.#log(
      'warn',
      `fleet: ${w.name} ${w.state} for ${since} ms (limit ${this.#options.unhealthyTimeoutMs}); replacing it`,
      { worker: w.name, state: w.state },
    );
    this.#replaced++;
    this.unwatch(w.name);
    this.#options.replace(w);
  }
}
