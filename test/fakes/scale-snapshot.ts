import type { ScaleSnapshot, WorkerCounts } from '../../src/core/autoscaler/types.js';

export interface SnapshotInput {
  /** Running mean of the queue length. */
  mean: number;
  /** Queue now; defaults to the mean rounded. */
  queue?: number;
  /** Panic-window mean; defaults to the mean. */
  panic?: number;
  workers?: Partial<WorkerCounts>;
  min?: number;
  max?: number;
  lastScaleUpAt?: number;
  up?: number;
  down?: number;
  delayS?: number;
  /** worker_capacity; default 30. */
  capacity?: number;
}

/** A ScaleSnapshot with FlockServe's defaults (up 7, down 4, delay 300 s), min 1, max 10. */
export function scaleSnapshot(c: SnapshotInput): ScaleSnapshot {
  return {
    queueLengthMean: c.mean,
    queueLength: c.queue ?? Math.round(c.mean),
    panicQueueLengthMean: c.panic ?? c.mean,
    workers: { ready: 0, starting: 0, provisioning: 0, notReady: 0, draining: 0, ...c.workers },
    minWorkers: c.min ?? 1,
    maxWorkers: c.max ?? 10,
    ...(c.lastScaleUpAt === undefined ? {} : { lastScaleUpAt: c.lastScaleUpAt }),
    config: {
      autoscaleUp: c.up ?? 7,
      autoscaleDown: c.down ?? 4,
      downscaleDelayMs: (c.delayS ?? 300) * 1000,
      workerCapacity: c.capacity ?? 30,
    },
  };
}
