#!/usr/bin/env node
// Interactive requests sharing a saturated fleet with batch work, live: 2 simulator workers of
// `--capacity` slots each behind FlockServe, a closed loop of `--batch` batch clients that keeps
// every slot busy and requests waiting at the gateway, and interactive requests arriving at
// `--rate` per second (Poisson) meanwhile. Three runs of `--seconds` each:
//   - alone:     the interactive requests without the batch work (the fleet sized for them);
//   - FIFO:      with the batch work, nobody sends x-priority (the gateway queue in arrival order);
//   - priority:  the same, the batch requests sent with `x-priority: 10`.
// Interactive latency (request to whole answer) and the batch work's throughput, for each.
//   npm run build && node bench/priority.mjs [--seconds 20] [--rate 2] [--batch 24] [--capacity 4]
// Writes bench/results/priority.md.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { seededRandom } from '../dist/core/clock.js';
import { startFleet } from './lib/fleet.mjs';
import { closedLoop } from './lib/load.mjs';
import { ROOT, stop } from './lib/procs.mjs';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    rate: { type: 'string', default: '2' },
    batch: { type: 'string', default: '24' }, // an even number: two halves
    capacity: { type: 'string', default: '4' },
    seed: { type: 'string', default: '1' },
  },
});
const durationMs = Number(values.seconds) * 1000;
const rate = Number(values.rate);
const batchClients = Number(values.batch);
const capacity = Number(values.capacity);
const WORKERS = 2;
const TOKENS = 25;
const TOKEN_INTERVAL_MS = 20;
const body = JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'hello' }], max_tokens: TOKENS });
const batchBody = (tokens) =>
  JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'batch' }], max_tokens: tokens });

/** Interactive requests at `rate`/s (Poisson) for durationMs; their latencies, ms, sorted. */
async function interactive(url) {
  const pool = new Pool(url, { connections: 64 });
  // The same arrival times in every run.
  const random = seededRandom(Number(values.seed));
  const latencies = [];
  let errors = 0;
  const sent = [];
  for (let at = 0; ;) {
    at += (-Math.log(1 - random()) / rate) * 1000;
    if (at >= durationMs) break;
    sent.push(
      new Promise((r) => setTimeout(r, at)).then(async () => {
        const t0 = performance.now();
        try {
          const res = await pool.request({
            method: 'POST',
            path: '/v1/chat/completions',
            headers: { 'content-type': 'application/json' },
            body,
          });
          await res.body.arrayBuffer();
          if (res.statusCode === 200) latencies.push(performance.now() - t0);
          else errors++;
        } catch {
          errors++;
        }
      }),
    );
  }
  await Promise.all(sent);
  await pool.close();
  latencies.sort((a, b) => a - b);
  return { latencies, errors };
}

const pct = (xs, p) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

const { sims, gw } = await startFleet({
  workers: WORKERS,
  simArgs: ['--token-interval', String(TOKEN_INTERVAL_MS)],
  capacity,
  args: ['--max_queue_length', '4096', '--queue_timeout', '600'],
});
const rows = [];
try {
  for (const [name, batchPriority] of [
    ['alone (no batch work)', undefined],
    ['with batch work, FIFO (no x-priority)', null],
    ['with batch work, batch sent with x-priority: 10', '10'],
  ]) {
    // Two halves of different answer lengths (15 and 35 tokens, 25 on average), so the slots
    // do not all free at the same moments, as answers of one length would have them.
    const batch =
      batchPriority === undefined
        ? undefined
        : Promise.all(
            [15, 35].map((tokens) =>
              closedLoop({
                url: gw.url,
                path: '/v1/chat/completions',
                body: batchBody(tokens),
                headers: batchPriority === null ? {} : { 'x-priority': batchPriority },
                connections: batchClients / 2,
                durationMs,
                warmupMs: 2000,
              }),
            ),
          ).then(([a, b]) => ({ rps: a.rps + b.rps, errors: a.errors + b.errors }));
    // The batch clients fill the slots and the queue first.
    if (batch) await new Promise((r) => setTimeout(r, 2000));
    const inter = await interactive(gw.url);
    const b = batch ? await batch : undefined;
    rows.push({
      name,
      n: inter.latencies.length,
      errors: inter.errors,
      p50: pct(inter.latencies, 50),
      p90: pct(inter.latencies, 90),
      p99: pct(inter.latencies, 99),
      batchRps: b ? b.rps : undefined,
      batchErrors: b ? b.errors : undefined,
    });
    console.log(JSON.stringify(rows.at(-1)));
  }
} finally {
  await stop(gw.child);
  await Promise.all(sims.map((s) => s.stop()));
}

const f = (x) => (Number.isFinite(x) ? x.toFixed(0) : '—');
const lines = [
  '# Queue priority: interactive requests sharing a saturated fleet with batch work',
  '',
  `Command: \`npm run build && node bench/priority.mjs --seconds ${values.seconds} --rate ${values.rate} --batch ${values.batch} --capacity ${values.capacity}\``,
  '',
  `${WORKERS} simulator workers (${TOKENS} tokens per interactive answer at ${TOKEN_INTERVAL_MS} ms a token, so such a request holds`,
  `its slot for about ${(TOKENS * TOKEN_INTERVAL_MS) / 1000} s) behind FlockServe with \`worker_capacity\` ${capacity}: ${WORKERS * capacity} slots. The batch work is`,
  `${batchClients} closed-loop clients (half asking 15 tokens, half 35), so every slot is busy and about ${Math.max(0, batchClients - WORKERS * capacity)} batch requests wait at the gateway`,
  `at any time; the interactive requests arrive at ${rate}/s (Poisson, the same times in every run) for`,
  `${values.seconds} s. Latency is from sending the request to reading the whole answer, ms. "alone" is the`,
  'yardstick: the same fleet with nothing else to do.',
  '',
  '| run | interactive requests | p50 ms | p90 ms | p99 ms | errors | batch requests/s |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map(
    (r) =>
      `| ${r.name} | ${r.n} | ${f(r.p50)} | ${f(r.p90)} | ${f(r.p99)} | ${r.errors + (r.batchErrors ?? 0)} | ${r.batchRps === undefined ? '—' : r.batchRps.toFixed(2)} |`,
  ),
  '',
  'With x-priority the batch work keeps the slots it holds: the gateway never preempts a running',
  'request (its tokens so far would be lost), so an interactive request still waits for the next',
  'slot to free, ahead of every batch request waiting. That wait is the gap from "alone". Without',
  'x-priority it waits behind every batch request queued before it.',
  '',
];
writeFileSync(`${ROOT}/bench/results/priority.md`, lines.join('\n'));
console.log(lines.join('\n'));
