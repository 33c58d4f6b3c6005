/**
 * Prefix-aware routing against least-connection in virtual time, under the engine model with
 * whole-prompt steps (budget 0) and with chunked prefill (vLLM's per-step token budget,
 * --max_num_batched_tokens): does the balancers' comparison hold whether or not long prefills
 * stall running decodes? The Mooncake trace on the gpu profile at four loads, seeds 1–3,
 * least-connection, prefix-cache and the oracle; the Azure conversation slice of
 * bench/balancing-sim.ts (minutes 10–20, ×2 and ×3), least-connection, prefix-cache and
 * prefix-hash. Prints markdown tables; writes nothing.
 *
 *   npx vite-node bench/chunked-prefill-sim.ts [--budgets 0,2048,8192] [--only mooncake,conv]
 *
 * 2048 is the default profile's budget, vLLM's OpenAI-server default on an A100 (its rows equal
 * bench/results/balancing-sim.json's for the same runs); 8192 is vLLM's on ≥70 GiB GPUs that are
 * not A100s; 0 is vLLM's V0 engine without chunked prefill.
 */
import { parseArgs } from 'node:util';
import { readTrace, type TraceRequest } from '../src/sim/cluster/trace.js';
import { traceWorkload } from '../src/sim/cluster/workload.js';
import { convTenMinutes, MOONCAKE_TRACE, simulateFleet } from './lib/balancing-workloads.js';

const { values } = parseArgs({
  options: { budgets: { type: 'string', default: '0,2048,8192' }, only: { type: 'string', default: 'mooncake,conv' } },
});
const budgets = values.budgets.split(',').map(Number);
const sections = values.only.split(',');

interface Row {
  readonly completed: number;
  readonly requests: number;
  readonly p50: number;
  readonly p99: number;
  readonly hit: number;
}

const LC = 'least-connection';
const ORACLE = 'oracle';

async function measure(trace: readonly TraceRequest[], scale: number, budget: number, seed: number, policy: string) {
  const r = await simulateFleet({
    workload: traceWorkload([...trace], scale, 'trace'),
    profile: { maxNumBatchedTokens: budget },
    flags: policy === ORACLE ? [] : ['--load_balancer', policy],
    oracle: policy === ORACLE,
    seed,
  });
  const row: Row = {
    completed: r.summary.completed,
    requests: r.summary.requests,
    p50: r.summary.ttftS.p50 * 1000,
    p99: r.summary.ttftS.p99 * 1000,
    hit: r.prefixCache.hitRate,
  };
  console.error(`budget ${budget} ×${scale} seed ${seed} ${policy}: ${JSON.stringify(row)}`);
  return row;
}

const f2 = (x: number): string => x.toFixed(2);
const ms = (x: number): string => (x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : x.toFixed(0));
const pair = (a: Row): string => `${ms(a.p50)} / ${ms(a.p99)}`;
const ratios = (a: Row, lc: Row): string => `${f2(a.p50 / lc.p50)} / ${f2(a.p99 / lc.p99)}`;
const failed = (a: Row): number => a.requests - a.completed;
const geomean = (xs: readonly number[]): number => Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
const model = (budget: number): string =>
  budget > 0 ? `chunked prefill, ${budget} tokens a step` : 'whole-prompt steps';

const out: string[] = [];

if (sections.includes('mooncake')) {
  const trace = await readTrace(MOONCAKE_TRACE);
  const scales = [0.3, 0.4, 0.5, 0.55, 0.6];
  const seeds = [1, 2, 3];
  /** prefix-cache ÷ least-connection per budget and scale, one per seed: [p50, p99]. */
  const summary = new Map<string, [number, number][]>();
  for (const budget of budgets) {
    out.push(`### Mooncake, gpu profile, ${model(budget)}

| scale | seed | LC p50 / p99 (ms) | prefix-cache | oracle | prefix-cache ÷ LC, p50 / p99 | oracle ÷ LC | hit rate LC / PC / oracle | failed LC / PC / oracle |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
    for (const scale of scales)
      for (const seed of seeds) {
        const lc = await measure(trace, scale, budget, seed, LC);
        const pc = await measure(trace, scale, budget, seed, 'prefix-cache');
        const or = await measure(trace, scale, budget, seed, ORACLE);
        const key = `${budget} ${scale}`;
        summary.set(key, [...(summary.get(key) ?? []), [pc.p50 / lc.p50, pc.p99 / lc.p99]]);
        const hits = [lc, pc, or].map((r) => (r.hit * 100).toFixed(1)).join(' / ');
        out.push(
          `| ×${scale} | ${seed} | ${pair(lc)} | ${pair(pc)} | ${pair(or)} | ${ratios(pc, lc)} | ${ratios(or, lc)} | ${hits}% | ${[lc, pc, or].map(failed).join(' / ')} |`,
        );
      }
    out.push('');
  }
  out.push(`### Mooncake: prefix-cache ÷ least-connection TTFT, geometric mean of seeds 1–3 (p50 / p99)

| scale | ${budgets.map(model).join(' | ')} |
| --- | ${budgets.map(() => '---:').join(' | ')} |`);
  for (const scale of scales) {
    const cells = budgets.map((b) => {
      const r = summary.get(`${b} ${scale}`)!;
      return `${f2(geomean(r.map((x) => x[0])))} / ${f2(geomean(r.map((x) => x[1])))}`;
    });
    out.push(`| ×${scale} | ${cells.join(' | ')} |`);
  }
  out.push('');
}

if (sections.includes('conv')) {
  const conv = await convTenMinutes();
  out.push(`### Azure conversation trace, minutes 10–20, seed 1 (target: prefix-aware at most 5 % over least-connection)

| scale | engine model | LC p50 / p99 (ms) | prefix-cache ÷ LC, p50 / p99 | prefix-hash ÷ LC |
| --- | --- | ---: | ---: | ---: |`);
  for (const scale of [2, 3])
    for (const budget of budgets) {
      const lc = await measure(conv, scale, budget, 1, LC);
      const pc = await measure(conv, scale, budget, 1, 'prefix-cache');
      const ph = await measure(conv, scale, budget, 1, 'prefix-hash');
      out.push(`| ×${scale} | ${model(budget)} | ${pair(lc)} | ${ratios(pc, lc)} | ${ratios(ph, lc)} |`);
    }
}

console.log(out.join('\n'));
