import { Server, ServerCredentials } from '@grpc/grpc-js';
import { createServer as createNetServer } from 'node:net';
import { OPTIONS } from '../config/options.js';
import { ClientConnectionStats, limitConnections } from './connections.js';
import { InferenceServiceService, type InferenceServiceServer } from '../gen/flockserve/v1/inference.js';
import { NodeControlServiceService, type NodeControlServiceServer } from '../gen/flockserve/v1/node_control.js';
import { HealthService, type HealthServer } from '../gen/grpc/health/v1/health.js';
import type { TlsFiles } from '../runtime/tls.js';
import { decodeChecked, metadataLimit, requestGuard } from './grpc-decode.js';
import { passEncoded } from './grpc-encoded.js';
import { createReflection } from './reflection.js';

export interface GrpcListener {
  readonly port: number;
  /** Stops accepting calls, lets running ones finish up to `graceMs`, then cancels them. */
  close(graceMs: number): Promise<void>;
}

/** What a client may hold of the gRPC listener, as the options name them. */
export interface GrpcClientLimits {
  /** keepalive_timeout: a connection with no call running is closed (GOAWAY) after this, ms. */
  readonly idleTimeoutMs: number;
  /** max_connections: connections open at once; more are closed when accepted (0: no cap). */
  readonly maxConnections: number;
  /** grpc_max_concurrent_streams: calls one connection may run at once. */
  readonly maxConcurrentStreams: number;
  /** grpc_keepalive_time: ms between the PINGs sent to each connection. */
  readonly keepaliveTimeMs: number;
}

/** The options' defaults. */
export const DEFAULT_GRPC_CLIENT_LIMITS: GrpcClientLimits = {
  idleTimeoutMs: OPTIONS.keepalive_timeout.default * 1000,
  maxConnections: OPTIONS.max_connections.default,
  maxConcurrentStreams: OPTIONS.grpc_max_concurrent_streams.default,
  keepaliveTimeMs: OPTIONS.grpc_keepalive_time.default * 1000,
};

/** How long a PING may go unanswered before its connection is closed (gRPC's default). */
const KEEPALIVE_TIMEOUT_MS = 20_000;

/**
 * The gRPC listener. The socket is ours (a net.Server handing each accepted connection to
 * grpc-js through its connection injector), so the connection cap and count are the same as
 * the HTTP listener's (limitConnections); the rest is grpc-js's: an idle connection's GOAWAY,
 * keepalive PINGs, the HTTP/2 stream limit. grpc-js has no timeout for a request message that
 * arrives slowly: the client's deadline, the stream limit and the connection cap bound it.
 */
export async function startGrpcServer(options: {
  host: string;
  port: number;
  inference: InferenceServiceServer;
  nodeControl: NodeControlServiceServer;
  /** grpc.health.v1.Health, for load balancers and probes. */
  health: HealthServer;
  maxMessageBytes: number;
  /** max_header_size: the most bytes of metadata a call may carry (default: the option's). */
  maxMetadataBytes?: number;
  tls?: TlsFiles | undefined;
  limits?: GrpcClientLimits;
  /** Counts connections (read by the metrics). */
  connections?: ClientConnectionStats;
}): Promise<GrpcListener> {
  const limits = options.limits ?? DEFAULT_GRPC_CLIENT_LIMITS;
  const server = new Server({
    // A larger message is refused by grpc-js with RESOURCE_EXHAUSTED, as HTTP refuses it with 413.
    'grpc.max_receive_message_length': options.maxMessageBytes,
    interceptors: [metadataLimit(options.maxMetadataBytes ?? OPTIONS.max_header_size.default), requestGuard],
    'grpc.max_concurrent_streams': limits.maxConcurrentStreams,
    'grpc.max_connection_idle_ms': Math.round(limits.idleTimeoutMs),
    'grpc.keepalive_time_ms': Math.round(limits.keepaliveTimeMs),
    'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
  });
  server.addService(passEncoded(decodeChecked(InferenceServiceService)), options.inference);
  server.addService(decodeChecked(NodeControlServiceService), options.nodeControl);
  server.addService(decodeChecked(HealthService), options.health);
  createReflection().addToServer(server);
  const creds = options.tls
    ? ServerCredentials.createSsl(null, [{ cert_chain: options.tls.cert, private_key: options.tls.key }], false)
    : ServerCredentials.createInsecure();
  const injector = server.createConnectionInjector(creds);
  const listener = createNetServer({ noDelay: true }, (socket) => injector.injectConnection(socket));
  limitConnections(listener, 'grpc', limits.maxConnections, options.connections ?? new ClientConnectionStats());
  const port = await new Promise<number>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(options.port, options.host, () => {
      listener.off('error', reject);
      resolve((listener.address() as { port: number }).port);
    });
  });
  return {
    port,
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        listener.close();
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        force.unref();
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
