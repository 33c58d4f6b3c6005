/**
 * The generated gRPC clients and message types of FlockServe, importable as `flockserve/client`:
 *
 *   import { InferenceServiceClient, NodeControlServiceClient, credentials, bearer } from 'flockserve/client';
 *   const control = new NodeControlServiceClient('localhost:8081', credentials.createInsecure());
 *   control.listWorkers({}, bearer(process.env.FLOCKSERVE_NODE_CONTROL_KEY), (err, res) => ...);
 *
 * Examples: clients/typescript/examples/.
 */
import { Metadata } from '@grpc/grpc-js';

export * from '../gen/flockserve/v1/common.js';
export * from '../gen/flockserve/v1/inference.js';
export * from '../gen/flockserve/v1/node_control.js';
// Each generated file declares these; `export *` leaves names that clash ambiguous, so one
// copy is named here (the helper types are identical; the constants are node_control.proto's).
export {
  protobufFileName,
  protobufPackage,
  type DeepPartial,
  type Exact,
  type MessageFns,
} from '../gen/flockserve/v1/node_control.js';
export { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';

/** Call metadata with `authorization: Bearer <key>`, what NodeControl needs; no key gives empty metadata. */
export function bearer(key: string | undefined): Metadata {
  const md = new Metadata();
  if (key) md.set('authorization', `Bearer ${key}`);
  return md;
}
