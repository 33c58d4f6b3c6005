import { Server, ServerCredentials } from '@grpc/grpc-js';
import { InferenceServiceService, type InferenceServiceServer } from '../gen/flockserve/v1/inference.js';
import { NodeControlServiceService, type NodeControlServiceServer } from '../gen/flockserve/v1/node_control.js';
import { HealthService, type HealthServer } from '../gen/grpc/health/v1/health.js';
import type { TlsFiles } from '../runtime/tls.js';
import { createReflection } from './reflection.js';

export interface GrpcListener {
  readonly port: number;
  /** Stops accepting calls, lets running ones finish up to `graceMs`, then cancels them. */
  close(graceMs: number): Promise<void>;
}

export async function startGrpcServer(options: {
  host: string;
  port: number;
  inference: InferenceServiceServer;
  nodeControl: NodeControlServiceServer;
  /** grpc.health.v1.Health, for load balancers and probes. */
  health: HealthServer;
  maxMessageBytes: number;
  tls?: TlsFiles | undefined;
}): Promise<GrpcListener> {
  const server = new Server({
    'grpc.max_receive_message_length': options.maxMessageBytes,
  });
  server.addService(InferenceServiceService, options.inference);
  server.addService(NodeControlServiceService, options.nodeControl);
  server.addService(HealthService, options.health);
  createReflection().addToServer(server);
  const creds = options.tls
    ? ServerCredentials.createSsl(null, [{ cert_chain: options.tls.cert, private_key: options.tls.key }], false)
    : ServerCredentials.createInsecure();
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${options.port}`, creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port,
    close: (graceMs) =>
      new Promise<void>((resolve) => {
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
