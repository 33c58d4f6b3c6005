/**
 * What prefix-cache's hot-spot bound costs and what it holds, in virtual time: for each
 * `balance_rel_threshold`, prefix-cache ÷ least-connection TTFT p50 on the whole Mooncake trace
 * at the loads between moderate and near saturation (×0.4, ×0.5; seeds 1–3), beside max ÷ mean
 * in flight on the hot-prompt trace of bench/balancing-sim.ts (4, 8, 16 req/s; seed 1), whose
 * target is ≤ 1.5. 4 workers, the gpu profile, the engine model's default. Prints a markdown
 * table; writes nothing.
 *
 *   npx vite-node bench/hot-spot-bound.ts [--thresholds 1.5,1.75,2,100]
 */
import { parseArgs } from 'node:util';
import { readTrace } from '../src/sim/cluster/trace.js';
import { traceWorkload } from '../src/sim/cluster/workload.js';
import { HOT_PREFIX_DEFAULTS, hotPrefixTrace } from '../src/sim/workloads/prefix-traces.js';
import { MOONCAKE_TRACE, simulateFleet } from './lib/balancing-workloads.js';

const { values } = parseArgs({ options: { thresholds: { type: 'string', default: '1.5,1.75,2,100' } } });
const thresholds = values.thresholds.split(',').map(Number);

const MOONCAKE_SCALES = [0.4, 0.5];
const SEEDS = [1, 2, 3];
const HOT_SCALES = [1, 2, 4];

const mooncake = await readTrace(MOONCAKE_TRACE);
const hot = hotPrefixTrace({ ...HOT_PREFIX_DEFAULTS, seed: 1 });

async function ttftP50(scale: number, seed: number, flags: readonly string[]): Promise<number> {
  const r = await simulateFleet({ workload: traceWorkload([...mooncake], scale, 'mooncake'), flags, seed });
  return r.summary.ttftS.p50;
}

const leastConnection = new Map<string, number>();
for (const scale of MOONCAKE_SCALES)
  for (const seed of SEEDS)
    leastConnection.set(`${scale}/${seed}`, await ttftP50(scale, seed, ['--load_balancer', 'least-connection']));

const out = [
  `| balance_rel_threshold | ${MOONCAKE_SCALES.map((s) => `×${s} p50 ÷ LC (seeds ${SEEDS.join(' / ')})`).join(' | ')} | hot prompt max ÷ mean in flight (${HOT_SCALES.map((s) => HOT_PREFIX_DEFAULTS.ratePerSecond * s).join(' / ')} req/s) |`,
  `| ---: | ${MOONCAKE_SCALES.map(() => '---').join(' | ')} | --- |`,
];
for (const threshold of thresholds) {
  const flags = ['--load_balancer', 'prefix-cache', '--balance_rel_threshold', `${threshold}`];
  const cells: string[] = [];
  for (const scale of MOONCAKE_SCALES) {
    const ratios: string[] = [];
    for (const seed of SEEDS)
      ratios.push(((await ttftP50(scale, seed, flags)) / leastConnection.get(`${scale}/${seed}`)!).toFixed(3));
    cells.push(ratios.join(' / '));
  }
  const imbalance: string[] = [];
  for (const scale of HOT_SCALES) {
    const r = await simulateFleet({ workload: traceWorkload(hot, scale, 'hot-prefix.jsonl'), flags, seed: 1 });
    imbalance.push(r.balance.imbalance.toFixed(2));
  }
  out.push(`| ${threshold} | ${cells.join(' | ')} | ${imbalance.join(' / ')} |`);
  console.error(`threshold ${threshold} done`);
}
console.log(out.join('\n'));
