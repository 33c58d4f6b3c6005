#!/usr/bin/env node
// The simulation's trace readers and workloads at size: a million-row Mooncake-format trace read
// as a stream (time and heap growth), the Mooncake synthetic trace read and its prompts
// synthesised, and a simulated day of the envelope workload at a mean of 5 req/s through the
// CLI in a child process (wall time and peak RSS, with the V8 heap capped to show the live set
// fits). Writes bench/results/workloads.md.
//
//   npm run build && node bench/workloads.mjs [--rows 1000000] [--days 1] [--out FILE]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { traceRequests } from '../dist/sim/cluster/trace.js';
import { tracePrompt } from '../dist/sim/workloads/trace-prompts.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    days: { type: 'string', default: '1' },
    out: { type: 'string', default: 'bench/results/workloads.md' },
  },
});
const rows = Number(values.rows);
const days = Number(values.days);
const dir = mkdtempSync(join(tmpdir(), 'bench-workloads-'));

// 1. A million rows, streamed.
const big = join(dir, 'big.jsonl');
writeFileSync(big, '');
for (let i = 0; i < rows; i += 100_000) {
  const n = Math.min(100_000, rows - i);
  const chunk = Array.from(
    { length: n },
    (_, k) =>
      `{"timestamp": ${i + k}, "input_length": 1100, "output_length": 200, "hash_ids": [${i + k}, ${i + k + 1}, ${i + k + 2}]}`,
  );
  writeFileSync(big, chunk.join('\n') + '\n', { flag: 'a' });
}
const heap0 = process.memoryUsage().heapUsed;
let peak = heap0;
let t0 = performance.now();
let n = 0;
for (const _ of traceRequests(big)) if (++n % 50_000 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed);
const readS = (performance.now() - t0) / 1000;
const heapMiB = peak / 2 ** 20;
const heap0MiB = heap0 / 2 ** 20;

// 2. The Mooncake synthetic trace: read and every prompt synthesised.
const MOONCAKE = '../shared/traces/mooncake-synthetic.jsonl';
t0 = performance.now();
let chars = 0;
let requests = 0;
for (const r of traceRequests(MOONCAKE)) {
  chars += tracePrompt(r).length;
  requests++;
}
const synthS = (performance.now() - t0) / 1000;

// 3. A simulated day (or more) of the envelope workload, through the CLI.
const day = (heapCap) => {
  const args = [
    ...(heapCap ? [`--max-old-space-size=${heapCap}`] : []),
    'dist/cli/flockserve.js',
    'simulate',
    ...['--workload', 'envelope', '--days', String(days), '--mean-rate', '5', '--max_workers', '20'],
    ...['--quiet', '--json', '--timeline', join(dir, 't.csv'), '--chart', join(dir, 'c.svg')],
  ];
  const res = spawnSync('/usr/bin/time', ['-v', 'node', ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (res.status !== 0) throw new Error(`simulate failed: ${res.stderr}`);
  const rssKiB = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(res.stderr)[1]);
  const j = JSON.parse(res.stdout);
  return { wallS: j.wallS, requests: j.summary.requests, rssMiB: rssKiB / 1024, summary: JSON.stringify(j.summary) };
};
const free = day(undefined);
const capped = day(200);

const cpus = execFileSync('nproc', { encoding: 'utf8' }).trim();
const md = `# Trace readers and workloads at size

Machine: ${cpus} cores, SHARED with other work while this ran (absolute times are noisy; compare
within the run). Command: \`npm run build && node bench/workloads.mjs --rows ${rows} --days ${days}\`.

| what | result |
| --- | --- |
| ${rows.toLocaleString('en-US')}-row Mooncake-format trace, read as a stream (\`traceRequests\`) | ${readS.toFixed(2)} s, V8 heap at most ${heapMiB.toFixed(0)} MiB, from ${heap0MiB.toFixed(0)} MiB before (holding a million rows would add ≈ 100 MiB) |
| \`mooncake-synthetic.jsonl\`: ${requests.toLocaleString('en-US')} requests read, every prompt synthesised from its block ids | ${synthS.toFixed(2)} s, ${(chars / 1e6).toFixed(0)} M characters |
| \`simulate --workload envelope --days ${days} --mean-rate 5 --max_workers 20\` (default policy, shipped ServeGen envelope, conv lengths) | ${free.requests.toLocaleString('en-US')} requests, ${free.wallS.toFixed(1)} s wall, peak RSS ${free.rssMiB.toFixed(0)} MiB |
| same, V8 heap capped at 200 MiB (\`node --max-old-space-size=200\`) | completes: ${capped.wallS.toFixed(1)} s wall, peak RSS ${capped.rssMiB.toFixed(0)} MiB; summary ${capped.summary === free.summary ? 'identical to' : 'DIFFERENT from'} the uncapped run's |

The workload generates arrivals as virtual time reaches them (nothing holds the day's requests);
what stays is the simulation's per-request record for the percentiles. The uncapped RSS is V8
collecting late, not a live set: the run under a 200 MiB heap cap completes.
`;
writeFileSync(values.out, md);
process.stdout.write(md);
