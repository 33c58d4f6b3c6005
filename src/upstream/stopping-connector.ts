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
 * Stopped when its bytes are put back, the socket holds what it had then; it reads again at
 * undici's next socket.read(), as net restarts a socket that a full buffer stopped. Both happen
 * only when a reader falls behind, never on the flowing path.
 */
export function stoppingConnector(options: buildConnector.BuildOptions): buildConnector.connector {
  const connect = buildConnector(options);
  return (opts, callback) =>
    connect(opts, (...args) => {
      const socket = args[1] as Socket | null;
      if (socket) stopReadingOnUnshift(socket);
      callback(...args);
    });
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
    // Nothing put back (undici paused at the end of a read): the next read comes from the kernel
    // and is at most one read; stopping here would leave undici's resume nothing to parse.
    if (chunk.length > 0 && handle?.reading && !s.destroyed) {
      handle.reading = false;
      handle.readStop();
      stopped = true;
    }
    // The bytes put back are the rest of a read that may be much larger (a 64 KiB read, or
    // the reads undici joined): a copy of their own lets that go while the socket holds them.
    // Only past twice their size, so that a read taken a little at each pause is copied at
    // most twice over in all, not once per pause.
    const own = Buffer.isBuffer(chunk) && chunk.buffer.byteLength >= 2 * chunk.length ? Buffer.from(chunk) : chunk;
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
