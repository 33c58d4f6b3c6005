import type { status as GrpcStatus } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { toGatewayError } from '../core/errors.js';

/** Trailing metadata key that carries the catalogue code (e.g. unknown_worker), as OpenAI errors carry `code`. */
export const ERROR_CODE_KEY = 'flockserve-error-code';

export interface GrpcError {
  code: GrpcStatus;
  details: string;
  metadata: Metadata;
}

/**
 * Any error as the status a gRPC call ends with: the one place catalogue codes become gRPC
 * statuses (each row's `grpc` in src/core/errors.ts), the code itself in the trailer. An error
 * that is not a GatewayError is `internal`, its own text kept from the client as on HTTP.
 */
export function toGrpcError(err: unknown, trailers?: Metadata): GrpcError {
  const g = toGatewayError(err);
  const metadata = trailers?.clone() ?? new Metadata();
  metadata.set(ERROR_CODE_KEY, g.code);
  return { code: g.grpcCode as GrpcStatus, details: g.message, metadata };
}
