import type { SloStanding } from '../core/autoscaler/history-readings.js';
import type { CoordinationStatus } from '../core/coordination.js';
import type { Worker } from '../core/types.js';
import type { EventListener } from './events.js';

/** What GetStatus and `GET /` report; one snapshot, two renderings. */
export interface GatewayStatus {
  readonly readyWorkerCount: number;
  readonly workerCount: number;
  readonly queueLengthRunningMean: number;
  readonly currentQueueLength: number;
  readonly gatewayQueueLength: number;
  /** Requests at most in flight on one worker (`worker_capacity`). */
  readonly workerCapacity: number;
  /** The gateway queue holds requests because every ready worker is at workerCapacity. */
  readonly heldAtWorkerCapacity: boolean;
  readonly uptimeSeconds: number;
  readonly totalRequests: number;
  readonly workerNames: string[];
  readonly minWorkers: number;
  readonly maxWorkers: number;
  /** Workers the autoscaler wants beyond maxWorkers, while maxWorkers holds it back (its SLO may not hold). */
  readonly autoscalerWantedWorkers?: number | undefined;
  /** queue_wait_slo and whether the p99 queue wait held it over the load history. */
  readonly queueWaitSlo: QueueWaitSloStatus;
  readonly autoscaler: string;
  readonly loadBalancer: string;
  readonly provisioner: string;
  /** Workers given up on after max_launch_retries failed launches (since start). */
  readonly failedLaunches: number;
  /** Clusters whose teardown failed every attempt: they may still be running (and billing). */
  readonly unterminatedClusters: string[];
  /** The run-time LoRA adapters the fleet holds (AdapterSync), oldest first. */
  readonly loraAdapters: string[];
  /** The gateway replicas that share this fleet, which one leads, and whether etcd answers (once running). */
  readonly coordination?: CoordinationStatus | undefined;
}

export interface ScaleBounds {
  readonly minWorkers: number;
  readonly maxWorkers: number;
}

/**
 * The gateway as node control sees it. The commands reject with GatewayErrors (unknown_worker,
 * worker_exists, at_max_workers, bad_request, shutting_down, no_leader) and resolve with the
 * worker as it is right after the command took effect: add → provisioning, remove and drain →
 * draining. They are asynchronous because on a follower replica they run on the leader.
 */
export interface ControlPlane {
  status(): GatewayStatus;
  workers(): Worker[];
  readonly nodeControlKey: string | undefined;
  /** Launches one more worker, `<prefix>-<n>` (or `n`), or the next free name. */
  addWorker(name?: string): Promise<Worker>;
  /** Drains then terminates `name`, or the least-loaded ready worker; the target drops by one. */
  removeWorker(name?: string): Promise<Worker>;
  /** Drains then terminates `name`; the target stays, so a replacement is launched. */
  drainWorker(name: string): Promise<Worker>;
  /** Changes [min_workers, max_workers] at runtime; an omitted bound keeps its value. */
  setScaleBounds(min?: number, max?: number): Promise<ScaleBounds>;
  /** Worker state changes and autoscaler decisions as they happen; returns unsubscribe. */
  watch(listener: EventListener): () => void;
}

/** FlockServe's `GET /` JSON (same keys as the original, plus a few). */
export function legacyStatusJson(s: GatewayStatus): Record<string, unknown> {
  return {
    ready_worker_count: s.readyWorkerCount,
    worker_count: s.workerCount,
    queue_length_running_mean: s.queueLengthRunningMean,
    current_queue_length: s.currentQueueLength,
    gateway_queue_length: s.gatewayQueueLength,
    worker_capacity: s.workerCapacity,
    // true while requests wait because every ready worker has worker_capacity requests in flight.
    held_at_worker_capacity: s.heldAtWorkerCapacity,
    uptime: s.uptimeSeconds,
    total_requests: s.totalRequests,
    worker_names: s.workerNames,
    failed_launches: s.failedLaunches,
    unterminated_clusters: s.unterminatedClusters,
    // null while max_workers does not hold the autoscaler back.
    autoscaler_wanted_workers: s.autoscalerWantedWorkers ?? null,
    queue_wait_slo: queueWaitSloJson(s.queueWaitSlo),
    lora_adapters: s.loraAdapters,
    ...(s.coordination ? { coordination: coordinationJson(s.coordination) } : {}),
  };
}

/**
 * The SLO as `GET /` and GetStatus report it: over the load history (the last hour, once the
 * gateway has run that long), how many requests waited longer than queue_wait_slo for a worker
 * against the whole number a p99 allows, and the verdict: held, missed, or unknown (under 100
 * requests or 5 minutes).
 */
export interface QueueWaitSloStatus {
  readonly seconds: number;
  readonly verdict: SloStanding['verdict'];
  readonly windowSeconds: number;
  readonly requests: number;
  readonly late: number;
  readonly allowed: number;
}

export function queueWaitSloStatus(seconds: number, s: SloStanding): QueueWaitSloStatus {
  const { verdict, requests, late } = s;
  return { seconds, verdict, windowSeconds: s.windowMs / 1000, requests, late, allowed: Math.floor(s.budget) };
}

function queueWaitSloJson(q: QueueWaitSloStatus): Record<string, unknown> {
  const { windowSeconds, ...rest } = q;
  return { ...rest, window_seconds: windowSeconds };
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

/**
 * The replicas part of `GET /`: who answered, who leads and since when, the replicas, and whether
 * etcd answers. While it does not, this replica serves with the last fleet it saw and nothing
 * scales (`scaling: "paused"`).
 */
function coordinationJson(c: CoordinationStatus): Record<string, unknown> {
  return {
    kind: c.kind,
    replica: c.replica,
    leader: c.leader ?? null,
    leader_since: iso(c.leaderSince),
    replicas: c.replicas.map((r) => ({
      id: r.id,
      leader: r.id === c.leader,
      started_at: iso(r.startedAt),
      leaving: r.leaving,
    })),
    store_reachable: c.storeReachable,
    store_unreachable_since: iso(c.storeUnreachableSince),
    scaling: c.leader !== undefined && c.storeReachable ? 'active' : 'paused',
  };
}
