#!/usr/bin/env node
// CPU per answer of turning a worker's raw response headers into the headers the client gets:
// undici's parsed object (what its onResponseStart hook hands over) copied by forwardableHeaders,
// against forwardableRawHeaders on the raw pairs (what its onHeaders hook hands over). CPU time
// (process.cpuUsage), median of 7 alternating runs, so a busy machine slows both alike.
//   npm run build && node bench/answer-headers.mjs
import { util } from 'undici';
import { forwardableHeaders, forwardableRawHeaders } from '../dist/upstream/client.js';

// The headers of bench/lib/light-worker.mjs's answers, as node:http sends them.
const raw = [
  ['Content-Type', 'application/json'],
  ['Content-Length', '231'],
  ['Date', new Date().toUTCString()],
  ['Connection', 'keep-alive'],
  ['Keep-Alive', 'timeout=5'],
].flatMap(([k, v]) => [Buffer.from(k), Buffer.from(v)]);
const N = 300_000;
const cpuNs = (f) => {
  const start = process.cpuUsage();
  for (let i = 0; i < N; i++) f();
  const d = process.cpuUsage(start);
  return ((d.user + d.system) * 1000) / N;
};
const runs = { parsed: [], raw: [] };
for (let k = 0; k < 7; k++) {
  runs.parsed.push(cpuNs(() => forwardableHeaders(util.parseHeaders(raw))));
  runs.raw.push(cpuNs(() => forwardableRawHeaders(raw)));
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(`parseHeaders + forwardableHeaders: ${median(runs.parsed).toFixed(0)} ns CPU per answer`);
console.log(`forwardableRawHeaders:             ${median(runs.raw).toFixed(0)} ns CPU per answer`);
