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
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import process from 'node:process';
import { parseArgs } from 'node:util';
import { DEFAULT_QUEUE_WAIT_SLO_S } from '../dist/core/autoscaler/slo.js';
import { writeSection } from './lib/sections.mjs';
import { fixedCell, planSlo, runCell } from './lib/slo-plans.mjs';

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
  const args = shape(delay);
  rows.push({ delay, args, ...(await planSlo(ROOT, args, values.base)) });
  process.stderr.write(`${delay} s launches: done\n`);
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
  const by = (start) => plan.policies.find((p) => p.start === start);
  const [cold, warm] = [by('cold'), by('warm')];
  const baseCells = values.base ? ` ${runCell(base.cold, plan)} | ${runCell(base.warm, plan)} |` : '';
  lines.push(
    `| ${delay} s | ${fixedCell(plan)} | ${plan.bound.workerHours.toFixed(2)} | ${runCell(cold, plan)} | ${runCell(warm, plan)} (${warm.initialWorkers}) |${baseCells}`,
  );
}
lines.push(
  '',
  `Commands: \`node bench/rate-steps.mjs${values.base ? ' --base DIR' : ''}\`; each row is`,
  '',
  ...rows.map(
    ({ args }) =>
      `    node dist/cli/flockserve.js plan ${args.join(' ').replaceAll(`${TRACES}/`, '../shared/traces/')} --policies slo`,
  ),
);
const md = resolve(ROOT, 'bench/results/autoscaling.md');
writeSection(md, 'rate-steps', lines.join('\n'));
process.stderr.write(`wrote ${md}\n`);
