import { Metadata, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData } from '@grpc/grpc-js';
import type { Clock } from '../core/clock.js';
import { GatewayError } from '../core/errors.js';
import {
  SloVerdict,
  type GetStatusResponse,
  type NodeControlServiceServer,
  type WatchEventsRequest,
  type WatchEventsResponse,
} from '../gen/flockserve/v1/node_control.js';
import { checkNodeControlKey } from './auth.js';
import { BoundedWriter } from './bounded-writer.js';
import { toGrpcError } from './grpc-errors.js';
import type { ControlPlane, GatewayStatus } from './status.js';
import { workerToProto } from './workers.js';

export { workerToProto } from './workers.js';

export interface NodeControlOptions {
  /** Events a WatchEvents subscriber may fall behind before its stream is ended (default 1024). */
  readonly watchBufferLimit?: number;
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

/** GetStatus: the status as it is, with the replicas' and the SLO's parts in the proto's shape. */
function statusToProto(s: GatewayStatus): GetStatusResponse {
  const c = s.coordination;
  const q = s.queueWaitSlo;
  return {
    ...s,
    coordination: c
      ? {
          kind: c.kind,
          replica: c.replica,
          leader: c.leader ?? '',
          leaderSinceUnixMs: c.leaderSince ?? 0,
          replicas: c.replicas.map((r) => ({ id: r.id, startedUnixMs: r.startedAt, leaving: r.leaving })),
          storeReachable: c.storeReachable,
          storeUnreachableSinceUnixMs: c.storeUnreachableSince ?? 0,
        }
      : undefined,
    queueWaitSlo: { ...q, verdict: SLO_VERDICTS[q.verdict] },
  };
}

const SLO_VERDICTS = {
  unknown: SloVerdict.SLO_VERDICT_UNKNOWN,
  held: SloVerdict.SLO_VERDICT_HELD,
  missed: SloVerdict.SLO_VERDICT_MISSED,
} as const;

/** proto3 `optional string name`: absent and empty both mean "not named". */
const named = (name: string | undefined): string | undefined => (name === undefined || name === '' ? undefined : name);

export function createNodeControlHandlers(
  plane: ControlPlane,
  clock: Clock,
  options: NodeControlOptions = {},
): NodeControlServiceServer {
  const limit = options.watchBufferLimit ?? 1024;
  const proto = (w: Parameters<typeof workerToProto>[0]) => workerToProto(w, clock, Date.now());

  return {
    getStatus: unary(plane, () => statusToProto(plane.status())),
    listWorkers: unary(plane, () => ({ workers: plane.workers().map(proto) })),
    addWorker: unary(plane, async (req) => ({ worker: proto(await plane.addWorker(named(req.name))) })),
    removeWorker: unary(plane, async (req) => ({ worker: proto(await plane.removeWorker(named(req.name))) })),
    drainWorker: unary(plane, async (req) => {
      if (req.name === '') throw new GatewayError('bad_request', { message: 'name is required', param: 'name' });
      return { worker: proto(await plane.drainWorker(req.name)) };
    }),
    setScaleBounds: unary(plane, (req) => plane.setScaleBounds(req.minWorkers, req.maxWorkers)),
    watchEvents(call: ServerWritableStream<WatchEventsRequest, WatchEventsResponse>) {
      try {
        authorize(plane, call.metadata);
      } catch (err) {
        call.emit('error', toGrpcError(err));
        return;
      }
      let unsubscribe = (): void => {};
      const writer = new BoundedWriter<WatchEventsResponse>(call, limit, (behind) => {
        unsubscribe();
        call.emit(
          'error',
          toGrpcError(
            new GatewayError('watcher_too_slow', {
              message: `The event watcher fell ${behind} events behind; reconnect and list the workers again.`,
            }),
          ),
        );
      });
      unsubscribe = plane.watch((event) => writer.push(event));
      // 'cancelled' when the client goes away; 'close' covers a server shutdown ending the call.
      call.on('cancelled', () => unsubscribe());
      call.on('close', () => unsubscribe());
      // Headers now: a client learns at once that it is subscribed (and authorized), not at the first event.
      call.sendMetadata(new Metadata());
    },
  };
}
