import http2 from 'node:http2';

/**
 * A gRPC server-streaming call made over plain HTTP/2, so that its reader can stop: paused, it
 * grants the server no more flow-control window, as a wedged client does. (A paused grpc-js
 * client stream is no such client: grpc-js keeps reading into its own unbounded buffer.) By
 * default one HTTP/2 connection per call, as one client per stream; calls given a `session`
 * share it, as a grpc-js or grpc-go channel multiplexes its calls on one connection (node
 * grants the connection's window back as it receives, so a paused call closes its own
 * stream's window only).
 */
export interface RawGrpcCall<Res> {
  /** Resolves when the first message has arrived. */
  readonly first: Promise<void>;
  /** Stops reading (the client's window closes once node's 16 KiB buffer is full). */
  pause(): void;
  resume(): void;
  /** Resolves when the call is over: every message, and the status the trailers carried. */
  readonly done: Promise<{ messages: Res[]; status: number; details: string }>;
  close(): void;
  /** Messages received so far. */
  received(): number;
}

/** Calls `path` with the encoded request `body`; `decode` reads each answer message. */
export function rawGrpcCall<Res>(
  address: string,
  path: string,
  body: Uint8Array,
  decode: (bytes: Uint8Array) => Res,
  shared?: http2.ClientHttp2Session,
): RawGrpcCall<Res> {
  const session = shared ?? http2.connect(`http://${address}`);
  if (!shared) session.on('error', () => {});
  const stream = session.request({
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  stream.on('error', () => {});
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  frame.set(body, 5);
  stream.end(frame);

  const messages: Res[] = [];
  let pending: Buffer = Buffer.alloc(0);
  let gotFirst: () => void = () => {};
  const first = new Promise<void>((resolve) => (gotFirst = resolve));
  stream.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 5) {
      const length = pending.readUInt32BE(1);
      if (pending.length < 5 + length) break;
      messages.push(decode(pending.subarray(5, 5 + length)));
      pending = pending.subarray(5 + length);
      gotFirst();
    }
  });
  let status = -1;
  let details = '';
  const read = (h: http2.IncomingHttpHeaders): void => {
    if (h['grpc-status'] !== undefined) status = Number(h['grpc-status']);
    if (typeof h['grpc-message'] === 'string') details = decodeURIComponent(h['grpc-message']);
  };
  stream.on('response', read); // a trailers-only answer carries its status in the headers
  stream.on('trailers', read);
  const done = new Promise<{ messages: Res[]; status: number; details: string }>((resolve) =>
    stream.once('close', () => {
      if (!shared) session.close();
      gotFirst();
      resolve({ messages, status, details });
    }),
  );
  return {
    first,
    pause: () => stream.pause(),
    resume: () => stream.resume(),
    done,
    close: () => (shared ? stream.close(http2.constants.NGHTTP2_CANCEL) : session.destroy()),
    received: () => messages.length,
  };
}
