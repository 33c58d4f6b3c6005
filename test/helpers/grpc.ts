import { Metadata, type CallOptions, type ServiceError } from '@grpc/grpc-js';

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
