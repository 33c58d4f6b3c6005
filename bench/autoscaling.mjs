#!/usr/bin/env node
/**
 * Evaluates every autoscaling policy on the Azure conversation trace with `flockserve simulate`
 * (virtual time, SIMULATED workers and launches): time scale 1 and 4, mean launch delays 60 s
 * and 300 s. Writes bench/results/autoscaling.md and the default policy's charts.
 *
 *   npx tsc -p tsconfig.build.json && node bench/autoscaling.mjs
 *
 * Runs one simulation at a time (the machine is small and shared); about a minute in all.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
// ../shared/traces/ relative to the project root; TRACE=… when the checkout lives elsewhere (a worktree).
const TRACE = process.env.TRACE ?? '../shared/traces/azure-llm-2023-conv.csv';
if (!existsSync(resolve(ROOT, TRACE)))
  throw new Error(`no trace at ${resolve(ROOT, TRACE)}; set TRACE=path/to/azure-llm-2023-conv.csv`);
const SCRATCH = mkdtempSync(join(tmpdir(), 'bench-autoscaling-'));
const OUT = join(ROOT, 'bench/results');
// label → autoscaler and its extra flags. target-tracking runs at its default target (7, the
// per-worker load of autoscale_up) and at 5, to tell the policy's effect from the target's.
const POLICIES = [
  { label: 'running-mean', policy: 'running-mean', extra: [] },
  { label: 'flockserve-classic', policy: 'flockserve-classic', extra: [] },
  { label: 'target-tracking', policy: 'target-tracking', extra: [] },
  { label: 'target-tracking, target 5', policy: 'target-tracking', extra: ['--target_queue_per_worker', '5'] },
];
const SCALES = [1, 4];
const DELAYS = [60, 300];
const SEEDS = [1, 2, 3];
const MAX_WORKERS = 20;
const CHART_POLICY = process.env.CHART_POLICY ?? 'target-tracking';

/** One `flockserve simulate --json` run; returns its parsed summary and the process's wall time. */
async function simulate({ label, policy, extra }, scale, delay, seed) {
  const tag = `${label.replace(/[^a-z0-9]+/g, '-')}-x${scale}-${delay}s`;
  const keep = seed === 1 && label === CHART_POLICY;
  const args = [
    'dist/cli/flockserve.js',
    'simulate',
    '--trace',
    TRACE,
    '--json',
    '--autoscaler',
    policy,
    '--time-scale',
    String(scale),
    '--provision-delay',
    String(delay),
    '--max_workers',
    String(MAX_WORKERS),
    '--seed',
    String(seed),
    // The default policy's charts (seed 1) are kept with the results; the rest go to a scratch folder.
    '--timeline',
    join(keep ? OUT : SCRATCH, `autoscaling-${tag}.csv`),
    '--chart',
    join(keep ? OUT : SCRATCH, `autoscaling-${tag}.svg`),
    ...extra,
  ];
  const started = performance.now();
  const { stdout } = await run('node', args, { cwd: ROOT, maxBuffer: 1 << 24 });
  return { ...JSON.parse(stdout), processS: (performance.now() - started) / 1000, command: `node ${args.join(' ')}` };
}

const rows = [];
for (const scale of SCALES)
  for (const delay of DELAYS)
    for (const policy of POLICIES) {
      const runs = [];
      for (const seed of SEEDS) runs.push(await simulate(policy, scale, delay, seed));
      rows.push({ policy: policy.label, scale, delay, runs });
      const s = runs[0].summary;
      process.stderr.write(
        `${policy.label} x${scale} ${delay}s: p99 wait ${s.queueWaitS.p99.toFixed(1)} s, ${(s.workerSeconds / 3600).toFixed(2)} worker-h, wall ${runs[0].wallS.toFixed(2)} s\n`,
      );
    }

const f = (v, d = 1) => v.toFixed(d);
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const failed = (s) => Object.values(s.failed).reduce((a, b) => a + b, 0);
const lines = [];
lines.push(
  '| time scale | launch delay | policy | completed | failed | queue wait p50 / p95 / p99 (s) | TTFT p99 (s) | e2e p99 (s) | cost (worker-h) | peak | scale up / down | p99 wait, 3 seeds (s) | cost, 3 seeds (worker-h) |',
  '| ---: | ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | --- | --- |',
);
for (const { policy, scale, delay, runs } of rows) {
  const s = runs[0].summary;
  const p99s = runs.map((r) => r.summary.queueWaitS.p99);
  const costs = runs.map((r) => r.summary.workerSeconds / 3600);
  lines.push(
    `| ${scale} | ${delay} s | ${policy} | ${s.completed} | ${failed(s)} | ${f(s.queueWaitS.p50)} / ${f(s.queueWaitS.p95)} / ${f(s.queueWaitS.p99)} | ${f(s.ttftS.p99)} | ${f(s.e2eS.p99)} | ${f(s.workerSeconds / 3600, 2)} | ${s.peakWorkers} | ${runs[0].scaleUps} / ${runs[0].scaleDowns} | ${f(Math.min(...p99s))}–${f(Math.max(...p99s))} (mean ${f(mean(p99s))}) | ${f(Math.min(...costs), 2)}–${f(Math.max(...costs), 2)} |`,
  );
}
const walls = rows.flatMap((r) => r.runs.map((x) => x.wallS));
const procs = rows.flatMap((r) => r.runs.map((x) => x.processS));
const x1 = rows.filter((r) => r.scale === 1).flatMap((r) => r.runs.map((x) => x.wallS));

// The table goes between the markers of bench/results/autoscaling.md; the text around it is written by hand.
const BEGIN = '<!-- results:begin (written by node bench/autoscaling.mjs) -->';
const END = '<!-- results:end -->';
const generated = [
  BEGIN,
  `Run on ${new Date().toISOString().slice(0, 10)}; max_workers ${MAX_WORKERS}, seeds ${SEEDS.join(', ')} (the main columns are seed 1), every other option at its default.`,
  '',
  ...lines,
  '',
  `Simulation wall time per run: ${f(Math.min(...walls), 2)}–${f(Math.max(...walls), 2)} s (time scale 1: at most ${f(Math.max(...x1), 2)} s); whole process including start-up and trace parsing: ${f(Math.min(...procs), 2)}–${f(Math.max(...procs), 2)} s, on a shared 2-core machine.`,
  '',
  'One row, as a command: `' +
    rows[0].runs[0].command
      .replace(ROOT + '/', '')
      .replace(/--timeline \S+ --chart \S+/, '--timeline t.csv --chart c.svg') +
    '`',
  END,
].join('\n');
const mdPath = join(OUT, 'autoscaling.md');
const existing = existsSync(mdPath)
  ? await readFile(mdPath, 'utf8')
  : `# Autoscaling policies on the Azure conversation trace\n\n${BEGIN}\n${END}\n`;
const [head, rest] = existing.split(BEGIN);
if (rest === undefined || !rest.includes(END)) throw new Error(`${mdPath} lacks the results markers`);
await writeFile(mdPath, head + generated + rest.slice(rest.indexOf(END) + END.length));
process.stderr.write(`wrote ${mdPath}\n`);
