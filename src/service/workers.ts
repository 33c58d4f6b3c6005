import type { Clock } from '../core/clock.js';
import { GatewayError } from '../core/errors.js';
import type { Worker, WorkerState } from '../core/types.js';
import { WorkerState as ProtoWorkerState, type Worker as ProtoWorker } from '../gen/flockserve/v1/node_control.js';

export const STATE: Record<WorkerState, ProtoWorkerState> = {
  provisioning: ProtoWorkerState.WORKER_STATE_PROVISIONING,
  starting: ProtoWorkerState.WORKER_STATE_STARTING,
  ready: ProtoWorkerState.WORKER_STATE_READY,
  not_ready: ProtoWorkerState.WORKER_STATE_NOT_READY,
  draining: ProtoWorkerState.WORKER_STATE_DRAINING,
  terminating: ProtoWorkerState.WORKER_STATE_TERMINATING,
  gone: ProtoWorkerState.WORKER_STATE_GONE,
  failed: ProtoWorkerState.WORKER_STATE_FAILED,
};

export function workerToProto(w: Worker, clock: Clock, wallNowMs: number): ProtoWorker {
  const now = clock.now();
  return {
    name: w.name,
    state: STATE[w.state],
    url: w.url ?? '',
    inFlight: w.inFlight,
    capacity: w.capacity,
    ageSeconds: (now - w.createdAt) / 1000,
    // The pool keeps clock time; convert to wall time for the client.
    lastProbeUnixMs: w.lastProbeAt === undefined ? 0 : Math.round(wallNowMs - (now - w.lastProbeAt)),
    totalRequests: w.totalRequests,
    provisionerDetail: { ...w.detail },
    ejected: w.ejected,
  };
}

/**
 * The full name of a worker an operator asks to add: `<prefix>-<n>`, or just `n` (what
 * FlockServe's /add_new_node took as worker_name). Other names are refused: on restart the
 * gateway adopts only `<prefix>-<n>` clusters, so a worker named otherwise would be
 * forgotten, and a cloud cluster left running, after a crash.
 */
export function workerNameFor(requested: string, prefix: string): string {
  const name = requested.trim();
  // BigInt drops leading zeros (7 and 007 are one worker) and, unlike Number, keeps every digit.
  if (/^\d+$/.test(name)) return `${prefix}-${BigInt(name)}`;
  const n = name.startsWith(`${prefix}-`) ? name.slice(prefix.length + 1) : undefined;
  if (n !== undefined && /^\d+$/.test(n)) return `${prefix}-${BigInt(n)}`;
  throw new GatewayError('bad_request', {
    message: `worker names are ${prefix}-<n> (e.g. ${prefix}-7) or just <n>, got ${JSON.stringify(requested)}: only such names are adopted again after a restart`,
    param: 'name',
  });
}
