import {
  status as GrpcStatus,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
} from '@grpc/grpc-js';
import {
  HealthCheckResponse_ServingStatus as ServingStatus,
  type HealthCheckRequest,
  type HealthCheckResponse,
  type HealthServer,
} from '../gen/grpc/health/v1/health.js';

export { HealthCheckResponse_ServingStatus as ServingStatus } from '../gen/grpc/health/v1/health.js';

/**
 * The serving status of each service, for the standard grpc.health.v1 service. The empty
 * name stands for the server as a whole. Only registered names are known: Check answers
 * NOT_FOUND for others, Watch SERVICE_UNKNOWN (and follows the name if it appears later).
 */
export class HealthStatus {
  readonly #status = new Map<string, ServingStatus>();
  readonly #watchers = new Map<string, Set<(s: ServingStatus) => void>>();

  constructor(services: readonly string[], initial: ServingStatus = ServingStatus.NOT_SERVING) {
    for (const s of ['', ...services]) this.#status.set(s, initial);
  }

  get(service: string): ServingStatus | undefined {
    return this.#status.get(service);
  }

  set(service: string, status: ServingStatus): void {
    if (this.#status.get(service) === status) return;
    this.#status.set(service, status);
    for (const w of this.#watchers.get(service) ?? []) w(status);
  }

  /** Every known service, the server included. */
  setAll(status: ServingStatus): void {
    for (const s of [...this.#status.keys()]) this.set(s, status);
  }

  watch(service: string, listener: (s: ServingStatus) => void): () => void {
    let set = this.#watchers.get(service);
    if (!set) this.#watchers.set(service, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#watchers.delete(service);
    };
  }
}

export function createHealthHandlers(health: HealthStatus): HealthServer {
  return {
    check(call: ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>, cb: sendUnaryData<HealthCheckResponse>) {
      const status = health.get(call.request.service);
      if (status === undefined) cb({ code: GrpcStatus.NOT_FOUND, details: `unknown service ${call.request.service}` });
      else cb(null, { status });
    },
    watch(call: ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) {
      const service = call.request.service;
      call.write({ status: health.get(service) ?? ServingStatus.SERVICE_UNKNOWN });
      const stop = health.watch(service, (status) => call.write({ status }));
      call.on('cancelled', stop);
      call.on('close', stop);
    },
  };
}
