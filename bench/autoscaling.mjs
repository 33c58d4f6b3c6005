#!/usr/bin/env node
/**
 * The autoscaling evaluation: `flockserve plan` (virtual time, SIMULATED workers and launches)
 * on each workload of the evaluation set at a mean launch delay of 60 s and of 300 s — the
 * fixed-fleet frontier, the clairvoyant bound, and every policy started cold and warm — plus
 * the simulation's speed. Writes bench/results/autoscaling.md (between its results markers) and
 * one SVG per workload × launch delay.
 *
 *   npm run build && node bench/autoscaling.mjs [--only conv,bursty] [--delays 60,300] [--no-speed] [--resume]
 *
 * The traces are read from ../shared/traces/ (relative to the project root; TRACES=dir to
 * change it). About 15 minutes of CPU in all, most of it the simulated days of the envelope;
 * plan runs its simulations two at a time. Each plan's JSON is kept in
 * bench/results/autoscaling.raw.json as it finishes; --resume takes the plans found there
 * instead of running them again (so workloads can run in separate processes, and an
 * interrupted run goes on where it stopped), and the report covers every plan it holds.
 * --replace slo (with --resume) runs `plan --policies slo` for each kept plan and puts its rows
 * in place of that policy's (after a change to one policy; the fixed sweep, which does not
 * depend on it, must come out the same).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { parseArgs, promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
const TRACES = process.env.TRACES ?? '../shared/traces';
const OUT = join(ROOT, 'bench/results');
const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    delays: { type: 'string', default: '60,300' },
    'no-speed': { type: 'boolean', default: false },
    resume: { type: 'boolean', default: false },
    replace: { type: 'string' },
  },
});

/** The evaluation set: name → what it is and the plan arguments that make it. */
const WORKLOADS = [
  {
    name: 'conv',
    what: 'Azure LLM inference trace 2023, conversation: one hour, 19,366 requests (~5.4 req/s)',
    args: ['--trace', `${TRACES}/azure-llm-2023-conv.csv`],
  },
  {
    name: 'mooncake',
    what: 'Mooncake FAST’25 synthetic trace: 17 minutes, 3,993 requests, long shared-prefix prompts (~15k tokens)',
    args: ['--trace', `${TRACES}/mooncake-synthetic.jsonl`],
  },
  {
    name: 'envelope',
    what: 'a day of the ServeGen m-large rate envelope (day 0) scaled to a mean of 5 req/s, Poisson within each 10-minute window, lengths from the conv trace (~432,000 requests)',
    args: [
      '--workload',
      'envelope',
      '--rates',
      `${TRACES}/servegen-m-large-rates-10min.csv`,
      '--lengths',
      `${TRACES}/azure-llm-2023-conv.csv`,
      '--days',
      '1',
      '--mean-rate',
      '5',
    ],
    // A simulated day is ~30× the conv hour's work: one launch delay and the three policies
    // that are not the original rule keep its sweep within the bench's budget.
    delays: [300],
    policies: 'slo,target-tracking,running-mean',
  },
  {
    name: 'bursty',
    what: 'bursts of 50–200 requests within 5 s every ~5 minutes over 0.5 req/s, one hour, lengths from the conv trace',
    args: ['--workload', 'bursty', '--lengths', `${TRACES}/azure-llm-2023-conv.csv`],
  },
];

const only = values.only?.split(',');
const delays = values.delays.split(',').map(Number);
for (const w of WORKLOADS) {
  const file = w.args[w.args.indexOf(w.args.includes('--trace') ? '--trace' : '--lengths') + 1];
  if (!existsSync(resolve(ROOT, file))) throw new Error(`no trace at ${resolve(ROOT, file)}; set TRACES=dir`);
}

/** One `flockserve plan --json`; its parsed result, the command and its wall time. */
async function plan(w, delay, policies = w.policies) {
  const chart = join(OUT, `autoscaling-${w.name}-${delay}s.svg`);
  const args = [
    'dist/cli/flockserve.js',
    'plan',
    ...w.args,
    ...(policies ? ['--policies', policies] : []),
    '--provision-delay',
    String(delay),
    '--json',
    '--quiet',
  ];
  const started = performance.now();
  const { stdout } = await run('node', [...args, '--chart', chart], { cwd: ROOT, maxBuffer: 1 << 26 });
  const wallS = (performance.now() - started) / 1000;
  return { ...JSON.parse(stdout), processS: wallS, command: `node ${args.join(' ')} --chart c.svg` };
}

const f1 = (v) => v.toFixed(1);
const f2 = (v) => v.toFixed(2);
/** Churn against the bound as plan judges it (churnOk, launchAllowance). */
const churn = (r) => (r.churnOk ? 'ok' : `over (${r.launches} > ${r.launchAllowance} or ${r.quickRelaunches} quick)`);
const waits = (r) => `${f1(r.queueWaitS.p50)} / ${f1(r.queueWaitS.p95)} / ${f1(r.queueWaitS.p99)}`;

function section(w, delay, p) {
  const lines = [
    `### ${w.name}, ${delay} s launches`,
    '',
    `${w.what}. Launches lognormal, mean ${delay} s, cv 0.25; policies up to max_workers ${p.maxWorkers.value}. Bound: ${f2(p.bound.workerHours)} worker-h (the larger of the whole-worker schedule, ${f2(p.bound.windowHours)}, and the engine work, ${f2(p.bound.workHours)}; the slot schedule alone ${f2(p.bound.slotHours)}; ${p.bound.launches} launches, peak ${p.bound.peak}). Planned in ${f1(p.processS)} s.`,
    '',
    '| run | start | queue wait p50 / p95 / p99 (s) | TTFT p99 (s) | failed | worker-h | peak | launches (/h) | quick relaunches | × bound | × fixed (N) | dominated | churn |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
  ];
  for (const r of p.fixed)
    lines.push(
      `| fixed ${r.initialWorkers} | - | ${waits(r)} | ${f1(r.ttftS.p99)} | ${r.failed} | ${f2(r.workerHours)} | ${r.peakWorkers} | - | - | ${f2(r.workerHours / p.bound.workerHours)} | - | - | - |`,
    );
  for (const r of p.policies) {
    const vsFixed = r.vsFixed === undefined ? '-' : `${f2(r.vsFixed)} (${r.fixedMatch.workers})`;
    const name = r.policy === 'slo' ? '**slo**' : r.policy;
    lines.push(
      `| ${name} | ${r.start} (${r.initialWorkers}) | ${waits(r)} | ${f1(r.ttftS.p99)} | ${r.failed} | ${f2(r.workerHours)} | ${r.peakWorkers} | ${r.launches} (${f1(r.launchesPerHour)}) | ${r.quickRelaunches} | ${f2(r.vsBound)} | ${vsFixed} | ${r.dominatedBy === undefined ? 'no' : `yes, by ${r.dominatedBy}`} | ${churn(r)} |`,
    );
  }
  lines.push('', `![${w.name}, ${delay} s launches](autoscaling-${w.name}-${delay}s.svg)`, '');
  return lines.join('\n');
}

const rawPath = join(OUT, 'autoscaling.raw.json');
/** The plans kept so far, by `workload-delay`; re-read before each write (other runs may add theirs). */
const readRaw = async () => (existsSync(rawPath) ? JSON.parse(await readFile(rawPath, 'utf8')) : {});
const raw = values.resume ? await readRaw() : {};
for (const w of WORKLOADS) {
  if (only && !only.includes(w.name)) continue;
  for (const delay of delays) {
    if (w.delays && !w.delays.includes(delay)) continue;
    const key = `${w.name}-${delay}`;
    const kept = raw[key];
    if (kept && !values.replace) continue;
    process.stderr.write(`plan ${w.name}, ${delay} s launches${kept ? `, ${values.replace} again` : ''} ...\n`);
    let p = await plan(w, delay, kept ? values.replace : undefined);
    // The kept JSON names traces as the README does, not by this machine's TRACES directory.
    const shared = (text) => text.replaceAll(`${TRACES}/`, '../shared/traces/');
    p = {
      ...p,
      command: shared(p.command),
      trace: p.trace && shared(p.trace),
      workload: p.workload && shared(p.workload),
    };
    if (kept) {
      const sweep = (x) => JSON.stringify(x.fixed.map((r) => [r.initialWorkers, r.workerHours, r.queueWaitS]));
      if (sweep(p) !== sweep(kept)) throw new Error(`${key}: the fixed sweep differs from the kept plan's`);
      const again = new Set(values.replace.split(','));
      // One line per policy run again: this run's, in place of an earlier run's for the same policies.
      const note = `  (${values.replace} again, in place of the first command's)`;
      const before = kept.command.split('\n').filter((line) => !line.endsWith(note));
      p = {
        ...kept,
        policies: [...kept.policies.filter((r) => !again.has(r.policy)), ...p.policies],
        command: [...before, `    ${p.command}${note}`].join('\n'),
      };
    }
    raw[key] = p;
    await writeFile(rawPath, JSON.stringify({ ...(await readRaw()), [key]: p }, null, 1) + '\n');
    const slo = p.policies.filter((r) => r.policy === 'slo');
    process.stderr.write(
      `  ${f1(p.processS)} s; slo: ${slo.map((r) => `${r.start} ${f2(r.workerHours)} worker-h, p99 ${f1(r.queueWaitS.p99)} s, ×bound ${f2(r.vsBound)}`).join('; ')}\n`,
    );
  }
}
Object.assign(raw, { ...(await readRaw()), ...raw });
const sections = [];
const commands = [];
const keptDelays = [...new Set(Object.keys(raw).map((k) => Number(k.split('-').at(-1))))].sort((a, b) => a - b);
for (const w of WORKLOADS)
  for (const delay of keptDelays) {
    const p = raw[`${w.name}-${delay}`];
    if (!p) continue;
    sections.push(section(w, delay, p));
    commands.push(p.command);
  }

/** Wall seconds of `node args...`, best of `n` runs. */
async function timed(args, n) {
  let best = Infinity;
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await run('node', args, { cwd: ROOT, maxBuffer: 1 << 26 });
    best = Math.min(best, (performance.now() - t) / 1000);
  }
  return best;
}

const speed = [];
if (!values['no-speed']) {
  process.stderr.write('speed ...\n');
  // As the flockserve bin runs it (its shebang gives V8 64 MiB semi-spaces).
  const sim = ['--max-semi-space-size=64', 'dist/cli/flockserve.js', 'simulate', '--quiet', '--json'];
  const dir = mkdtempSync(join(tmpdir(), 'bench-autoscaling-'));
  const scratch = ['--timeline', join(dir, 't.csv'), '--chart', join(dir, 'c.svg')];
  const hour = await timed(
    [...sim, '--trace', `${TRACES}/azure-llm-2023-conv.csv`, '--max_workers', '20', ...scratch],
    3,
  );
  const day = await timed([...sim, ...WORKLOADS[2].args, '--max_workers', '20', ...scratch], 1);
  const planConv = await timed(
    ['dist/cli/flockserve.js', 'plan', '--quiet', '--json', ...WORKLOADS[0].args, '--chart', join(dir, 'p.svg')],
    1,
  );
  speed.push(
    '| what | wall (s) | target |',
    '| --- | ---: | ---: |',
    `| \`simulate\` one hour of the conv trace (whole process, best of 3) | ${f1(hour)} | ≤ 3 |`,
    `| \`simulate\` a day of the envelope at 5 req/s (whole process) | ${f1(day)} | ≤ 60 |`,
    `| \`plan\` over the conv trace (fixed sweep, 4 policies × 2 starts, 2 threads) | ${f1(planConv)} | ≤ 90 |`,
  );
}

const BEGIN = '<!-- results:begin (written by node bench/autoscaling.mjs) -->';
const END = '<!-- results:end -->';
const mdPath = join(OUT, 'autoscaling.md');
const existing = existsSync(mdPath) ? await readFile(mdPath, 'utf8') : `# Autoscaling\n\n${BEGIN}\n${END}\n`;
const [head, rest] = existing.split(BEGIN);
if (rest === undefined || !rest.includes(END)) throw new Error(`${mdPath} lacks the results markers`);
// Not timed this run (--no-speed): the speed table of the last run that timed it stays.
if (speed.length === 0) speed.push(...(/### Speed\n\n([\s\S]*?)\n\n/.exec(rest)?.[1].split('\n') ?? []));
const generated = [
  BEGIN,
  `Run on ${new Date().toISOString().slice(0, 10)} (${process.platform}, ${(await import('node:os')).availableParallelism()} cores, shared with other work); seed 1; every option at its default unless the table says otherwise.`,
  '',
  ...sections,
  ...(speed.length ? ['### Speed', '', ...speed, ''] : []),
  'Commands (one per table):',
  '',
  ...commands.map((c) => `    ${c}`),
  END,
].join('\n');
await writeFile(mdPath, head + generated + rest.slice(rest.indexOf(END) + END.length));
process.stderr.write(`wrote ${mdPath}\n`);
