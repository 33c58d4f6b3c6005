#!/usr/bin/env node
/**
 * How long `flockserve simulate` and `flockserve plan` take, as whole processes: wall time and
 * CPU time (user + sys, the figure that a busy machine disturbs least), from `/usr/bin/time`.
 * With --base DIR, the same commands run in another checkout (built) too, alternating with this
 * one, so both see the same machine; medians of --runs.
 *
 *   npm run build && node bench/simulate-speed.mjs [--only hour,day,plan] [--runs 3] [--base ../other-checkout]
 *
 * The traces are read from ../shared/traces/ (relative to the project root; TRACES=dir to change it).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import process from 'node:process';
import { parseArgs, promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
const TRACES = resolve(ROOT, process.env.TRACES ?? '../shared/traces');
const { values } = parseArgs({
  options: {
    only: { type: 'string', default: 'hour,day,plan' },
    runs: { type: 'string', default: '3' },
    base: { type: 'string' },
  },
});
const scratch = mkdtempSync(join(tmpdir(), 'bench-simulate-speed-'));
const out = ['--timeline', join(scratch, 't.csv'), '--chart', join(scratch, 'c.svg')];
const conv = join(TRACES, 'azure-llm-2023-conv.csv');

/** The measured commands: the targets of the simulation's speed. */
const CASES = {
  hour: {
    what: '`simulate` one hour of the conv trace (19,366 requests)',
    target: 3,
    args: ['simulate', '--quiet', '--json', '--trace', conv, '--max_workers', '20', ...out],
  },
  day: {
    what: '`simulate` a day of the envelope at 5 req/s (≈432,000 requests)',
    target: 60,
    args: [
      'simulate',
      '--quiet',
      '--json',
      '--workload',
      'envelope',
      '--rates',
      join(TRACES, 'servegen-m-large-rates-10min.csv'),
      '--lengths',
      conv,
      '--days',
      '1',
      '--mean-rate',
      '5',
      '--max_workers',
      '20',
      ...out,
    ],
  },
  plan: {
    what: '`plan` over the conv hour (fixed sweep, 4 policies × 2 starts)',
    target: 90,
    args: ['plan', '--quiet', '--json', '--trace', conv, '--chart', join(scratch, 'p.svg')],
  },
};

/** One process under /usr/bin/time: wall and CPU seconds, max RSS. */
async function timed(dir, args) {
  const { stderr } = await run('/usr/bin/time', ['-f', 'TIME %e %U %S %M', 'node', 'dist/cli/flockserve.js', ...args], {
    cwd: dir,
    maxBuffer: 1 << 26,
  });
  const [wall, user, sys, rssKb] = stderr
    .split('\n')
    .find((l) => l.startsWith('TIME '))
    .slice(5)
    .split(' ')
    .map(Number);
  return { wall, cpu: user + sys, rssMb: rssKb / 1024 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const runs = Number(values.runs);
const checkouts = [['this checkout', ROOT], ...(values.base ? [['base', resolve(values.base)]] : [])];
const rows = [
  '| what | checkout | CPU s (user + sys), each run | median CPU s | median wall s | max RSS MB | target (wall) |',
  '| --- | --- | --- | ---: | ---: | ---: | ---: |',
];
for (const name of values.only.split(',')) {
  const c = CASES[name];
  if (!c) throw new Error(`no case ${name}; cases: ${Object.keys(CASES).join(', ')}`);
  const got = new Map(checkouts.map(([label]) => [label, []]));
  for (let i = 0; i < runs; i++)
    for (const [label, dir] of checkouts) {
      const t = await timed(dir, c.args);
      process.stderr.write(`${name} ${label}: ${t.cpu.toFixed(2)} s CPU, ${t.wall.toFixed(2)} s wall\n`);
      got.get(label).push(t);
    }
  for (const [label, ts] of got)
    rows.push(
      `| ${c.what} | ${label} | ${ts.map((t) => t.cpu.toFixed(2)).join(', ')} | ${median(ts.map((t) => t.cpu)).toFixed(2)} | ${median(ts.map((t) => t.wall)).toFixed(2)} | ${Math.max(...ts.map((t) => t.rssMb)).toFixed(0)} | ≤ ${c.target} |`,
    );
}
process.stdout.write(rows.join('\n') + '\n');
