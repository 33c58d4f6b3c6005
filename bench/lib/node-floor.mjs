#!/usr/bin/env node
// The floor for any one-process Node.js gateway, as a reference target in bench/datapath.mjs:
// node:http in, undici out (the same Pool settings as FlockServe's upstream client), the
// request JSON parsed once (any OpenAI-aware gateway must read `stream` and `model`), the
// least-busy of the workers, the answer copied back chunk by chunk with backpressure. Nothing
// else: no queue, no checks of the answer, no metrics, no retries. Not a product; a yardstick.
//
//   node bench/lib/node-floor.mjs --port 18505 --workers 127.0.0.2:18500,127.0.0.3:18500 [--burn-ns N]
// --burn-ns N: spin N ns of CPU per read of a worker's answer (bench/ttfc-stages.mjs: how the
// first chunk's wait follows a proxy's CPU per chunk on a saturated machine).
import http from 'node:http';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    workers: { type: 'string' },
    'burn-ns': { type: 'string', default: '0' },
  },
});
const workers = values.workers.split(',').map((w) => ({
  pool: new Pool(`http://${w}`, { connections: 4096, pipelining: 1, keepAliveTimeout: 30_000 }),
  inFlight: 0,
}));
const burnNs = BigInt(values['burn-ns']);
const burn = () => {
  const until = process.hrtime.bigint() + burnNs;
  while (process.hrtime.bigint() < until);
};
const leastBusy = () => workers.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));

const server = http.createServer((req, res) => {
  const parts = [];
  req.on('data', (c) => parts.push(c));
  req.on('end', () => {
    const body = Buffer.concat(parts);
    try {
      JSON.parse(body.toString('utf8'));
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid JSON"}');
      return;
    }
    const w = leastBusy();
    w.inFlight++;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      w.inFlight--;
    };
    w.pool.dispatch(
      { method: req.method, path: req.url, headers: { 'content-type': 'application/json' }, body },
      {
        onRequestStart(c) {
          res.once('close', () => {
            if (!res.writableFinished) c.abort(new Error('client closed'));
          });
        },
        onResponseStart(c, status, headers) {
          res.writeHead(status, { 'content-type': headers['content-type'] ?? 'application/json' });
        },
        onResponseData(c, chunk) {
          if (burnNs > 0n) burn();
          if (!res.write(chunk)) {
            c.pause();
            res.once('drain', () => c.resume());
          }
        },
        onResponseEnd() {
          finish();
          res.end();
        },
        onResponseError(c, err) {
          finish();
          if (!res.headersSent)
            res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ error: err.message }));
          else res.destroy(err);
        },
      },
    );
  });
});
server.keepAliveTimeout = 3600_000;
// Exits on SIGTERM through process.exit, so that `node --cpu-prof` writes its profile.
process.once('SIGTERM', () => process.exit(0));
server.listen(Number(values.port), values.host, () =>
  console.log(`node-floor listening on ${values.host}:${values.port}`),
);
