import type { Clock } from './clock.js';
import type { WorkerPool } from './pool.js';
import type { Worker } from './types.js';

export interface OutlierOptions {
  readonly pool: WorkerPool;
  readonly clock: Clock;
  /** Failures in a row that eject a worker (option outlier_consecutive_failures); 0 turns detection off. */
  readonly consecutiveFailures: number;
  /** How long the first ejection lasts (option outlier_ejection_time). */
  readonly baseEjectionMs: number;
  /** Cap of the doubling ejection time; default 10 × baseEjectionMs. */
  readonly maxEjectionMs?: number;
  readonly onEject?: (worker: Worker, info: EjectionInfo) => void;
  readonly onReadmit?: (worker: Worker, reason: string) => void;
}

export interface EjectionInfo {
  /** The failures in a row that tripped it. */
  readonly failures: number;
  /** Ejections of this worker in a row, this one included. */
  readonly ejections: number;
  /** How long this ejection lasts at least (a passing readiness probe after it readmits). */
  readonly forMs: number;
}

export interface OutlierStats {
  ejections: number;
  readmissions: number;
  /** Failures recorded while ejecting was not allowed (it would have left no serving worker). */
  sparedLastWorker: number;
}

interface Record {
  failures: number;
  ejections: number;
  ejectedUntil: number;
  lastReadmitAt: number;
}

/**
 * Passive outlier detection: watches the outcome of real requests (not probes) and takes a
 * worker that fails `consecutiveFailures` times in a row out of balancing for a while. One
 * unit beside readiness probing (the fleet) and balancing (admission), joined only by the
 * worker's `ejected` flag, which WorkerPool.candidates() reads — as Envoy joins health
 * checking, outlier detection and load balancing through host flags.
 *
 * Ejection time doubles with each ejection in a row, capped at maxEjectionMs:
 *   base 30 s, max 300 s → 30, 60, 120, 240, 300, 300 ... s.
 * The row is forgotten once the worker has served maxEjectionMs since its last readmission
 * without being ejected again (300 s in the example), so a worker that failed once an hour
 * is ejected for 30 s each time.
 *
 * Readmission: the first passing readiness probe once the ejection time is over (the fleet
 * reports every probe through `probed`). Never the last worker: a worker is not ejected when
 * no other worker would serve, and if the serving set becomes empty anyway (the others left),
 * the ejected worker that is due back soonest is readmitted at once.
 *
 * Pure: time from the Clock, no timers of its own.
 */
export class OutlierDetector {
  readonly #options: OutlierOptions;
  readonly #maxEjectionMs: number;
  readonly #records = new Map<string, Record>();
  readonly #stats: OutlierStats = { ejections: 0, readmissions: 0, sparedLastWorker: 0 };
  readonly #unlisten: () => void;

  constructor(opts: OutlierOptions) {
    this.#options = opts;
    this.#maxEjectionMs = opts.maxEjectionMs ?? 10 * opts.baseEjectionMs;
    this.#unlisten = opts.pool.onChange(({ worker }) => {
      if (worker.state === 'gone') this.#records.delete(worker.name);
      this.#keepOneServing();
    });
  }

  get stats(): Readonly<OutlierStats> {
    return { ...this.#stats };
  }

  /** A request on `worker` succeeded: the row of failures is broken. */
  success(worker: Worker): void {
    const r = this.#records.get(worker.name);
    if (r) r.failures = 0;
  }

  /** A request on `worker` failed (connect error, timeout, 5xx, broken stream). */
  failure(worker: Worker): void {
    if (this.#options.consecutiveFailures <= 0) return;
    const r = this.#record(worker.name);
    r.failures++;
    if (r.failures < this.#options.consecutiveFailures || worker.ejected || worker.state !== 'ready') return;
    if (!this.#options.pool.serving().some((w) => w !== worker)) {
      this.#stats.sparedLastWorker++;
      return;
    }
    const now = this.#options.clock.now();
    if (now - r.lastReadmitAt >= this.#maxEjectionMs) r.ejections = 0;
    r.ejections++;
    const forMs = Math.min(this.#options.baseEjectionMs * 2 ** (r.ejections - 1), this.#maxEjectionMs);
    r.ejectedUntil = now + forMs;
    const failures = r.failures;
    r.failures = 0;
    this.#options.pool.setEjected(worker.name, true);
    this.#stats.ejections++;
    this.#options.onEject?.(worker, { failures, ejections: r.ejections, forMs });
  }

  /** The fleet's readiness probe of `worker` answered `ok`: readmits an ejected worker whose time is over. */
  probed(worker: Worker, ok: boolean): void {
    if (!ok || !worker.ejected || worker.state !== 'ready') return;
    const r = this.#records.get(worker.name);
    if (r && this.#options.clock.now() < r.ejectedUntil) return;
    this.#readmit(worker, 'readiness probe passed after the ejection time');
  }

  /** When ejection time of `worker` ends (clock ms), or undefined if it is not ejected. */
  ejectedUntil(worker: Worker): number | undefined {
    return worker.ejected ? this.#records.get(worker.name)?.ejectedUntil : undefined;
  }

  close(): void {
    this.#unlisten();
  }

  #readmit(worker: Worker, reason: string): void {
    if (!this.#options.pool.setEjected(worker.name, false)) return;
    const r = this.#record(worker.name);
    r.failures = 0;
    r.lastReadmitAt = this.#options.clock.now();
    this.#stats.readmissions++;
    this.#options.onReadmit?.(worker, reason);
  }

  /** Panic fallback: with nobody serving, the ejected ready worker due back soonest serves again. */
  #keepOneServing(): void {
    const pool = this.#options.pool;
    if (pool.serving().length > 0) return;
    let best: Worker | undefined;
    for (const w of pool.inState('ready')) {
      if (!w.ejected) continue;
      if (!best || (this.ejectedUntil(w) ?? 0) < (this.ejectedUntil(best) ?? 0)) best = w;
    }
    if (best) this.#readmit(best, 'no other worker is serving');
  }

  #record(name: string): Record {
    let r = this.#records.get(name);
    if (!r) {
      r = { failures: 0, ejections: 0, ejectedUntil: -Infinity, lastReadmitAt: -Infinity };
      this.#records.set(name, r);
    }
    return r;
  }
}
