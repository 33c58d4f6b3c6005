// What a stalled gRPC server stream costs the process on the client's side alone: a grpc-js
// server (the gateway's library, its defaults) answering N server-streaming calls with ~200-byte
// messages, written as the gateway writes them (on until write() says false, then at 'drain'),
// to N clients that read the first message and then nothing (plain HTTP/2, one connection per
// call, the stream paused: its window closes, as a wedged client's does). Reports, per stalled
// call, the growth of the server process's ArrayBuffers, of the rest of what V8 counts outside
// its heap, of its heap and of its RSS, after a full GC; the client runs in a child process so
// that its buffers are not counted.
//
//   node --expose-gc bench/grpc-stalled-server.mjs [--streams 300] [--hold 3] [--message-bytes 200]
import { fork } from 'node:child_process';
import http2 from 'node:http2';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import grpc from '@grpc/grpc-js';

const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '300' },
    hold: { type: 'string', default: '3' },
    'message-bytes': { type: 'string', default: '200' },
    // Internal: run as the clients' process, against this address.
    client: { type: 'string' },
  },
});
const N = Number(values.streams);

if (values.client) {
  // The clients: one HTTP/2 connection per call; the first message read, then the stream paused.
  const frame = Buffer.from([0, 0, 0, 0, 0]);
  let first = 0;
  for (let i = 0; i < N; i++) {
    const session = http2.connect(`http://${values.client}`);
    session.on('error', () => {});
    const stream = session.request({
      ':method': 'POST',
      ':path': '/bench.Stall/Stream',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    stream.on('error', () => {});
    stream.end(frame);
    stream.once('data', () => {
      stream.pause();
      if (++first === N) process.send('stalled');
    });
  }
  process.on('message', () => process.exit(0));
} else {
  const message = Buffer.alloc(Number(values['message-bytes']), 'x');
  const identity = (b) => b;
  const server = new grpc.Server();
  let written = 0;
  server.addService(
    {
      stream: {
        path: '/bench.Stall/Stream',
        requestStream: false,
        responseStream: true,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    {
      stream(call) {
        let stop = false;
        call.on('cancelled', () => (stop = true));
        const pump = () => {
          while (!stop) {
            written++;
            if (!call.write(message)) return void call.once('drain', pump);
          }
        };
        pump();
      },
    },
  );
  const port = await new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const mem = () => {
    globalThis.gc?.();
    globalThis.gc?.();
    const u = process.memoryUsage();
    return { rss: u.rss, arrayBuffers: u.arrayBuffers, otherExternal: u.external - u.arrayBuffers, heap: u.heapUsed };
  };
  await sleep(200);
  const before = mem();
  const clients = fork(new URL(import.meta.url), ['--client', `127.0.0.1:${port}`, '--streams', String(N)]);
  await new Promise((resolve) => clients.once('message', resolve));
  await sleep(Number(values.hold) * 1000);
  const stalled = mem();
  const per = (k) => ((stalled[k] - before[k]) / 1024 / N).toFixed(1);
  console.log(
    `${N} stalled calls (messages of ${message.length} bytes, ${values.hold} s held), grpc-js ${grpc.experimental ? '' : ''}Node ${process.version}: ` +
      `per call ArrayBuffers +${per('arrayBuffers')} KiB, other external +${per('otherExternal')} KiB, heap +${per('heap')} KiB, ` +
      `RSS +${per('rss')} KiB; messages written per call ${(written / N).toFixed(0)} (${((written * (message.length + 5)) / 1024 / N).toFixed(1)} KiB)`,
  );
  clients.send('exit');
  server.forceShutdown();
}
