import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { ReflectionService } from '@grpc/reflection';
import { FILE_DESCRIPTOR_SET_BASE64 } from '../gen/descriptors.js';

/**
 * The served protos' descriptors as the compiler made them (src/gen/descriptors.ts, from
 * `npm run gen`): each file under its own name (`flockserve/v1/inference.proto`,
 * `google/protobuf/struct.proto`, ...) with its dependency list. Strict reflection clients
 * (buf curl, grpcurl, Postman) link the files by those names and refuse a file whose imports
 * are missing, so the files go out as they are, never re-derived from a loaded schema.
 */
export function servedFileDescriptors(): Uint8Array[] {
  const set = fromBinary(FileDescriptorSetSchema, Buffer.from(FILE_DESCRIPTOR_SET_BASE64, 'base64'));
  return set.file.map((f) => toBinary(FileDescriptorProtoSchema, f));
}

/**
 * Server reflection (v1 and v1alpha) over the served files. @grpc/reflection reads the
 * `fileDescriptorProtos` of a package definition's entries and serves each file, with the
 * files it depends on, as it finds it.
 */
export function createReflection(): ReflectionService {
  const definition = {
    'flockserve.served': { format: 'FileDescriptorProtos', fileDescriptorProtos: servedFileDescriptors() },
  } as unknown as ConstructorParameters<typeof ReflectionService>[0];
  return new ReflectionService(definition);
}
