import type { Clock } from '../../core/clock.js';
import type { WorkerPool } from '../../core/pool.js';

/** One simulated request's timestamps (virtual ms). */
export interface RequestRecord {
  readonly arrivedAt: number;
  leasedAt?: number;
  firstTokenAt?: number;
  doneAt?: number;
  /** Why it ended without an answer (an error code: queue_timeout, queue_full, worker_lost, ...). */
  failed?: string;
  /** When it gave up waiting or failed. */
  failedAt?: number;
}

export interface Percentiles {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly mean: number;
  readonly max: number;
}

export interface SimSummary {
  readonly requests: number;
  readonly completed: number;
  /** Requests that ended with an error, by code. */
  readonly failed: Readonly<Record<string, number>>;
  /** Requests still open when the simulation stopped (should be 0). */
  readonly unfinished: number;
  /** Seconds from arrival to a worker slot; requests that timed out count with the time they waited. */
  readonly queueWaitS: Percentiles;
  /** Seconds from arrival to the first token (completed requests). */
  readonly ttftS: Percentiles;
  /** Seconds from arrival to the last token (completed requests). */
  readonly e2eS: Percentiles;
  /** Σ over workers of the time from launch to gone (what the cloud bills), until the last request ended. */
  readonly workerSeconds: number;
  readonly peakWorkers: number;
  /** Simulated seconds until the last request ended. */
  readonly durationS: number;
  /** With `settle`: seconds after the last request until the fleet was back at min_workers, and what they cost. */
  readonly settle?: { readonly seconds: number; readonly workerSeconds: number };
}

/**
 * Collects what the simulation reports: request timings, and the cost of the fleet as
 * worker-seconds, integrated on every pool change (a worker costs from the moment its
 * launch starts until it is gone, whatever its state).
 */
export class SimMetrics {
  readonly #clock: Clock;
  readonly records: RequestRecord[] = [];
  #billable = 0;
  #peak = 0;
  #area = 0;
  #lastChange = 0;
  #open = 0;
  /** [time, area] when the traffic ended (the last request finished), if it has. */
  #trafficEnd: [number, number] | undefined;

  constructor(clock: Clock, pool: WorkerPool) {
    this.#clock = clock;
    this.#lastChange = clock.now();
    pool.onChange(({ worker, previous, reason }) => {
      if (reason === 'added' && previous === worker.state) this.#setBillable(this.#billable + 1);
      else if (worker.state === 'gone') this.#setBillable(this.#billable - 1);
    });
  }

  /** Workers that exist now (launching, up, draining or being torn down). */
  get billableWorkers(): number {
    return this.#billable;
  }

  arrived(): RequestRecord {
    const r: RequestRecord = { arrivedAt: this.#clock.now() };
    this.records.push(r);
    this.#open++;
    return r;
  }

  leased(r: RequestRecord): void {
    r.leasedAt = this.#clock.now();
  }

  firstToken(r: RequestRecord): void {
    r.firstTokenAt ??= this.#clock.now();
  }

  done(r: RequestRecord): void {
    if (r.failed !== undefined || r.doneAt !== undefined) return;
    r.doneAt = this.#clock.now();
    this.#open--;
  }

  failed(r: RequestRecord, code: string): void {
    if (r.failed !== undefined || r.doneAt !== undefined) return;
    r.failed = code;
    r.failedAt = this.#clock.now();
    this.#open--;
  }

  /** Requests that have arrived and not yet ended (answered or failed). */
  get open(): number {
    return this.#open;
  }

  /** The last request has ended: cost and duration are counted up to now; what follows is the settle. */
  markTrafficEnd(): void {
    this.#setBillable(this.#billable);
    this.#trafficEnd = [this.#clock.now(), this.#area];
  }

  summary(): SimSummary {
    const now = this.#clock.now();
    this.#setBillable(this.#billable); // close the last cost segment at now
    const [endAt, endArea] = this.#trafficEnd ?? [now, this.#area];
    const waits: number[] = [];
    const ttft: number[] = [];
    const e2e: number[] = [];
    const failed: Record<string, number> = {};
    let completed = 0;
    let unfinished = 0;
    for (const r of this.records) {
      if (r.leasedAt !== undefined) waits.push(r.leasedAt - r.arrivedAt);
      else if (r.failed === 'queue_timeout' && r.failedAt !== undefined) waits.push(r.failedAt - r.arrivedAt);
      if (r.doneAt !== undefined) {
        completed++;
        e2e.push(r.doneAt - r.arrivedAt);
        if (r.firstTokenAt !== undefined) ttft.push(r.firstTokenAt - r.arrivedAt);
      } else if (r.failed !== undefined) failed[r.failed] = (failed[r.failed] ?? 0) + 1;
      else unfinished++;
    }
    return {
      requests: this.records.length,
      completed,
      failed,
      unfinished,
      queueWaitS: percentiles(waits),
      ttftS: percentiles(ttft),
      e2eS: percentiles(e2e),
      workerSeconds: endArea / 1000,
      peakWorkers: this.#peak,
      durationS: endAt / 1000,
      ...(now > endAt
        ? { settle: { seconds: (now - endAt) / 1000, workerSeconds: (this.#area - endArea) / 1000 } }
        : {}),
    };
  }

  #setBillable(n: number): void {
    const now = this.#clock.now();
    this.#area += this.#billable * (now - this.#lastChange);
    this.#lastChange = now;
    this.#billable = n;
    if (n > this.#peak) this.#peak = n;
  }
}

/** Nearest-rank percentiles of millisecond samples, in seconds. E.g. 100 samples: p99 is the 99th smallest. */
export function percentiles(samplesMs: readonly number[]): Percentiles {
  if (samplesMs.length === 0) return { p50: 0, p95: 0, p99: 0, mean: 0, max: 0 };
  const sorted = Float64Array.from(samplesMs).sort();
  const at = (p: number): number => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]! / 1000;
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    p50: at(50),
    p95: at(95),
    p99: at(99),
    mean: sum / sorted.length / 1000,
    max: sorted[sorted.length - 1]! / 1000,
  };
}
