import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { stoppingConnector } from '../../../src/upstream/stopping-connector.js';

// A worker socket as undici's parser uses it, over loopback: read() on 'readable', then, paused
// by the body's reader, the unparsed rest put back with unshift(). The worker writes as fast as
// the socket takes its bytes; its write() returning false says the kernel's buffers are full,
// i.e. the gateway's socket has stopped reading.

const CHUNK = Buffer.alloc(64 * 1024, 'x');
const TOTAL = 8 * 1024 * 1024;

let server: Server | undefined;
afterEach(() => {
  server?.close();
});

/** A worker that sends CHUNK, then TOTAL bytes in all from `pump()`, which resolves at its first full write. */
async function worker(): Promise<{ port: number; pump: () => Promise<void> }> {
  let peer: Socket | undefined;
  let accepted: () => void = () => {};
  const connected = new Promise<void>((resolve) => (accepted = resolve));
  const listening = createServer((s) => {
    peer = s;
    s.on('error', () => {});
    s.write(CHUNK);
    accepted();
  });
  server = listening;
  listening.listen(0, '127.0.0.1');
  await once(listening, 'listening');
  return {
    port: (listening.address() as AddressInfo).port,
    pump: async () => {
      await connected;
      let sent = CHUNK.length;
      return new Promise<void>((blocked) => {
        const more = (): void => {
          while (sent < TOTAL) {
            sent += CHUNK.length;
            const room = peer!.write(CHUNK);
            if (sent >= TOTAL) peer!.end();
            if (!room) {
              blocked();
              peer!.once('drain', more);
              return;
            }
          }
        };
        more();
      });
    },
  };
}

function connect(port: number): Promise<Socket> {
  const connector = stoppingConnector({ timeout: 10_000, highWaterMark: 16 * 1024 } as never);
  return new Promise((resolve, reject) =>
    connector({ hostname: '127.0.0.1', host: '127.0.0.1', protocol: 'http:', port: String(port) }, (err, socket) =>
      err ? reject(err) : resolve(socket as Socket),
    ),
  );
}

it('a socket whose reader put bytes back reads nothing more from the kernel until it is read again, then reads to the end', async () => {
  const w = await worker();
  const socket = await connect(w.port);
  await once(socket, 'readable');
  const first = socket.read() as Buffer;
  // Paused three quarters into the read: the rest goes back, in a buffer of its own.
  const rest = first.subarray(Math.floor((first.length * 3) / 4));
  socket.unshift(rest);
  expect(socket.readableLength).toBe(rest.length);

  // The worker sends until its socket is full: the gateway's socket took nothing of it.
  await w.pump();
  expect(socket.readableLength).toBe(rest.length);
  const held = socket.read() as Buffer;
  expect(held.length).toBe(rest.length);
  expect(held.buffer.byteLength).toBe(rest.length);

  // Read again, it reads on to the end.
  let got = first.length;
  socket.on('readable', () => {
    for (let c: Buffer | null; (c = socket.read() as Buffer | null) !== null;) got += c.length;
  });
  await once(socket, 'end');
  expect(got).toBe(TOTAL);
  socket.destroy();
});

it('a socket whose reader put nothing back (paused at the end of a read) reads on: the next bytes come', async () => {
  const w = await worker();
  const socket = await connect(w.port);
  await once(socket, 'readable');
  const first = socket.read() as Buffer;
  socket.unshift(Buffer.alloc(0));
  void w.pump();
  await once(socket, 'readable');
  expect(socket.readableLength).toBeGreaterThan(0);
  expect(first.length).toBeGreaterThan(0);
  socket.destroy();
});
