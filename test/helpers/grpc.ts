import {
  credentials,
  loadPackageDefinition,
  Metadata,
  type CallOptions,
  type GrpcObject,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** `authorization: Bearer <key>` metadata; no key gives empty metadata. */
export function bearer(key?: string): Metadata {
  const md = new Metadata();
  if (key !== undefined) md.set('authorization', `Bearer ${key}`);
  return md;
}

// The shape of the generated clients' last overload (TypeScript infers from the last one).
type UnaryMethod<Req, Res> = (
  req: Req,
  md: Metadata,
  options: Partial<CallOptions>,
  cb: (err: ServiceError | null, res: Res) => void,
) => unknown;

/** Calls a generated unary client method and resolves with its answer. */
export function unary<Req, Res>(method: UnaryMethod<Req, Res>, req: Req, md: Metadata): Promise<Res> {
  return new Promise((resolve, reject) => method(req, md, {}, (err, res) => (err ? reject(err) : resolve(res))));
}

/** Like unary, but expects a failure and resolves with it (code, details, catalogue code). */
export async function unaryError<Req, Res>(
  method: UnaryMethod<Req, Res>,
  req: Req,
  md: Metadata,
): Promise<{ code: number; details: string; errorCode: string | undefined }> {
  try {
    await unary(method, req, md);
  } catch (err) {
    const e = err as ServiceError;
    const errorCode = e.metadata?.get('flockserve-error-code')[0];
    return { code: e.code, details: e.details, errorCode: typeof errorCode === 'string' ? errorCode : undefined };
  }
  throw new Error('expected the call to fail');
}

type ReflectionStream = NodeJS.ReadWriteStream & { end(): void };

/** A reflection client from @grpc/reflection's own copy of the standard reflection.proto. */
function reflectionClient(address: string): { ServerReflectionInfo(): ReflectionStream; close(): void } {
  const pkgDir = dirname(createRequire(import.meta.url).resolve('@grpc/reflection/package.json'));
  const def = loadSync(join(pkgDir, 'build/proto/grpc/reflection/v1/reflection.proto'), { keepCase: true });
  const ns = loadPackageDefinition(def) as unknown as { grpc: { reflection: { v1: GrpcObject } } };
  const Ctor = ns.grpc.reflection.v1['ServerReflection'] as unknown as new (
    address: string,
    creds: ReturnType<typeof credentials.createInsecure>,
  ) => { ServerReflectionInfo(): ReflectionStream; close(): void };
  return new Ctor(address, credentials.createInsecure());
}

/** One request on a server reflection stream (grpc.reflection.v1, snake_case fields), its one answer. */
export async function reflect(address: string, request: Record<string, unknown>): Promise<Record<string, unknown>> {
  const client = reflectionClient(address);
  const call = client.ServerReflectionInfo();
  const answer = new Promise<Record<string, unknown>>((resolve, reject) => {
    call.once('data', (d: Record<string, unknown>) => resolve(d));
    call.once('error', reject);
  });
  call.write(request as never);
  try {
    return await answer;
  } finally {
    call.end();
    client.close();
  }
}
