#!/usr/bin/env node
/**
 * The default autoscaler (slo) where the rate rises once and falls back: flash crowds and a
 * surge over a steady 3 req/s, against a flash crowd that comes back and a step that stays. Each
 * shape is two hours of Poisson arrivals following a rate envelope of one-minute windows (written
 * here), the Azure conversation trace's lengths, at 300 s and 60 s launches. Each row is one
 * `flockserve plan --policies slo` (virtual time, SIMULATED workers and launches): the fixed
 * fleets, the clairvoyant bound, and slo started cold and warm. With `--base DIR`, the slo of
 * another build (DIR holds its dist/) runs cold and warm with the same bounds, beside it. Writes
 * the `flash-crowds` section of bench/results/autoscaling.md.
 *
 *   npm run build && node bench/flash-crowds.mjs [--base DIR] [--delays 300,60]
 *
 * About 5 minutes on 2 cores.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import process from 'node:process';
import { parseArgs } from 'node:util';
import { DEFAULT_QUEUE_WAIT_SLO_S } from '../dist/core/autoscaler/slo.js';
import { writeSection } from './lib/sections.mjs';
import { fixedCell, planSlo, runCell } from './lib/slo-plans.mjs';

const ROOT = resolve(import.meta.dirname, '..');
const TRACES = process.env.TRACES ?? '../shared/traces';
const LENGTHS = `${TRACES}/azure-llm-2023-conv.csv`;
if (!existsSync(resolve(ROOT, LENGTHS))) throw new Error(`no trace at ${resolve(ROOT, LENGTHS)}; set TRACES=dir`);
const { values } = parseArgs({ options: { base: { type: 'string' }, delays: { type: 'string', default: '300,60' } } });

const SPAN_S = 7200;
const BASE_RATE = 3;
const at = (fromMin, minutes) => (t) => t >= fromMin * 60 && t < (fromMin + minutes) * 60;
/** Each shape's rate (req/s) in the minute starting at t (s). */
const SHAPES = [
  { name: 'a flash crowd: 4 × the rate for 3 minutes, at 40 minutes', rate: (t) => (at(40, 3)(t) ? 12 : BASE_RATE) },
  { name: 'a surge: 2 × the rate for 10 minutes, at 40 minutes', rate: (t) => (at(40, 10)(t) ? 6 : BASE_RATE) },
  {
    name: 'the flash crowd again 25 minutes later',
    rate: (t) => (at(40, 3)(t) || at(65, 3)(t) ? 12 : BASE_RATE),
  },
  { name: 'a step that stays: 2 × the rate from 40 minutes on', rate: (t) => (t >= 40 * 60 ? 6 : BASE_RATE) },
];

const dir = mkdtempSync(join(tmpdir(), 'bench-flash-crowds-'));
const rows = [];
for (const [i, { name, rate }] of SHAPES.entries()) {
  const rates = [];
  for (let t = 0; t < SPAN_S; t += 60) rates.push(rate(t));
  const file = join(dir, `shape-${i + 1}.csv`);
  writeFileSync(file, `window_start_s,rate_rps\n${rates.map((r, k) => `${k * 60},${r}`).join('\n')}\n`);
  const mean = rates.reduce((a, b) => a + b, 0) / rates.length;
  for (const delay of values.delays.split(',').map(Number)) {
    const args = [
      '--workload',
      'envelope',
      '--rates',
      file,
      '--mean-rate',
      String(mean),
      '--duration',
      String(SPAN_S),
      '--lengths',
      LENGTHS,
      '--provision-delay',
      String(delay),
      '--seed',
      '1',
    ];
    rows.push({ name, file: `shape-${i + 1}.csv`, delay, args, ...(await planSlo(ROOT, args, values.base)) });
    process.stderr.write(`${name}, ${delay} s launches: done\n`);
  }
}

const lines = [
  '### Flash crowds: a rise that does not come again',
  '',
  `Run on ${new Date().toISOString().slice(0, 10)}, seed 1: two hours of Poisson arrivals at ${BASE_RATE} req/s with the Azure conversation trace's lengths, and one of the shapes below. Each cell: worker-hours @ p99 queue wait (requests that timed out count with their 60 s; refused ones are failed), then slo ÷ the bound, ÷ the cheapest fixed fleet that holds the ${DEFAULT_QUEUE_WAIT_SLO_S} s SLO, and the fixed fleet that dominates it if one does.`,
  '',
  `| shape | launches | fixed fleets: N, worker-h @ p99 | bound | slo cold | slo warm (start) |${values.base ? ' base slo cold | base slo warm |' : ''}`,
  `| --- | --- | --- | ---: | --- | --- |${values.base ? ' --- | --- |' : ''}`,
];
for (const { name, delay, plan, base } of rows) {
  const by = (start) => plan.policies.find((p) => p.start === start);
  const [cold, warm] = [by('cold'), by('warm')];
  const baseCells = values.base ? ` ${runCell(base.cold, plan)} | ${runCell(base.warm, plan)} |` : '';
  lines.push(
    `| ${name} | ${delay} s | ${fixedCell(plan)} | ${plan.bound.workerHours.toFixed(2)} | ${runCell(cold, plan)} | ${runCell(warm, plan)} (${warm.initialWorkers}) |${baseCells}`,
  );
}
lines.push(
  '',
  `Commands: \`node bench/flash-crowds.mjs${values.base ? ' --base DIR' : ''}\`, which writes each shape's rates (one-minute windows) as shape-N.csv; each row is`,
  '',
  ...rows.map(
    ({ args, file }) =>
      `    node dist/cli/flockserve.js plan ${args
        .join(' ')
        .replace(/--rates \S+/, `--rates ${file}`)
        .replaceAll(`${TRACES}/`, '../shared/traces/')} --policies slo`,
  ),
);
const md = resolve(ROOT, 'bench/results/autoscaling.md');
writeSection(md, 'flash-crowds', lines.join('\n'));
process.stderr.write(`wrote ${md}\n`);
