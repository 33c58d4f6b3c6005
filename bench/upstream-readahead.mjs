// What a stalled answer costs the gateway on the worker's side alone: N streaming answers read
// through the gateway's own UpstreamClient (dist/upstream/client.js: undici, one socket per
// answer), each reader taking the first chunk and then pausing the body, as the gRPC handler
// does for a client that reads nothing. The worker here is a plain HTTP server that writes SSE
// events as fast as its socket takes them, so the gateway's socket is held up with the kernel's
// buffers full, as a stalled stream's is. With --sips, each reader comes back that many times
// (every 20 ms) to take one more chunk and pause again, as a client that reads a few messages now
// and then. Reports, per stalled answer, the growth of the process's ArrayBuffers and RSS after
// a full GC, and the bytes its readers were handed.
//
//   npm run build && node --expose-gc bench/upstream-readahead.mjs [--streams 300] [--hold 3] [--event-bytes 200] [--sips 0]
import { createServer } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { UpstreamClient } from '../dist/upstream/client.js';

const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '300' },
    hold: { type: 'string', default: '3' },
    'event-bytes': { type: 'string', default: '200' },
    sips: { type: 'string', default: '0' },
  },
});
const N = Number(values.streams);
const event = Buffer.from(`data: ${JSON.stringify({ pad: 'x'.repeat(Number(values['event-bytes']) - 20) })}\n\n`);
// A batch of events per write, as an engine that has fallen behind sends what it has.
const batch = Buffer.concat(Array.from({ length: 64 }, () => event));

const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const pump = () => {
    while (!res.destroyed && res.write(batch));
    if (!res.destroyed) res.once('drain', pump);
  };
  pump();
  req.socket.on('close', () => res.destroy());
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}`;

const gc = () => {
  globalThis.gc?.();
  globalThis.gc?.();
};
const mem = () => {
  gc();
  const u = process.memoryUsage();
  return { rss: u.rss, arrayBuffers: u.arrayBuffers, heap: u.heapUsed };
};

const client = new UpstreamClient({ connections: N + 1 });
// Warm-up: one answer read for a moment, so undici's parser and the pool exist before the start.
{
  const res = await client.send(url, { method: 'GET', path: '/', headers: {} });
  res.body.read({ data() {}, end() {}, error() {} }).resume();
  await sleep(200);
  res.body.destroy();
}
await sleep(200);
const before = mem();
let handed = 0;
const bodies = [];
await Promise.all(
  Array.from({ length: N }, async () => {
    const res = await client.send(url, { method: 'GET', path: '/', headers: {} });
    let sips = Number(values.sips);
    res.body
      .read({
        data(chunk) {
          handed += chunk.length;
          res.body.pause();
          if (sips-- > 0) setTimeout(() => res.body.resume(), 20);
        },
        end() {},
        error() {},
      })
      .resume();
    bodies.push(res.body);
  }),
);
await sleep(Number(values.hold) * 1000);
const stalled = mem();
const per = (k) => ((stalled[k] - before[k]) / 1024 / N).toFixed(1);
console.log(
  `${N} stalled answers (events of ${event.length} bytes, ${values.sips} sips, ${values.hold} s held), Node ${process.version}: ` +
    `per answer ArrayBuffers +${per('arrayBuffers')} KiB, heap +${per('heap')} KiB, RSS +${per('rss')} KiB; ` +
    `handed to readers ${(handed / 1024 / N).toFixed(1)} KiB`,
);
for (const b of bodies) b.destroy();
await client.close();
server.close();
server.closeAllConnections();
