#!/usr/bin/env node
// The loop a user closes: traffic through a live gateway that keeps a request log
// (`--request_log`), then `flockserve plan --trace` on that log, beside the same plan on the trace
// the traffic came from. Real parts: the gateway's bin with the local provisioner and two engine
// simulators as workers, an open-loop client at the trace's arrival times (prompts of the trace's
// lengths, max_tokens its output lengths), the SQLite log the gateway wrote. It checks what the
// log holds against the trace, request by request, and what the two plans answer.
//
//   npm run build && node bench/plan-from-log.mjs [--trace FILE] [--requests 600]
//       [--provision-delay 60] [--out bench/results/plan-from-log.md]
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { scanTrace, traceRequests } from '../dist/sim/cluster/trace.js';
import { tracePrompt } from '../dist/sim/workloads/trace-prompts.js';
import { freePort } from './lib/fleet.mjs';
import { ROOT, startCli, waitHttp } from './lib/procs.mjs';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    trace: { type: 'string', default: '../shared/traces/azure-llm-2023-conv.csv' },
    requests: { type: 'string', default: '600' },
    'provision-delay': { type: 'string', default: '60' },
    out: { type: 'string', default: 'bench/results/plan-from-log.md' },
  },
});
const n = Number(values.requests);
const delay = values['provision-delay'];
const dir = mkdtempSync(join(tmpdir(), 'plan-from-log-'));

// 1. The first n requests of the trace, as an Azure CSV of their own (what the plan of the
//    traffic's source reads). An output of 0 tokens becomes 1: an engine generates at least one.
const sent = [];
for (const r of traceRequests(resolve(ROOT, values.trace))) {
  if (sent.length === n) break;
  sent.push({ ...r, outputTokens: Math.max(1, r.outputTokens) });
}
const stamp = (ms) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString().replace('T', ' ').replace('Z', '');
const sliceFile = join(dir, 'slice.csv');
writeFileSync(
  sliceFile,
  [
    'TIMESTAMP,ContextTokens,GeneratedTokens',
    ...sent.map((r) => `${stamp(r.arrivalMs)},${r.promptTokens},${r.outputTokens}`),
  ].join('\n') + '\n',
);

// 2. The gateway, as `npm start` runs it, with a request log.
const logFile = join(dir, 'requests.db');
const port = await freePort();
const { child: gateway } = await startCli(
  'flockserve',
  [
    '--skypilot_task',
    'examples/serving_sim_local.yaml',
    '--provisioner',
    'local',
    '--min_workers',
    '2',
    '--max_workers',
    '2',
    '--port',
    String(port),
    '--grpc_port',
    String(await freePort()),
    '--request_log',
    logFile,
    '--verbosity',
    '0',
    '--metrics_id',
    '-1',
  ],
  /listening on/,
);
const url = `http://127.0.0.1:${port}`;
await waitHttp(`${url}/`, async (r) => (await r.json()).ready_worker_count === 2, 120_000);

// 3. The trace's requests at their arrival times (open loop: none waits for another's answer).
const started = performance.now();
const statuses = new Map();
await Promise.all(
  sent.map(async (r) => {
    const wait = r.arrivalMs - (performance.now() - started);
    if (wait > 0) await new Promise((ok) => setTimeout(ok, wait));
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'sim',
        messages: [{ role: 'user', content: tracePrompt(r) }],
        max_tokens: r.outputTokens,
      }),
    });
    await res.arrayBuffer();
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
  }),
);
const replayS = (performance.now() - started) / 1000;
// SIGINT: the gateway drains, tears its workers down and flushes the log before it exits.
const exited = new Promise((ok) => gateway.once('exit', ok));
gateway.kill('SIGINT');
await exited;

// 4. What the log holds, request by request in arrival order, against what was sent.
const logged = [...traceRequests(logFile)];
const scan = scanTrace(logFile);
// Requests a millisecond apart may be logged in either order: the lengths are compared as a
// multiset, the times in arrival order.
const key = (r) => `${r.promptTokens}/${r.outputTokens}`;
const pending = new Map();
for (const r of sent) pending.set(key(r), (pending.get(key(r)) ?? 0) + 1);
const unmatched = [];
for (const r of logged) {
  const left = pending.get(key(r)) ?? 0;
  if (left > 0) pending.set(key(r), left - 1);
  else unmatched.push(r);
}
const lengthsEqual = logged.length - unmatched.length;
// What was sent and found no logged request of its lengths.
const unmatchedSent = [...pending].flatMap(([k, count]) => Array(count).fill(k));
// Arrivals are relative to each one's first request: the offset both share (the first request's
// own stamping) is taken out, what is left is each request's skew.
const offsets = logged.map((r, i) => r.arrivalMs - sent[i].arrivalMs).sort((a, b) => a - b);
const offset = offsets[Math.floor(offsets.length / 2)];
const skew = logged.map((r, i) => Math.abs(r.arrivalMs - sent[i].arrivalMs - offset)).sort((a, b) => a - b);
const pct = (q) => skew[Math.min(skew.length - 1, Math.floor(q * skew.length))];

// 5. The same plan on both.
const plan = async (file) =>
  JSON.parse(
    (
      await run(
        process.execPath,
        [
          join(ROOT, 'dist/cli/flockserve.js'),
          'plan',
          '--trace',
          file,
          '--provision-delay',
          delay,
          '--policies',
          'slo',
          '--seed',
          '1',
          '--json',
          '--chart',
          join(dir, 'plan.svg'),
        ],
        { cwd: ROOT, maxBuffer: 1 << 26 },
      )
    ).stdout,
  );
const [fromTrace, fromLog] = [await plan(sliceFile), await plan(logFile)];
const h = (x) => x.toFixed(2);
const s = (x) => `${x.toFixed(1)} s`;
const fixedRow = (p, w) => p.fixed.find((f) => f.initialWorkers === w);
const widest = Math.max(...fromTrace.fixed.map((f) => f.initialWorkers), ...fromLog.fixed.map((f) => f.initialWorkers));
const rows = [];
for (let w = 1; w <= widest; w++) {
  const [a, b] = [fixedRow(fromTrace, w), fixedRow(fromLog, w)];
  const cell = (f) =>
    f ? `${s(f.queueWaitS.p99)}, ${h(f.workerHours)} worker-h${f.failed ? `, ${f.failed} failed` : ''}` : '-';
  rows.push(`| fixed ${w} | ${cell(a)} | ${cell(b)} |`);
}
for (const start of ['cold', 'warm']) {
  const [a, b] = [fromTrace, fromLog].map((p) => p.policies.find((x) => x.start === start));
  rows.push(
    `| slo ${start} | ${s(a.queueWaitS.p99)}, ${h(a.workerHours)} worker-h | ${s(b.queueWaitS.p99)}, ${h(b.workerHours)} worker-h |`,
  );
}
rows.push(`| bound | ${h(fromTrace.bound.workerHours)} worker-h | ${h(fromLog.bound.workerHours)} worker-h |`);
rows.push(`| the fleet for queue_wait_slo | ${fromTrace.sloWorkers ?? 'none'} | ${fromLog.sloWorkers ?? 'none'} |`);

// A prompt shorter than the simulator's unique prefix ("[trace line N] ", 4-5 tokens) is sent longer.
const mismatches =
  unmatched.length > 0
    ? ` (prompt/output tokens; the others logged ${unmatched.map(key).join(', ')} where ${unmatchedSent.join(', ')} were sent)`
    : '';
const md = `# Planning from the gateway's own request log

Made by \`npm run build && node bench/plan-from-log.mjs --requests ${n} --provision-delay ${delay}\` on ${new Date().toISOString().slice(0, 10)}.

The first ${n} requests of \`${values.trace.replace(/^.*\//, '')}\` were sent at their arrival times (open loop)
to a live gateway (\`flockserve --provisioner local\`, two engine simulators as workers, \`--request_log\`),
with prompts of each request's length and \`max_tokens\` its output length (0 sent as 1). The
gateway's SQLite log was then read as a trace, and \`flockserve plan\` run on it and on the same
${n} requests as a CSV (\`--provision-delay ${delay} --policies slo --seed 1\`).

- Answers: ${[...statuses].map(([k, v]) => `${v} × ${k}`).join(', ')}; the replay took ${replayS.toFixed(0)} s.
- The log: ${scan.requests} requests replayable, ${scan.leftOut} left out (no token counts).
- Token lengths (prompt and output of each request) equal to what was sent: ${lengthsEqual} of ${logged.length}${mismatches}.
- Arrival times against the trace's, the offset all share taken out: median ${pct(0.5).toFixed(1)} ms apart,
  p99 ${pct(0.99).toFixed(1)} ms, most ${skew.at(-1).toFixed(1)} ms (the client's timers and the gateway's
  clock; the log stamps arrival as the answer's end less its duration).

| | plan on the trace: p99 wait, cost | plan on the gateway's log |
| --- | --- | --- |
${rows.join('\n')}
`;
writeFileSync(resolve(ROOT, values.out), md);
console.log(md);
