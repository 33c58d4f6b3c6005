import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { withMethods } from './grpc-decode.js';
import type { DrainingCall } from './paced-writer.js';

declare const encodes: unique symbol;

/**
 * A response message as its protobuf bytes, written by its method's own serializer (the
 * generated code's, so the wire format has one source). grpc-js keeps what a handler writes
 * until the client's window lets it out, up to 16 messages a stalled call: as bytes, a token
 * event is one Buffer of ~0.1 KiB (in a shared 8 KiB slab) rather than the message's objects.
 */
export type Encoded<T> = Buffer & { readonly [encodes]: T };

/** What writes a method's responses as Encoded bytes: its definition's response serializer. */
export function encoderOf<T>(method: Pick<MethodDefinition<unknown, T>, 'responseSerialize'>): (m: T) => Encoded<T> {
  const serialize = method.responseSerialize;
  return (m) => serialize(m) as Encoded<T>;
}

/**
 * `service` with every response serializer passing bytes through as they are, so a handler may
 * write Encoded messages (or message objects, which are serialized as before). No message type
 * is itself a Buffer, so the two cannot be mistaken for each other.
 */
export function passEncoded<S extends ServiceDefinition>(service: S): S {
  return withMethods(service, (method) => ({
    responseSerialize: (value: unknown): Buffer => (Buffer.isBuffer(value) ? value : method.responseSerialize(value)),
  }));
}

/**
 * A call of a passEncoded service, as it is written to: its responses' Encoded bytes (grpc-js
 * types a call's write() by the message type alone).
 */
export function writesEncoded<T>(call: DrainingCall<T>): DrainingCall<Encoded<T>> {
  return call as unknown as DrainingCall<Encoded<T>>;
}
