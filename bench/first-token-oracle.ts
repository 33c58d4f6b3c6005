/**
 * Is the time-to-first-token target within reach of routing at all? Where prefix-aware routing
 * misses "TTFT p50 ≤ 0.5 × least-connection's", this runs the same cells with the clairvoyant
 * first-token oracle (src/sim/cluster/oracle.ts): each request to the worker whose engine would
 * give it its first token soonest, read from the engines' own queues and caches. No gateway
 * knows more; a target it misses is not one routing is expected to meet.
 *
 * Virtual time, 4 workers, the engine model's default (chunked prefill, 2048 tokens a step), the
 * gpu profile: the Mooncake trace at ×0.3–×0.6 on seeds 1–3, and the generated chat and RAG
 * traces at the loads and seeds of bench/balancing-sim.ts. With `live-slice`, also the live
 * full run's Mooncake slice at both its loads, on its 5× faster engines: the yardstick beside
 * bench/balancing.ts's live tables. With `--trace FILE`, any trace `simulate` reads (a held-out
 * one: Mooncake's real conversation trace) at the time scales of `--scales`, seed 1, in place of
 * the sections. Prints a markdown table; writes nothing.
 *
 *   npx vite-node bench/first-token-oracle.ts [--only mooncake,generated,live-slice]
 *   npx vite-node bench/first-token-oracle.ts --trace FILE --scales 0.45,0.85
 */
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import type { OracleKind } from '../src/sim/cluster/oracle.js';
import { readTrace, type TraceRequest } from '../src/sim/cluster/trace.js';
import { traceWorkload } from '../src/sim/cluster/workload.js';
import { CHAT_DEFAULTS, RAG_DEFAULTS, chatTrace, ragTrace } from '../src/sim/workloads/prefix-traces.js';
import type { EngineProfile } from '../src/sim/engine-model.js';
import {
  FAST_ENGINES,
  MOONCAKE_LIVE,
  MOONCAKE_LOADS,
  MOONCAKE_TRACE,
  simulateFleet,
  traceSlice,
} from './lib/balancing-workloads.js';

const { values } = parseArgs({
  options: {
    only: { type: 'string', default: 'mooncake,generated' },
    trace: { type: 'string' },
    scales: { type: 'string', default: '1' },
  },
});
const sections = values.trace === undefined ? values.only.split(',') : [];

interface Cell {
  readonly name: string;
  readonly trace: readonly TraceRequest[];
  readonly scale: number;
  readonly seed: number;
  readonly profile?: Partial<EngineProfile>;
}

const cells: Cell[] = [];
if (sections.includes('mooncake')) {
  const trace = await readTrace(MOONCAKE_TRACE);
  for (const scale of [0.3, 0.4, 0.5, 0.55, 0.6])
    for (const seed of [1, 2, 3]) cells.push({ name: 'Mooncake', trace, scale, seed });
}
if (sections.includes('live-slice')) {
  const trace = traceSlice(await readTrace(MOONCAKE_TRACE), MOONCAKE_LIVE.fromSeconds, MOONCAKE_LIVE.fullSeconds);
  for (const load of ['moderate', 'saturated'] as const) {
    const scale = MOONCAKE_LOADS.gpu[load] * FAST_ENGINES.speedup;
    cells.push({ name: 'Mooncake live slice', trace, scale, seed: 1, profile: FAST_ENGINES.profile });
  }
}
if (sections.includes('generated')) {
  for (const seed of [1, 2, 3]) {
    const chat = chatTrace({ ...CHAT_DEFAULTS, seed });
    const rag = ragTrace({ ...RAG_DEFAULTS, seed });
    // As bench/balancing-sim.ts: both loads for the first seed, near saturation for the others.
    for (const scale of seed === 1 ? [1.5, 3] : [3]) {
      cells.push({ name: 'chat', trace: chat, scale, seed });
      cells.push({ name: 'rag', trace: rag, scale, seed });
    }
  }
}

if (values.trace !== undefined) {
  const trace = await readTrace(values.trace);
  for (const scale of values.scales.split(',').map(Number))
    cells.push({ name: basename(values.trace), trace, scale, seed: 1 });
}

/** The routes compared: a policy's flags, or an oracle. */
const ROUTES: readonly { readonly label: string; readonly flags?: readonly string[]; readonly oracle?: OracleKind }[] =
  [
    { label: 'least-connection', flags: ['--load_balancer', 'least-connection'] },
    { label: 'prefix-cache', flags: ['--load_balancer', 'prefix-cache'] },
    { label: 'longest-prefix oracle', oracle: 'longest-prefix' },
    { label: 'first-token oracle', oracle: 'first-token' },
  ];

const ms = (s: number): string => (s >= 10 ? `${s.toFixed(1)} s` : `${(s * 1000).toFixed(0)}`);
const ratio = (a: number, b: number): string => (a / b).toFixed(2);

const out = [
  `| trace | × | seed | least-connection p50 / p99 (ms) | ${ROUTES.slice(1)
    .map((r) => `${r.label} ÷ LC, p50 / p99`)
    .join(' | ')} | hit rate ${ROUTES.map((r) => r.label.split(' ')[0]).join(' / ')} |`,
  `| --- | ---: | ---: | ---: | ${ROUTES.slice(1)
    .map(() => '---:')
    .join(' | ')} | ---: |`,
];
for (const c of cells) {
  const runs = [];
  for (const r of ROUTES) {
    const result = await simulateFleet({
      workload: traceWorkload([...c.trace], c.scale, 'trace'),
      flags: r.flags ?? [],
      oracle: r.oracle ?? false,
      seed: c.seed,
      ...(c.profile ? { profile: c.profile } : {}),
    });
    const s = result.summary;
    if (s.completed !== s.requests)
      console.error(`${c.name} ×${c.scale} seed ${c.seed} ${r.label}: ${s.requests - s.completed} failed`);
    runs.push({ p50: s.ttftS.p50, p99: s.ttftS.p99, hit: result.prefixCache.hitRate });
    console.error(`${c.name} ×${c.scale} seed ${c.seed} ${r.label}: p50 ${ms(s.ttftS.p50)} p99 ${ms(s.ttftS.p99)}`);
  }
  const [lc] = runs;
  out.push(
    `| ${c.name} | ${c.scale} | ${c.seed} | ${ms(lc!.p50)} / ${ms(lc!.p99)} | ${runs
      .slice(1)
      .map((r) => `${ratio(r.p50, lc!.p50)} / ${ratio(r.p99, lc!.p99)}`)
      .join(' | ')} | ${runs.map((r) => (r.hit * 100).toFixed(1)).join(' / ')} % |`,
  );
}
console.log(out.join('\n'));
