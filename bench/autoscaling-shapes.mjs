#!/usr/bin/env node
/**
 * The default autoscaler (slo) on shapes the evaluation set does not hold: six hours of the
 * ServeGen rate envelope (its 10-minute rates step up and down by 10-20 %) at several mean
 * rates, with Mooncake's long prompts (a prefill-bound engine) and with the Azure conversation
 * trace's lengths, at 60 s and 300 s launches. Each row is one `flockserve plan --policies slo`
 * (virtual time, SIMULATED workers and launches): the fixed-fleet frontier, the clairvoyant
 * bound, and slo started cold and warm against both. The mean rates put the load at and between
 * fleet sizes, so the rows show where a scale-down meets a rise it cannot see coming; six hours
 * of the bursty workload show the fleet a cold start settles on. Writes the
 * `autoscaling-shapes` section of bench/results/autoscaling.md.
 *
 *   npm run build && node bench/autoscaling-shapes.mjs
 *
 * The traces are read from ../shared/traces/ (TRACES=dir to change it). About 5 minutes.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import process from 'node:process';
import { promisify } from 'node:util';
import { DEFAULT_QUEUE_WAIT_SLO_S } from '../dist/core/autoscaler/slo.js';
import { writeSection } from './lib/sections.mjs';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
const TRACES = process.env.TRACES ?? '../shared/traces';
const RATES = `${TRACES}/servegen-m-large-rates-10min.csv`;
const LENGTHS = { mooncake: `${TRACES}/mooncake-synthetic.jsonl`, conv: `${TRACES}/azure-llm-2023-conv.csv` };
for (const f of [RATES, ...Object.values(LENGTHS)])
  if (!existsSync(resolve(ROOT, f))) throw new Error(`no trace at ${resolve(ROOT, f)}; set TRACES=dir`);

/**
 * Mean rates, req/s: Mooncake's prompts take about 0.56 req/s per worker, conv's lengths about 2.7.
 * The last shape is the bursty workload (bursts of 50-200 requests every ~5 minutes over 0.5
 * req/s) for six hours instead of the evaluation set's one: where a cold start's first bursts no
 * longer decide the p99, so the fleet it settles on does.
 */
const SHAPES = [
  ...[0.5, 1, 1.5, 2.5].map((rate) => ({ lengths: 'mooncake', rate, cv: 1 })),
  ...[3, 6, 10].map((rate) => ({ lengths: 'conv', rate, cv: 1 })),
  { lengths: 'conv', rate: 6, cv: 2 },
  { lengths: 'conv', bursty: true },
];
const DELAYS = [60, 300];

const dir = mkdtempSync(join(tmpdir(), 'bench-autoscaling-shapes-'));
const rows = [];
for (const shape of SHAPES)
  for (const delay of DELAYS) {
    const args = [
      'plan',
      '--workload',
      ...(shape.bursty ? ['bursty'] : ['envelope', '--rates', RATES, '--mean-rate', String(shape.rate)]),
      '--lengths',
      LENGTHS[shape.lengths],
      '--duration',
      '21600',
      ...(shape.cv === 1 || shape.cv === undefined ? [] : ['--arrival-cv', String(shape.cv)]),
      '--provision-delay',
      String(delay),
      '--seed',
      '1',
      '--policies',
      'slo',
    ];
    const { stdout } = await run(
      'node',
      ['dist/cli/flockserve.js', ...args, '--json', '--chart', join(dir, `${rows.length}.svg`)],
      { cwd: ROOT, maxBuffer: 1 << 26 },
    );
    rows.push({ shape, delay, args, plan: JSON.parse(stdout) });
    process.stderr.write(`${label(shape)}, ${delay} s: done\n`);
  }

function label(shape) {
  if (shape.bursty) return `bursty, ${shape.lengths} lengths`;
  return `${shape.lengths}${shape.cv === 1 ? '' : `, arrival cv ${shape.cv}`}, ${shape.rate} req/s`;
}
const f2 = (v) => v.toFixed(2);
const wait = (r) =>
  `${r.queueWaitS.p99 < 0.05 ? '0' : r.queueWaitS.p99.toFixed(1)} s${r.failed > 0 ? ` (${r.failed} time out)` : ''}`;
const cell = (r) =>
  `${f2(r.workerHours)}, ${wait(r)}; ${f2(r.vsBound)} ×${r.dominatedBy === undefined ? '' : `; **dominated by ${r.dominatedBy}**`}`;
const lines = [
  '### Held-out shapes: the envelope at several rates, prefill-bound and not; six hours of bursts',
  '',
  `Run on ${new Date().toISOString().slice(0, 10)}, seed 1, six hours (the envelope's from its start). Each cell: worker-hours, p99 queue wait (requests that timed out count with their 60 s), slo ÷ the bound, and the fixed fleet that dominates it if one does. "SLO held": p99 wait ≤ ${DEFAULT_QUEUE_WAIT_SLO_S} s (\`queue_wait_slo\`'s default).`,
  '',
  "| lengths, mean rate, launches | fixed fleets: N workers, p99 wait | bound | slo cold | slo warm (start) | SLO held cold / warm | churn: launches within 2 × the bound's + 2 for the run's start, none a quick relaunch; cold / warm |",
  '| --- | --- | ---: | --- | --- | --- | --- |',
];
for (const { shape, delay, plan } of rows) {
  const fixed = plan.fixed.map((f) => `${f.maxWorkers}: ${wait(f)}`).join(', ');
  const by = (start) => plan.policies.find((p) => p.start === start);
  const [cold, warm] = [by('cold'), by('warm')];
  const held = (r) => (r.queueWaitS.p99 <= DEFAULT_QUEUE_WAIT_SLO_S && r.failed === 0 ? 'yes' : '**no**');
  const churn = (r) =>
    r.churnOk ? 'yes' : `no (${r.launches} launches, ${r.quickRelaunches} quick; ${r.launchAllowance} allowed)`;
  lines.push(
    `| ${label(shape)}, ${delay} s | ${fixed} | ${f2(plan.bound.workerHours)} | ${cell(cold)} | ${cell(warm)} (${warm.initialWorkers}) | ${held(cold)} / ${held(warm)} | ${churn(cold)} / ${churn(warm)} |`,
  );
}
lines.push(
  '',
  'Commands (each with `--json`; `--chart FILE` for the frontier):',
  '',
  ...rows.map(
    ({ args }) => `    node dist/cli/flockserve.js ${args.join(' ').replaceAll(`${TRACES}/`, '../shared/traces/')}`,
  ),
);
const md = join(ROOT, 'bench/results/autoscaling.md');
writeSection(md, 'autoscaling-shapes', lines.join('\n'));
process.stderr.write(`wrote ${md}\n`);
