#!/usr/bin/env node
// CPU per request of the gateway's answer path above the upstream, in process: answer() (the
// HTTP edge's, after the body is parsed) → the inference service → admission over 4 workers →
// an upstream that answers at once with a whole 8-token JSON answer, checked and written to a
// response that discards it. Batches of 500 requests, a macrotask between batches. For one
// build's dist/ (default this checkout's); to compare two builds, run it for each in turns:
//   npm run build && node bench/answer-path.mjs [DIR] [--requests 150000]
// prints µs of CPU (user + system) per request.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ROOT } from './lib/procs.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { requests: { type: 'string', default: '150000' } },
});
const dir = positionals[0] ?? ROOT;
const N = Number(values.requests);
const d = (p) => import(pathToFileURL(join(dir, 'dist', p)).href);
const { InferenceService } = await d('service/inference.js');
const { answer } = await d('http/answer.js');
const { BodyStream } = await d('upstream/body-stream.js');
const { Cancellation } = await d('core/cancellation.js');
const { Admission } = await d('core/admission.js');
const { LeastConnection } = await d('core/balancer/least-connection.js');
const { VirtualClock, seededRandom } = await d('core/clock.js');
const { LoadTracker } = await d('core/load-tracker.js');
const { WorkerPool } = await d('core/pool.js');
const clock = new VirtualClock();
const pool = new WorkerPool(clock);
for (let i = 1; i <= 4; i++) {
  const w = pool.add(`w-${i}`, 100000, 'provisioning');
  w.url = `http://w-${i}`;
  pool.setState(w.name, 'starting', 't');
  pool.setState(w.name, 'ready', 't');
}
const admission = new Admission({
  pool,
  balancer: new LeastConnection(),
  clock,
  tracker: new LoadTracker(clock, 60_000),
  random: seededRandom(1),
  maxQueueLength: 10,
});
const ANSWER = Buffer.from(
  JSON.stringify({
    id: 'x',
    object: 'chat.completion',
    created: 1,
    model: 'sim',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: 'word word word word word word word word' },
        finish_reason: 'length',
      },
    ],
    usage: { prompt_tokens: 1, completion_tokens: 8, total_tokens: 9 },
  }),
);
const upstream = {
  send() {
    const body = new BodyStream({ pause() {}, resume() {}, abort() {} });
    body.push(ANSWER);
    body.finish();
    return Promise.resolve({ status: 200, headers: { 'content-type': 'application/json' }, body });
  },
  forget: async () => {},
  close: async () => {},
};
const service = new InferenceService({ admission, upstream, queueTimeoutMs: 10000, maxRetries: 2 });
let ended = 0;
const res = {
  headersSent: false,
  destroyed: false,
  writeHead() {
    return this;
  },
  end() {
    ended++;
  },
  once() {},
};
const record = { upstreamHeaders: undefined, answered() {}, chunk() {} };
const headers = { 'content-type': 'application/json', host: 'x' };
const body = Buffer.from('{"model":"sim","messages":[{"role":"user","content":"hello"}],"max_tokens":8}');
async function run(n) {
  ended = 0;
  for (let i = 0; i < n; i += 500) {
    for (let j = 0; j < 500; j++)
      answer(service, res, {
        method: 'POST',
        url: '/v1/chat/completions',
        headers,
        body,
        record,
        requestId: 'r',
        abort: new Cancellation(),
        errorShape: 'openai',
      });
    await new Promise((r) => setImmediate(r));
  }
  if (ended !== n) throw new Error(`ended ${ended} of ${n}`);
}
await run(50000);
const c0 = process.cpuUsage();
await run(N);
const c = process.cpuUsage(c0);
console.log(((c.user + c.system) / N).toFixed(3));
