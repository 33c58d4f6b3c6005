import { status as GrpcStatus, type Metadata, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import type { Clock } from '../core/clock.js';
import type { Worker } from '../core/pool.js';
import type { WorkerState } from '../core/types.js';
import {
  WorkerState as ProtoWorkerState,
  type NodeControlServiceServer,
  type Worker as ProtoWorker,
} from '../gen/flockserve/v1/node_control.js';
import { checkNodeControlKey } from './auth.js';
import { toGrpcError } from './grpc-inference.js';
import type { ControlPlane } from './status.js';

const STATE: Record<WorkerState, ProtoWorkerState> = {
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
  };
}

function authorize(plane: ControlPlane, md: Metadata): void {
  const auth = md.get('authorization')[0];
  checkNodeControlKey(plane.nodeControlKey, typeof auth === 'string' ? auth : undefined);
}

/** Wraps a unary handler with the key check and error mapping. */
function unary<Req, Res>(plane: ControlPlane, fn: (req: Req) => Res | Promise<Res>) {
  return (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>): void => {
    Promise.resolve()
      .then(() => {
        authorize(plane, call.metadata);
        return fn(call.request);
      })
      .then(
        (res) => cb(null, res),
        (err: unknown) => cb(toGrpcError(err)),
      );
  };
}

const unimplemented =
  (what: string) =>
  (_call: unknown, cb?: (err: { code: GrpcStatus; details: string }) => void): void => {
    const err = { code: GrpcStatus.UNIMPLEMENTED, details: `${what} is not implemented yet` };
    if (cb) cb(err);
    else (_call as { emit(e: string, v: unknown): void }).emit('error', err);
  };

export function createNodeControlHandlers(plane: ControlPlane, clock: Clock): NodeControlServiceServer {
  return {
    getStatus: unary(plane, () => plane.status()),
    listWorkers: unary(plane, () => ({
      workers: plane.workers().map((w) => workerToProto(w, clock, Date.now())),
    })),
    addWorker: unimplemented('AddWorker'),
    removeWorker: unimplemented('RemoveWorker'),
    drainWorker: unimplemented('DrainWorker'),
    setScaleBounds: unimplemented('SetScaleBounds'),
    watchEvents: unimplemented('WatchEvents'),
  };
}
