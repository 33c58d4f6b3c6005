import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { UpstreamClient } from '../../../src/upstream/client.js';
import { READ_SIZE, stoppingConnector } from '../../../src/upstream/stopping-connector.js';

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
  // The worker sent 64 KiB at once; the socket read at most READ_SIZE of it.
  expect(first.length).toBeLessThanOrEqual(READ_SIZE);
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

it('reads the kernel READ_SIZE at a time and passes on every byte, in order', async () => {
  // Bytes that differ from one read to the next: a copy from the wrong place shows.
  const sent = Buffer.alloc(TOTAL);
  for (let i = 0; i < TOTAL; i += 4) sent.writeUInt32BE(i, i);
  const listening = createServer((s) => s.end(sent));
  server = listening;
  listening.listen(0, '127.0.0.1');
  await once(listening, 'listening');
  const socket = await connect((listening.address() as AddressInfo).port);
  // Flowing, each read reaches 'data' as it was read.
  const reads: Buffer[] = [];
  socket.on('data', (c: Buffer) => reads.push(c));
  await once(socket, 'end');
  expect(Math.max(...reads.map((c) => c.length))).toBe(READ_SIZE);
  expect(Buffer.concat(reads).equals(sent)).toBe(true);
  // Each read owns its memory: none pins the shared read buffer or another read.
  expect(reads.every((c) => c.buffer.byteLength === c.length)).toBe(true);
  socket.destroy();
});

it('a socket whose reader put nothing back (paused at the end of a read) reads nothing more until it is read again', async () => {
  // Two connections to one worker: the one under test, and a plain one whose byte, written after
  // the other's, shows that the gateway's event loop has polled both since.
  const accepted: Socket[] = [];
  const listening = createServer((s) => accepted.push(s));
  server = listening;
  listening.listen(0, '127.0.0.1');
  await once(listening, 'listening');
  const port = (listening.address() as AddressInfo).port;
  const socket = await connect(port);
  const control = createConnection(port, '127.0.0.1');
  await once(listening, 'connection');
  if (accepted.length < 2) await once(listening, 'connection');
  const [toSocket, toControl] = accepted[0]!.remotePort === socket.localPort ? accepted : [...accepted].reverse();
  toSocket!.write(Buffer.alloc(100, 'a'));
  await once(socket, 'readable');
  while (socket.read() !== null);
  socket.unshift(Buffer.alloc(0));

  toSocket!.write(Buffer.alloc(1000, 'b'));
  toControl!.write('c');
  await once(control, 'data');
  await new Promise(setImmediate);
  // Readable in the kernel since before that poll, its bytes were not read.
  expect(socket.readableLength).toBe(0);
  // Its reader's next read() (undici's resume) finds nothing, and the socket reads again.
  expect(socket.read()).toBeNull();
  await once(socket, 'readable');
  expect(socket.readableLength).toBe(1000);
  control.destroy();
  socket.destroy();
  for (const s of accepted) s.destroy();
});

// Many answers through the gateway's own client (undici over these sockets), all stalled with
// the worker held up, then resumed at once by readers that take one chunk at a time and halt
// again: every answer reads on to its end, byte for byte.
it('64 answers halted until their worker is held up, then resumed at once and sipped, all read to the end, exact', async () => {
  const N = 64;
  const EVENTS = 5000;
  const event = (i: number): string => `data: {"i":${i},"pad":"${'x'.repeat(180)}"}\n\n`;
  const whole = Array.from({ length: EVENTS }, (_, i) => event(i)).join('');
  // A worker that writes batches of events as fast as its socket takes them; each answer says
  // when it is held up (write() returned false) or has written everything.
  let heldUp = 0;
  let allHeldUp: () => void = () => {};
  const everyWorkerHeldUp = new Promise<void>((resolve) => (allHeldUp = resolve));
  const http = createHttpServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    let next = 0;
    let counted = false;
    const count = (): void => {
      if (!counted && (counted = true) && ++heldUp === N) allHeldUp();
    };
    const pump = (): void => {
      while (next < EVENTS) {
        const batch = Array.from({ length: Math.min(64, EVENTS - next) }, (_, k) => event(next + k)).join('');
        next += 64;
        if (!res.write(batch)) {
          count();
          res.once('drain', pump);
          return;
        }
      }
      count();
      res.end();
    };
    pump();
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const client = new UpstreamClient({ connections: N });
  try {
    // Each reader takes the first chunk and halts; after the resume of the stall, it takes
    // one chunk at a time and halts again, resuming on the next turn of the loop.
    const readers: { text: Promise<string>; start: () => void }[] = [];
    let stalled = 0;
    let allStalled: () => void = () => {};
    const everyBodyStalled = new Promise<void>((resolve) => (allStalled = resolve));
    for (let i = 0; i < N; i++) {
      const { body } = await client.send(url, { method: 'GET', path: '/', headers: {} });
      let sipping = false;
      const chunks: Buffer[] = [];
      const text = new Promise<string>((resolve, reject) => {
        body
          .read({
            data(chunk) {
              chunks.push(chunk);
              body.halt();
              if (sipping) setImmediate(() => body.resume());
              else if (chunks.length === 1 && ++stalled === N) allStalled();
            },
            end: () => resolve(Buffer.concat(chunks).toString('utf8')),
            error: reject,
          })
          .resume();
      });
      readers.push({ text, start: () => ((sipping = true), body.resume()) });
    }
    await Promise.all([everyBodyStalled, everyWorkerHeldUp]);
    for (const r of readers) r.start();
    const texts = await Promise.all(readers.map((r) => r.text));
    expect(texts.filter((t) => t === whole)).toHaveLength(N);
  } finally {
    await client.close();
    http.close();
  }
});
