import {
  Metadata,
  ServerInterceptingCall,
  type MethodDefinition,
  type ServerInterceptor,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import { GatewayError } from '../core/errors.js';
import { requestIdOf } from '../routes/rules.js';
import { REQUEST_ID_HEADER } from '../routes/table.js';
import { toGrpcError } from './grpc-errors.js';

/**
 * Requests the gRPC server cannot take are the client's fault and answered INVALID_ARGUMENT
 * with the reason, where grpc-js would answer INTERNAL ("Error deserializing request") or
 * UNIMPLEMENTED (no request message, or a second one for a method that takes one): both read
 * as a server fault. A message that does not decode becomes an Undecodable in place of the
 * request (decodeChecked), and requestGuard answers it before any handler sees it.
 */

/** What a request message that does not decode as its type arrives as. */
export class Undecodable {
  constructor(readonly reason: string) {}
}

/** `service` with every request decoder wrapped: a message that fails to decode is an Undecodable. */
export function decodeChecked<S extends ServiceDefinition>(service: S): S {
  return withMethods(service, (method) => ({
    requestDeserialize: (bytes: Buffer): unknown => {
      try {
        return method.requestDeserialize(bytes);
      } catch (err) {
        return new Undecodable(`The request to ${method.path} is not a valid message: ${messageOf(err)}`);
      }
    },
  }));
}

/** `service` with what `change` returns of each method's definition laid over it. */
export function withMethods<S extends ServiceDefinition>(
  service: S,
  change: (method: MethodDefinition<unknown, unknown>) => Partial<MethodDefinition<unknown, unknown>>,
): S {
  const out: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(service)) out[name] = { ...method, ...change(method) };
  return out as S;
}

/**
 * A server interceptor for methods that take one request message (unary and server-streaming):
 * an Undecodable message, no message, or a second message ends the call with INVALID_ARGUMENT
 * (catalogue code `undecodable`) before the handler runs. Client-streaming calls pass untouched.
 */
export const requestGuard: ServerInterceptor = (method, call) => {
  if (method.requestStream) return new ServerInterceptingCall(call);
  let received = false;
  let refused = false;
  let requestId: string | undefined;
  const refuse = (message: string): void => {
    refused = true;
    call.sendStatus(toGrpcError(new GatewayError('undecodable', { message }), requestIdTrailer(requestId)));
  };
  return new ServerInterceptingCall(call, {
    start: (next) =>
      next({
        onReceiveMetadata: (metadata, pass) => {
          requestId = clientRequestId(metadata);
          pass(metadata);
        },
        onReceiveMessage: (message: unknown, pass) => {
          if (refused) return;
          if (message instanceof Undecodable) refuse(message.reason);
          else if (received) refuse(`${method.path} takes one request message; a second one arrived.`);
          else {
            received = true;
            pass(message);
          }
        },
        onReceiveHalfClose: (pass) => {
          if (refused) return;
          if (!received) refuse(`${method.path} takes one request message; the call ended without one.`);
          else pass();
        },
      }),
  });
};

/**
 * A server interceptor that holds a call's metadata to `maxBytes` (max_header_size, what HTTP's
 * request heads are held to): larger ends the call with RESOURCE_EXHAUSTED (catalogue code
 * `headers_too_large`) before any handler runs, rather than reaching a worker that refuses it.
 * Counted as HTTP/2 counts a header list: each name and value, and 32 bytes for each entry.
 */
export function metadataLimit(maxBytes: number): ServerInterceptor {
  return (_method, call) =>
    new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            let bytes = 0;
            for (const [name, values] of Object.entries(metadata.toHttp2Headers())) {
              for (const v of Array.isArray(values) ? values : [values]) bytes += name.length + String(v).length + 32;
            }
            if (bytes <= maxBytes) return pass(metadata);
            call.sendStatus(
              toGrpcError(
                new GatewayError('headers_too_large', {
                  message: `The request metadata is ${bytes} bytes; the gateway accepts at most ${maxBytes} (max_header_size).`,
                }),
                requestIdTrailer(clientRequestId(metadata)),
              ),
            );
          },
        }),
    });
}

/** The client's `x-request-id`, if it sent one as text. */
function clientRequestId(metadata: Metadata): string | undefined {
  const v = metadata.get(REQUEST_ID_HEADER)[0];
  return typeof v === 'string' ? v : undefined;
}

/** A call refused before the service saw it still answers with its request id (the client's, or a new one). */
function requestIdTrailer(clientId: string | undefined): Metadata {
  const m = new Metadata();
  m.set(REQUEST_ID_HEADER, requestIdOf(clientId));
  return m;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
