/**
 * How far apart two runs of one policy on the Azure conversation trace are, against the 5 %
 * target for prefix-aware policies there. The trace's arrivals and lengths come from its file, so
 * on it the seed moves only the gateway's random draws (least-connection's tie-breaks); prefix-hash
 * sends a prompt it has not seen to the least-loaded worker too, and conv's prompts are all
 * distinct. Each run is balancing-sim.ts's conv run near saturation (minutes 10–20 of the trace at
 * ×3, 4 SIMULATED workers, virtual time); random is the load-blind yardstick. Writes the
 * `conv-seeds` section of bench/results/balancing.md.
 *
 *   npx vite-node bench/balancing-conv-seeds.ts [--seeds 8]
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { traceWorkload } from '../src/sim/cluster/workload.js';
import { convTenMinutes, simulateFleet } from './lib/balancing-workloads.js';
import { writeSection } from './lib/sections.mjs';

const { values } = parseArgs({ options: { seeds: { type: 'string', default: '8' } } });
const SEEDS = Number(values.seeds);
if (!(Number.isInteger(SEEDS) && SEEDS >= 2))
  throw new RangeError(`--seeds must be a whole number >= 2, got ${values.seeds}`);
const SCALE = 3;
const POLICIES = ['least-connection', 'prefix-hash', 'prefix-cache', 'random'] as const;

const conv = await convTenMinutes();

const runs = new Map<string, { p50: number; p99: number }[]>();
for (const policy of POLICIES) {
  const rows: { p50: number; p99: number }[] = [];
  for (let seed = 1; seed <= SEEDS; seed++) {
    const r = await simulateFleet({
      workload: traceWorkload(conv, SCALE, 'azure-llm-2023-conv.csv'),
      seed,
      flags: ['--load_balancer', policy],
    });
    rows.push({ p50: r.summary.ttftS.p50 * 1000, p99: r.summary.ttftS.p99 * 1000 });
  }
  runs.set(policy, rows);
  process.stderr.write(`${policy}: done\n`);
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
const lc = runs.get('least-connection')!;
const lcP99 = lc.map((r) => r.p99);
const lines = [
  `### Conv near saturation over ${SEEDS} seeds: the spread of one policy against the 5 % target`,
  '',
  `Run on ${new Date().toISOString().slice(0, 10)}: \`npx vite-node bench/balancing-conv-seeds.ts --seeds ${SEEDS}\`. Minutes 10–20 of the conversation trace at ×${SCALE} (${conv.length.toLocaleString('en')} requests), 4 simulated workers, the engine model's default (chunked prefill). The seed moves only the gateway's random draws. TTFT p50 / p99, ms.`,
  '',
  `| policy | ${Array.from({ length: SEEDS }, (_, i) => `seed ${i + 1}`).join(' | ')} | mean p50 / p99 | mean ÷ least-connection's |`,
  `| --- | ${Array.from({ length: SEEDS }, () => '---:').join(' | ')} | ---: | ---: |`,
];
for (const [policy, rows] of runs) {
  const p50 = mean(rows.map((r) => r.p50));
  const p99 = mean(rows.map((r) => r.p99));
  const vs = `${pct(p50 / mean(lc.map((r) => r.p50)) - 1)} / ${pct(p99 / mean(lcP99) - 1)}`;
  lines.push(
    `| ${policy} | ${rows.map((r) => `${r.p50.toFixed(0)} / ${r.p99.toFixed(0)}`).join(' | ')} | ${p50.toFixed(0)} / ${p99.toFixed(0)} | ${policy === 'least-connection' ? '' : vs} |`,
  );
}
const lo = Math.min(...lcP99);
const hi = Math.max(...lcP99);
lines.push(
  '',
  `least-connection's own p99 runs from ${lo.toFixed(0)} to ${hi.toFixed(0)} ms over the seeds: its highest run is ${pct(hi / lo - 1)} over its lowest, with the same arrivals and lengths.`,
);
writeSection(resolve(import.meta.dirname, '../bench/results/balancing.md'), 'conv-seeds', lines.join('\n'));
process.stderr.write('wrote bench/results/balancing.md\n');
