import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { fileURLToPath } from 'node:url';

/** proto/ at the package root: two levels up from both src/service and dist/service (it ships in the npm package). */
export const PROTO_DIR = fileURLToPath(new URL('../../proto', import.meta.url));

/** Every .proto the gRPC listener serves, relative to PROTO_DIR. */
export const SERVED_PROTOS = [
  'flockserve/v1/inference.proto',
  'flockserve/v1/node_control.proto',
  'grpc/health/v1/health.proto',
] as const;

/** The served protos as @grpc/proto-loader reads them (google/protobuf/* come with protobufjs). */
export function servedPackageDefinition(): PackageDefinition {
  return loadSync([...SERVED_PROTOS], { includeDirs: [PROTO_DIR], keepCase: true, defaults: false });
}

/** Server reflection (v1 and v1alpha) over the served protos, so grpcurl works without the .proto files. */
export function createReflection(): ReflectionService {
  return new ReflectionService(servedPackageDefinition());
}
