#!/usr/bin/env node
/**
 * How the default autoscaler (slo) holds up when the run is not the one it was tuned on:
 * other seeds, other launch-delay distributions, failed launches and preempted workers. Each
 * row is one `flockserve simulate` of the Azure conversation trace (virtual time, SIMULATED
 * workers and launches), started cold at one worker, beside the fixed fleet of 2 (the
 * cheapest that waits for nothing at p99 on this trace) under the same faults. Writes the
 * `autoscaling-robustness` section of bench/results/autoscaling.md.
 *
 *   npm run build && node bench/autoscaling-robustness.mjs
 *
 * The trace is read from ../shared/traces/ (TRACES=dir to change it). Two runs at a time.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import process from 'node:process';
import { promisify } from 'node:util';
import { writeSection } from './lib/sections.mjs';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
const TRACES = process.env.TRACES ?? '../shared/traces';
const TRACE = `${TRACES}/azure-llm-2023-conv.csv`;
if (!existsSync(resolve(ROOT, TRACE))) throw new Error(`no trace at ${resolve(ROOT, TRACE)}; set TRACES=dir`);

/** What varies, as simulate flags; every row runs at a mean launch delay of 300 s. */
const CASES = [
  { what: 'seed 1 (lognormal, cv 0.25)', flags: ['--seed', '1'] },
  { what: 'seed 2', flags: ['--seed', '2'] },
  { what: 'seed 3', flags: ['--seed', '3'] },
  { what: 'launch delays fixed', flags: ['--provision-delay-dist', 'fixed'] },
  {
    what: 'launch delays uniform, cv 0.5',
    flags: ['--provision-delay-dist', 'uniform', '--provision-delay-cv', '0.5'],
  },
  { what: 'launch delays exponential (cv 1)', flags: ['--provision-delay-dist', 'exponential'] },
  { what: 'half of launches fail', flags: ['--launch-failure-rate', '0.5'], fixedToo: true },
  { what: '4 preemptions per worker-hour', flags: ['--preemptions-per-hour', '4'], fixedToo: true },
];
const FLEETS = {
  slo: ['--autoscaler', 'slo', '--min_workers', '1', '--max_workers', '6'],
  'fixed 2': ['--min_workers', '2', '--max_workers', '2'],
};

const dir = mkdtempSync(join(tmpdir(), 'bench-autoscaling-robustness-'));
const jobs = [];
for (const c of CASES)
  for (const [fleet, flags] of Object.entries(FLEETS)) {
    if (fleet !== 'slo' && !c.fixedToo && c !== CASES[0]) continue;
    const args = ['simulate', '--trace', TRACE, '--provision-delay', '300', ...flags, ...c.flags, '--json', '--quiet'];
    jobs.push({ case: c, fleet, args });
  }

/** Runs the jobs two at a time, in order of the table. */
const results = new Array(jobs.length);
let next = 0;
async function worker() {
  while (next < jobs.length) {
    const i = next++;
    const j = jobs[i];
    const scratch = ['--timeline', join(dir, `${i}.csv`), '--chart', join(dir, `${i}.svg`)];
    const { stdout } = await run('node', ['dist/cli/flockserve.js', ...j.args, ...scratch], {
      cwd: ROOT,
      maxBuffer: 1 << 26,
    });
    results[i] = JSON.parse(stdout);
    process.stderr.write(`${j.case.what}, ${j.fleet}: done\n`);
  }
}
await Promise.all([worker(), worker()]);

const f1 = (v) => v.toFixed(1);
const f2 = (v) => v.toFixed(2);
const lines = [
  '### Robustness: the conv trace, 300 s launches, slo started cold at 1 worker',
  '',
  `Run on ${new Date().toISOString().slice(0, 10)}. One \`flockserve simulate\` per row; the fixed fleet of 2 (started with 2 up) under the same seed and faults for comparison. Queue wait includes the 60 s of requests that timed out.`,
  '',
  '| case | run | queue wait p50 / p95 / p99 (s) | TTFT p99 (s) | failed | worker-h | peak | launches | launch failures | preemptions |',
  '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
];
jobs.forEach((j, i) => {
  const r = results[i];
  const s = r.summary;
  const w = s.queueWaitS;
  lines.push(
    `| ${j.case.what} | ${j.fleet} | ${f1(w.p50)} / ${f1(w.p95)} / ${f1(w.p99)} | ${f1(s.ttftS.p99)} | ${s.requests - s.completed} | ${f2(s.workerSeconds / 3600)} | ${s.peakWorkers} | ${r.launches} | ${r.gateway.injected.launchFailures} | ${r.gateway.injected.preemptions} |`,
  );
});
lines.push(
  '',
  'Commands (add `--timeline t.csv --chart c.svg`):',
  '',
  ...jobs.map(
    (j) => `    node dist/cli/flockserve.js ${j.args.join(' ').replaceAll(`${TRACES}/`, '../shared/traces/')}`,
  ),
);
const md = join(ROOT, 'bench/results/autoscaling.md');
writeSection(md, 'autoscaling-robustness', lines.join('\n'));
process.stderr.write(`wrote ${md}\n`);
