#!/usr/bin/env node
/**
 * The default autoscaler (slo) on bursts that recur far apart, over a day: the bursty workload
 * (bursts of 50-200 requests in 5 s over 0.5 req/s, the Azure conversation trace's lengths) with
 * its bursts 10, 15 and 30 minutes apart on average (each gap uniform in 0.5-1.5 times that),
 * 60 s launches, three seeds. slo (started at 5 workers, up to 12) against the fixed fleets of
 * 3, 4 and 5 workers, and, with `--base DIR`, against the slo of another build (DIR holds its
 * dist/, e.g. a worktree of main). Each run is one `flockserve simulate` (virtual time, SIMULATED
 * workers and launches). Writes the `burst-rhythm` section of bench/results/autoscaling.md.
 *
 *   npm run build && node bench/burst-rhythm.mjs [--base DIR] [--every 600,900,1800] [--seeds 1,2,3]
 *
 * About 15 minutes on 2 cores (45 simulated days; 54 with --base).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import process from 'node:process';
import { parseArgs } from 'node:util';
import { DEFAULT_QUEUE_WAIT_SLO_S } from '../dist/core/autoscaler/slo.js';
import { dominates } from '../dist/sim/plan/plan.js';
import { writeSection } from './lib/sections.mjs';
import { simulateRun } from './lib/simulate-run.mjs';

const ROOT = resolve(import.meta.dirname, '..');
const LENGTHS = `${process.env.TRACES ?? '../shared/traces'}/azure-llm-2023-conv.csv`;
if (!existsSync(resolve(ROOT, LENGTHS))) throw new Error(`no trace at ${resolve(ROOT, LENGTHS)}; set TRACES=dir`);
const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    every: { type: 'string', default: '600,900,1800' },
    seeds: { type: 'string', default: '1,2,3' },
    jobs: { type: 'string', default: '2' },
  },
});
const list = (s) => s.split(',').map(Number);
const FIXED = [3, 4, 5];
const DAY = 86_400;
const DELAY = 60;

/** The runs of one shape and seed: the fixed fleets, slo, and the base build's slo. */
function runsOf(every, seed) {
  const shape = ['--workload', 'bursty', '--burst-every', String(every), '--lengths', LENGTHS];
  const common = ['--duration', String(DAY), '--provision-delay', String(DELAY), '--seed', String(seed)];
  const slo = ['--max_workers', '12', '--initial-workers', '5'];
  return [
    ...FIXED.map((n) => ({
      key: `fixed ${n}`,
      root: ROOT,
      args: [
        ...shape,
        ...common,
        '--min_workers',
        String(n),
        '--max_workers',
        String(n),
        '--initial-workers',
        String(n),
      ],
    })),
    { key: 'slo', root: ROOT, args: [...shape, ...common, ...slo] },
    ...(values.base ? [{ key: 'base', root: resolve(values.base), args: [...shape, ...common, ...slo] }] : []),
  ].map((r) => ({ ...r, every, seed }));
}

const todo = list(values.every).flatMap((every) => list(values.seeds).flatMap((seed) => runsOf(every, seed)));
const results = new Map();
let next = 0;
await Promise.all(
  Array.from({ length: Number(values.jobs) }, async () => {
    while (next < todo.length) {
      const r = todo[next++];
      results.set(r, await simulateRun(r.root, r.args, ROOT));
      process.stderr.write(`every ${r.every} s, seed ${r.seed}, ${r.key}: done\n`);
    }
  }),
);

const get = (every, seed, key) => {
  const r = todo.find((t) => t.every === every && t.seed === seed && t.key === key);
  return r && results.get(r);
};
/** The fixed fleet that dominates `x` (as `flockserve plan` judges it), if any. */
function dominatedBy(every, seed, x) {
  const n = FIXED.find((n) => dominates(get(every, seed, `fixed ${n}`), x));
  return n === undefined ? undefined : `fixed ${n}`;
}
const cell = (x) => `${x.workerHours.toFixed(2)} @ ${x.p99.toFixed(2)} s${x.failed > 0 ? ` (${x.failed} failed)` : ''}`;
const judged = (every, seed, x) => {
  const by = dominatedBy(every, seed, x);
  const held = x.p99 <= DEFAULT_QUEUE_WAIT_SLO_S && x.failed === 0 ? ', SLO held' : '';
  return `${cell(x)}${by ? `: **dominated by ${by}**` : held}`;
};

const lines = [
  '### Bursts that recur far apart, over a day',
  '',
  `Run on ${new Date().toISOString().slice(0, 10)} by \`node bench/burst-rhythm.mjs${values.base ? ' --base MAIN' : ''}\`: a day of the bursty workload, bursts 50-200 requests in 5 s over 0.5 req/s, their gaps uniform in 0.5-1.5 × the mean spacing; ${DELAY} s launches; slo started at 5, up to 12. Each cell: worker-hours @ p99 queue wait, and the fixed fleet that dominates it (no dearer, no slower, and one of the two strictly) if one does; SLO: p99 ≤ ${DEFAULT_QUEUE_WAIT_SLO_S} s.`,
  '',
  `| mean spacing, seed | ${FIXED.map((n) => `fixed ${n}`).join(' | ')} | ${values.base ? 'slo, base build | ' : ''}slo |`,
  `| --- | ${FIXED.map(() => '---').join(' | ')} | ${values.base ? '--- | ' : ''}--- |`,
];
for (const every of list(values.every))
  for (const seed of list(values.seeds)) {
    const fixed = FIXED.map((n) => cell(get(every, seed, `fixed ${n}`)));
    const base = values.base ? [judged(every, seed, get(every, seed, 'base'))] : [];
    lines.push(
      `| ${every} s, ${seed} | ${[...fixed, ...base, judged(every, seed, get(every, seed, 'slo'))].join(' | ')} |`,
    );
  }
lines.push(
  '',
  'One run, as the bench makes it (fixed N: `--min_workers N --max_workers N --initial-workers N`):',
  '',
  `    node dist/cli/flockserve.js simulate ${runsOf(900, 1)
    .find((r) => r.key === 'slo')
    .args.join(' ')
    .replaceAll(LENGTHS, '../shared/traces/azure-llm-2023-conv.csv')}`,
);
const md = resolve(ROOT, 'bench/results/autoscaling.md');
writeSection(md, 'burst-rhythm', lines.join('\n'));
process.stderr.write(`wrote ${md}\n`);
