import type { Worker } from '../types.js';
import type { ScaleConfig, ScaleSnapshot, WorkerCounts } from './types.js';

/** Counts workers by the states the autoscaler cares about. */
export function countWorkers(workers: Iterable<Pick<Worker, 'state'>>): WorkerCounts {
  let ready = 0;
  let starting = 0;
  let provisioning = 0;
  let notReady = 0;
  let draining = 0;
  for (const w of workers) {
    if (w.state === 'ready') ready++;
    else if (w.state === 'starting') starting++;
    else if (w.state === 'provisioning') provisioning++;
    else if (w.state === 'not_ready') notReady++;
    else if (w.state === 'draining') draining++;
  }
  return { ready, starting, provisioning, notReady, draining };
}

/**
 * Workers that count toward the target: all but draining (leaving) ones. Provisioning
 * workers count so that one burst does not launch a fleet while the first launch runs.
 */
export function activeWorkers(snapshot: Pick<ScaleSnapshot, 'workers'>): number {
  const w = snapshot.workers;
  return w.ready + w.starting + w.provisioning + w.notReady;
}

/** Where a snapshot's numbers come from; the gateway and the simulation build it the same way. */
export interface SnapshotSources {
  /** The load tracker over queue_tracking_window. */
  readonly tracker: { mean(): number; current(): number };
  /** The tracker over the panic window (LoadTracker.withWindow). */
  readonly panicTracker: { mean(): number };
  readonly workers: () => Iterable<Pick<Worker, 'state'>>;
  /** Read at each evaluation: the bounds can change at run time. */
  readonly bounds: () => { readonly min: number; readonly max: number };
  readonly config: ScaleConfig;
}

export function takeSnapshot(src: SnapshotSources): ScaleSnapshot {
  const { min, max } = src.bounds();
  return {
    queueLengthMean: src.tracker.mean(),
    queueLength: src.tracker.current(),
    panicQueueLengthMean: src.panicTracker.mean(),
    workers: countWorkers(src.workers()),
    minWorkers: min,
    maxWorkers: max,
    config: src.config,
  };
}

/** The common knobs from the resolved options (seconds → ms). */
export function scaleConfig(c: {
  readonly autoscaleUp: number;
  readonly autoscaleDown: number;
  readonly downscaleDelay: number;
}): ScaleConfig {
  return { autoscaleUp: c.autoscaleUp, autoscaleDown: c.autoscaleDown, downscaleDelayMs: c.downscaleDelay * 1000 };
}
