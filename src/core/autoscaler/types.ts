import type { LoadBucket } from '../load-history.js';

/**
 * Contracts of the autoscaler. A policy is a pure function of a snapshot and the time,
 * so the same code runs live and in the virtual-time simulation.
 */

/** Workers by state. `draining` ones are leaving and do not count toward the target. */
export interface WorkerCounts {
  readonly ready: number;
  readonly starting: number;
  readonly provisioning: number;
  readonly notReady: number;
  readonly draining: number;
}

export interface ScaleConfig {
  /** Scale up when the mean queue length per worker exceeds this (`autoscale_up`). */
  readonly autoscaleUp: number;
  /** Scale down when the mean queue length per worker is below this (`autoscale_down`). */
  readonly autoscaleDown: number;
  /** No scale-down within this long after a scale-up (`downscale_delay`). */
  readonly downscaleDelayMs: number;
  /** Concurrent requests a worker is sent (`worker_capacity`): its slots. */
  readonly workerCapacity: number;
}

export interface ScaleSnapshot {
  /** Time-weighted running mean of the queue length (LoadTracker.mean()). */
  readonly queueLengthMean: number;
  /** The queue length now (in flight + waiting). */
  readonly queueLength: number;
  /**
   * Mean of the queue length over the short panic window (`panic_window`, 6 s): what
   * target-tracking compares with its capacity to decide whether to panic.
   */
  readonly panicQueueLengthMean: number;
  readonly workers: WorkerCounts;
  readonly minWorkers: number;
  readonly maxWorkers: number;
  /** Clock ms of the last scale-up, if any. */
  readonly lastScaleUpAt?: number;
  readonly config: ScaleConfig;
  /** Requests waiting at the gateway for a slot now (part of queueLength). */
  readonly waiting?: number;
  /**
   * The recent load in short buckets, oldest first (LoadHistory): peaks, means, arrivals,
   * departures, ready workers. Empty or absent before the first bucket has closed.
   */
  readonly history?: readonly LoadBucket[];
  /** Milliseconds each history bucket spans. */
  readonly historyBucketMs?: number;
  /**
   * How long recent launches took, launch to ready, ms, oldest first: what a scale-down risks
   * paying again. Workers that were up already (adopted) are not launches and are left out.
   */
  readonly launchDurationsMs?: readonly number[];
}

/** The worker count wanted and why. "No change" (desired = current count) is a normal decision. */
export interface ScaleDecision {
  readonly desired: number;
  readonly reason: string;
  /**
   * What the policy wanted before max_workers held it back (settle sets it when it clamps to
   * max_workers): the gateway reports it (a warning, a metric, the status).
   */
  readonly wanted?: number;
}

export interface AutoscalerPolicy {
  readonly name: string;
  /** Called every `autoscale_interval`; the result is already within the common rules (settle.ts). */
  decide(snapshot: ScaleSnapshot, now: number): ScaleDecision;
  /**
   * Policies that must react faster than `autoscale_interval` (target-tracking's panic mode)
   * are also asked every `urgentIntervalMs`; `urgent` returns a scale-up to apply at once, or
   * undefined. Only scale-ups are taken from it.
   */
  readonly urgentIntervalMs?: number;
  urgent?(snapshot: ScaleSnapshot, now: number): ScaleDecision | undefined;
}

/** Knobs for a policy, read by the policies that have any. */
export type AutoscalerOptions = Readonly<Record<string, unknown>>;

export type AutoscalerFactory = (opts: AutoscalerOptions) => AutoscalerPolicy;
