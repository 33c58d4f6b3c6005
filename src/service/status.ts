import type { Worker } from '../core/pool.js';

/** What GetStatus and `GET /` report; one snapshot, two renderings. */
export interface GatewayStatus {
  readonly readyWorkerCount: number;
  readonly workerCount: number;
  readonly queueLengthRunningMean: number;
  readonly currentQueueLength: number;
  readonly gatewayQueueLength: number;
  readonly uptimeSeconds: number;
  readonly totalRequests: number;
  readonly workerNames: string[];
  readonly minWorkers: number;
  readonly maxWorkers: number;
  readonly autoscaler: string;
  readonly loadBalancer: string;
  readonly provisioner: string;
  /** Workers given up on after max_launch_retries failed launches (since start). */
  readonly failedLaunches: number;
  /** Clusters whose teardown failed every attempt: they may still be running (and billing). */
  readonly unterminatedClusters: string[];
}

/** The gateway as node control sees it. */
export interface ControlPlane {
  status(): GatewayStatus;
  workers(): Worker[];
  readonly nodeControlKey: string | undefined;
}

/** FlockServe's `GET /` JSON (same keys as the original, plus a few). */
export function legacyStatusJson(s: GatewayStatus): Record<string, unknown> {
  return {
    ready_worker_count: s.readyWorkerCount,
    worker_count: s.workerCount,
    queue_length_running_mean: s.queueLengthRunningMean,
    current_queue_length: s.currentQueueLength,
    gateway_queue_length: s.gatewayQueueLength,
    uptime: s.uptimeSeconds,
    total_requests: s.totalRequests,
    worker_names: s.workerNames,
    failed_launches: s.failedLaunches,
    unterminated_clusters: s.unterminatedClusters,
  };
}
