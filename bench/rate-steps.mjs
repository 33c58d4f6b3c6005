#!/usr/bin/env node
/**
 * The default autoscaler (slo) where the rate steps up and down within minutes: the first day of
 * the ServeGen rate envelope (in its evening the 10-minute rates step by up to 86 % from one
 * window to the next) at a mean of 20 req/s, the Azure conversation trace's lengths,
 * 300 s and 60 s launches. Each row is one `flockserve plan --policies slo` (virtual time,
 * SIMULATED workers and launches): the fixed fleets, the clairvoyant bound, and slo started cold
 * and warm. With `--base DIR`, the slo of another build (DIR holds its dist/) runs cold and warm
 * with the same bounds, beside it. Writes the `rate-steps` section of bench/results/autoscaling.md.
 *
 *   npm run build && node bench/rate-steps.mjs [--base DIR] [--delays 300,60]
 *
 * About 20 minutes a launch delay on 2 cores (a simulated day at 20 req/s takes 1-2 minutes).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import process from 'node:process';
import { parseArgs, promisify } from 'node:util';
import { DEFAULT_QUEUE_WAIT_SLO_S } from '../dist/core/autoscaler/slo.js';
import { dominates } from '../dist/sim/plan/plan.js';
import { writeSection } from './lib/sections.mjs';
import { simulateRun } from './lib/simulate-run.mjs';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
const TRACES = process.env.TRACES ?? '../shared/traces';
const RATES = `${TRACES}/servegen-m-large-rates-10min.csv`;
const LENGTHS = `${TRACES}/azure-llm-2023-conv.csv`;
for (const f of [RATES, LENGTHS])
  if (!existsSync(resolve(ROOT, f))) throw new Error(`no trace at ${resolve(ROOT, f)}; set TRACES=dir`);
const { values } = parseArgs({ options: { base: { type: 'string' }, delays: { type: 'string', default: '300,60' } } });
const RATE = 20;

const shape = (delay) => [
  '--workload',
  'envelope',
  '--rates',
  RATES,
  '--lengths',
  LENGTHS,
  '--days',
  '1',
  '--mean-rate',
  String(RATE),
  '--provision-delay',
  String(delay),
  '--seed',
  '1',
];

const rows = [];
for (const delay of values.delays.split(',').map(Number)) {
  const args = [...shape(delay), '--policies', 'slo'];
  const chart = join(mkdtempSync(join(tmpdir(), 'bench-rate-steps-')), 'plan.svg');
  const { stdout } = await run(
    'node',
    ['dist/cli/flockserve.js', 'plan', ...args, '--json', '--quiet', '--chart', chart],
    {
      cwd: ROOT,
      maxBuffer: 1 << 26,
    },
  );
  const plan = JSON.parse(stdout);
  // Every run, the plan's and the base build's, in the shape `dominates` weighs.
  const judged = (r) => ({ ...r, p99: r.queueWaitS.p99 });
  plan.fixed = plan.fixed.map(judged);
  plan.policies = plan.policies.map(judged);
  const base = {};
  if (values.base)
    for (const p of plan.policies)
      base[p.start] = await simulateRun(
        values.base,
        [...shape(delay), '--max_workers', String(p.maxWorkers), '--initial-workers', String(p.initialWorkers)],
        ROOT,
      );
  rows.push({ delay, args, plan, base });
  process.stderr.write(`${delay} s launches: done\n`);
}

const f2 = (v) => v.toFixed(2);
const wait = (r) => `${r.p99 < 0.05 ? '0' : r.p99.toFixed(1)} s`;
const failed = (r) => (r.failed > 0 ? `, ${r.failed} failed` : '');
const held = (r) => r.p99 <= DEFAULT_QUEUE_WAIT_SLO_S && r.failed === 0;
const cheapestHolding = (plan) => plan.fixed.find(held);
function cell(r, plan) {
  const by = plan.fixed.find((f) => dominates(f, r));
  const hold = cheapestHolding(plan);
  return [
    `${f2(r.workerHours)} @ ${wait(r)}${failed(r)}`,
    `${f2(r.workerHours / plan.bound.workerHours)} × the bound`,
    hold ? `${f2(r.workerHours / hold.workerHours)} × fixed ${hold.maxWorkers}` : '',
    by ? `**dominated by fixed ${by.maxWorkers}**` : '',
  ]
    .filter(Boolean)
    .join('; ');
}
const lines = [
  '### Steps of the rate within minutes: a day of the envelope at 20 req/s',
  '',
  `Run on ${new Date().toISOString().slice(0, 10)}, seed 1, the envelope's first day (its 10-minute rates, scaled to a mean of ${RATE} req/s; in the evening they step by up to 86 % from one window to the next) with the Azure conversation trace's lengths. Each cell: worker-hours @ p99 queue wait (requests that timed out count with their 60 s; refused ones are failed), then slo ÷ the bound, ÷ the cheapest fixed fleet that holds the ${DEFAULT_QUEUE_WAIT_SLO_S} s SLO, and the fixed fleet that dominates it if one does.`,
  '',
  `| launches | fixed fleets: N, worker-h @ p99 | bound | slo cold | slo warm (start) |${values.base ? ' base slo cold | base slo warm |' : ''}`,
  `| --- | --- | ---: | --- | --- |${values.base ? ' --- | --- |' : ''}`,
];
for (const { delay, plan, base } of rows) {
  const fixed = plan.fixed.map((f) => `${f.maxWorkers}: ${f2(f.workerHours)} @ ${wait(f)}${failed(f)}`).join('; ');
  const by = (start) => plan.policies.find((p) => p.start === start);
  const [cold, warm] = [by('cold'), by('warm')];
  const baseCells = values.base ? ` ${cell(base.cold, plan)} | ${cell(base.warm, plan)} |` : '';
  lines.push(
    `| ${delay} s | ${fixed} | ${f2(plan.bound.workerHours)} | ${cell(cold, plan)} | ${cell(warm, plan)} (${warm.initialWorkers}) |${baseCells}`,
  );
}
lines.push(
  '',
  `Commands: \`node bench/rate-steps.mjs${values.base ? ' --base DIR' : ''}\`; each row is`,
  '',
  ...rows.map(
    ({ args }) =>
      `    node dist/cli/flockserve.js plan ${args.join(' ').replaceAll(`${TRACES}/`, '../shared/traces/')}`,
  ),
);
const md = resolve(ROOT, 'bench/results/autoscaling.md');
writeSection(md, 'rate-steps', lines.join('\n'));
process.stderr.write(`wrote ${md}\n`);
