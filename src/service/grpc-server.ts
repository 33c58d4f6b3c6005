import { Server, ServerCredentials } from '@grpc/grpc-js';
import { InferenceServiceService, type InferenceServiceServer } from '../gen/flockserve/v1/inference.js';
import { NodeControlServiceService, type NodeControlServiceServer } from '../gen/flockserve/v1/node_control.js';

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
  maxMessageBytes: number;
}): Promise<GrpcListener> {
  const server = new Server({
    'grpc.max_receive_message_length': options.maxMessageBytes,
  });
  server.addService(InferenceServiceService, options.inference);
  server.addService(NodeControlServiceService, options.nodeControl);
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${options.port}`, ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
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
