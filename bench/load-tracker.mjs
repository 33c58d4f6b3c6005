#!/usr/bin/env node
// The load tracker at a busy gateway's rate, on a virtual clock: 5,000 requests/s for 15 minutes,
// each request changing the queue length twice (arrival, end), fed to the default 600 s window
// and its 6 s panic follower. Reports the segments kept, the tracker's buffer memory, the time per
// change, and the running mean against an exact mean computed from every change.
//
//   npm run build && node bench/load-tracker.mjs [--rate 5000] [--minutes 15] [--out FILE]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { VirtualClock, seededRandom } from '../dist/core/clock.js';
import { LoadTracker } from '../dist/core/load-tracker.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '5000' },
    minutes: { type: 'string', default: '15' },
    out: { type: 'string', default: 'bench/results/load-tracker.md' },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.minutes) * 60;
const WINDOW_MS = 600_000;
const changes = Math.round(rate * seconds * 2);

const clock = new VirtualClock();
const tracker = new LoadTracker(clock, WINDOW_MS);
const panic = tracker.withWindow(6_000);
const random = seededRandom(1);
// Every change, kept for the exact mean: when (ms) and the value from then on.
const at = new Float64Array(changes);
const val = new Float64Array(changes);
const stepMs = 1000 / (rate * 2);
let queue = 64;
let maxQueue = 0;
const before = process.memoryUsage().arrayBuffers;
let busyNs = 0n;
for (let i = 0; i < changes; i++) {
  clock.advance(stepMs * 2 * random()); // exponential-ish gaps averaging stepMs
  // A random walk pulled back towards 64 requests in flight.
  queue = Math.max(0, queue + (random() < (queue > 64 ? 0.6 : 0.4) ? -1 : 1));
  at[i] = clock.now();
  val[i] = queue;
  if (queue > maxQueue) maxQueue = queue;
  const t0 = process.hrtime.bigint();
  tracker.set(queue);
  busyNs += process.hrtime.bigint() - t0;
}
const now = clock.now();
const bufferBytes = process.memoryUsage().arrayBuffers - before;

/** The exact time-weighted mean over [now - window, now] from every change. */
function exactMean(windowMs) {
  const from = Math.max(0, now - windowMs);
  let area = 0;
  for (let i = changes - 1; i >= -1; i--) {
    const start = i >= 0 ? at[i] : 0;
    const end = i + 1 < changes ? at[i + 1] : now;
    const v = i >= 0 ? val[i] : 0;
    area += v * Math.max(0, end - Math.max(start, from));
    if (start <= from) break;
  }
  return area / (now - from);
}

const rows = [
  ['600 s (queue_tracking_window)', tracker, exactMean(WINDOW_MS)],
  ['6 s (panic_window)', panic, exactMean(6_000)],
];
const lines = [
  '# Load tracker at a busy gateway’s rate',
  '',
  `Command: \`npm run build && node bench/load-tracker.mjs --rate ${rate} --minutes ${values.minutes}\``,
  '',
  `${rate} requests/s for ${seconds} s on a virtual clock: ${changes.toLocaleString('en')} queue-length changes`,
  '(two per request, a random walk pulled towards 64), fed to the 600 s tracker and its 6 s panic follower.',
  'Each segment costs 16 bytes (two Float64Array slots); a tracker that kept one per change would',
  `hold ${(rate * 2 * 600).toLocaleString('en')} of them for the 600 s window (${((rate * 2 * 600 * 16) / 2 ** 20).toFixed(0)} MiB).`,
  '',
  '| window | segments kept | running mean | exact mean | difference | bound (max value / 4096) |',
  '| --- | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map(
    ([name, t, exact]) =>
      `| ${name} | ${t.segmentCount} | ${t.mean().toFixed(4)} | ${exact.toFixed(4)} | ${Math.abs(t.mean() - exact).toExponential(2)} | ${(maxQueue / LoadTracker.RESOLUTION_STEPS).toFixed(4)} |`,
  ),
  '',
  `Both trackers' buffers: ${(bufferBytes / 1024).toFixed(0)} KiB. Time per change (both trackers): ${(Number(busyNs) / changes).toFixed(0)} ns.`,
  '',
];
writeFileSync(values.out, lines.join('\n'));
console.log(lines.join('\n'));
