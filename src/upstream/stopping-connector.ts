import type { Socket } from 'node:net';
import { buildConnector } from 'undici';

/** The part of a net.Socket's libuv handle that net itself uses to stop and restart reading. */
interface ReadingHandle {
  reading: boolean;
  readStop(): number;
  readStart(): number;
}

/**
 * undici's connector (as its Pool builds it from these options), whose sockets stop reading
 * from the kernel when undici's parser pauses.
 *
 * undici pauses its parser when the body's reader cannot take more, and puts the bytes it has
 * not parsed back into the socket (unshift); it resumes with socket.read(), which empties the
 * socket's buffer and so restarts its reading before those bytes are parsed. A reader that takes
 * a little at each resume (a gRPC client that reads a few messages, then stops again) thus lets
 * the socket add one more read, up to 64 KiB, at every pause, and a stalled answer's bytes pile
 * up in the gateway instead of in the kernel, which holds them for free and stops the worker.
 * Stopped when undici pauses (whether or not it puts bytes back), the socket holds what it had
 * then; it reads again at undici's next socket.read(), as net restarts a socket that a full
 * buffer stopped. Both happen only when a reader falls behind, never on the flowing path. Its
 * sockets also read the kernel READ_SIZE at a time, so that what a stalled answer leaves in the
 * gateway is at most the rest of a small read.
 */
export function stoppingConnector(options: buildConnector.BuildOptions): buildConnector.connector {
  // (undici passes what it does not know on to net.connect and tls.connect; its types do not name onread.)
  const connect = buildConnector({ ...options, onread: SMALL_READS } as buildConnector.BuildOptions);
  return (opts, callback) =>
    connect(opts, (...args) => {
      const socket = args[1] as Socket | null;
      if (socket) stopReadingOnUnshift(socket);
      callback(...args);
    });
}

/**
 * What a worker socket reads from the kernel at a time. The rest of a read that undici's parser
 * could not pass on (its reader paused) stays in the gateway, put back into the socket, for as
 * long as the reader is stalled: at most this much per stalled answer, where node's own reads
 * (64 KiB) leave up to 64 KiB. It also bounds a body chunk undici hands on (a worker that
 * sends several events per HTTP chunk: ~80 token events, against ~350), whose events all
 * become messages a stalled gRPC client holds.
 * With the socket's highWaterMark of 16 KiB, an answer that comes faster than it is read stops
 * and restarts the handle once per read, as with node's reads, so four times as often per byte.
 */
export const READ_SIZE = 16 * 1024;

/**
 * Every worker socket reads into this one buffer and copies what it read out at once, in the
 * read's callback, before the next read can start: the buffer is shared. The copy is a buffer of
 * its own and of the read's size, as node gives each of its reads, so a held slice pins no more.
 */
const SMALL_READS = {
  buffer: Buffer.allocUnsafeSlow(READ_SIZE),
  /** Called by net with the socket as `this`; false stops its handle, as net's own push does. */
  callback(this: Socket, nread: number, buffer: Uint8Array): boolean {
    return this.push(ownCopy(buffer.subarray(0, nread)));
  },
};

/**
 * A copy in memory of its own: not a slice of Buffer's shared 8 KiB pool (where Buffer.from
 * puts copies under 4 KiB), which a stalled answer's few bytes would keep whole.
 */
function ownCopy(bytes: Uint8Array): Buffer {
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  copy.set(bytes);
  return copy;
}

/**
 * Stops the handle as net does when a push finds the socket's buffer full, and starts it again
 * at undici's next read() (undici reads with socket.read(), no size), as net's _read would.
 */
function stopReadingOnUnshift(socket: Socket): void {
  const unshift = socket.unshift;
  const read = socket.read;
  const s = socket as Socket & { _handle?: ReadingHandle | null };
  let stopped = false;
  socket.unshift = function stopThenUnshift(this: Socket, chunk, encoding) {
    const handle = s._handle;
    // Also when nothing is put back (undici paused at the end of a read): reading on, the socket
    // would fill its buffer to its highWaterMark and a read more for a parser that takes none
    // of it. Its resume finds the buffer empty and restarts the handle with that read().
    if (handle?.reading && !s.destroyed) {
      handle.reading = false;
      handle.readStop();
      stopped = true;
    }
    // The bytes put back are the rest of a read that may be much larger (a 64 KiB read, or
    // the reads undici joined): a copy of their own lets that go while the socket holds them.
    // Only past twice their size, so that a read taken a little at each pause is copied at
    // most twice over in all, not once per pause.
    const own = Buffer.isBuffer(chunk) && chunk.buffer.byteLength >= 2 * chunk.length ? ownCopy(chunk) : chunk;
    return unshift.call(this, own, encoding);
  } as Socket['unshift'];
  socket.read = function startThenRead(this: Socket, size?: number) {
    if (stopped && size === undefined) {
      stopped = false;
      const handle = s._handle;
      if (handle && !handle.reading && !s.destroyed) {
        handle.reading = true;
        const err = handle.readStart();
        if (err < 0) s.destroy(new Error(`the worker's socket could not read again (${err})`));
      }
    }
    return read.call(this, size);
  } as Socket['read'];
}
