/**
 * Balancing in virtual time: the balancer policies and the clairvoyant oracle (the worker
 * whose engine holds the longest cached prefix, ignoring load) on prefix-sharing traffic —
 * the Mooncake trace, generated traces of its format (multi-turn chat, RAG, one hot system
 * prompt) — and on the Azure conversation trace, which shares nothing. Each run is the
 * gateway's real core on a VirtualClock in front of 4 SIMULATED workers (the engine simulator's
 * model, prefix cache included) already up, min = max = 4 (the autoscaler never acts).
 * Replaces the "Virtual-time simulation" section of bench/results/balancing.md; every run's
 * numbers go to bench/results/balancing-sim.json.
 *
 *   npx vite-node bench/balancing-sim.ts [--only mooncake,seeds,generated,hot,conv,multi-turn] [--skip ...] [--resume]
 *
 * With --only, the other sections are rendered from the numbers already in the JSON file; with
 * --resume, every run the JSON file already holds is taken from it (a run stopped half-way goes
 * on where it stopped); --skip leaves sections out of the run and the report.
 *
 * TTFT = gateway queue wait + time to the engine's first token; e2e = to the last token;
 * throughput = completed requests / time until the last one ended; cache hit rate = prompt
 * tokens found in the engines' prefix caches / prompt tokens looked up; imbalance = Σ max ÷
 * Σ mean in flight per worker over samples every 100 ms; idle-while-queued = share of those
 * samples where a worker had nothing in flight while another's engine had requests waiting.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { SimulationResult } from '../src/sim/cluster/run.js';
import { readTrace, type TraceRequest } from '../src/sim/cluster/trace.js';
import { multiTurnWorkload, traceWorkload, type SimWorkload } from '../src/sim/cluster/workload.js';
import {
  CHAT_DEFAULTS,
  HOT_PREFIX_DEFAULTS,
  RAG_DEFAULTS,
  chatTrace,
  hotPrefixTrace,
  ragTrace,
} from '../src/sim/workloads/prefix-traces.js';
import {
  convTenMinutes,
  MOONCAKE_LOADS,
  MOONCAKE_TRACE,
  MULTI_TURN,
  PROFILES,
  simulateFleet,
  type ProfileName,
} from './lib/balancing-workloads.js';

const ROOT = resolve(import.meta.dirname, '..');
const MD = resolve(ROOT, 'bench/results/balancing.md');
const RAW = resolve(ROOT, 'bench/results/balancing-sim.json');
const BEGIN = '<!-- virtual-time:begin (written by npx vite-node bench/balancing-sim.ts) -->';
const END = '<!-- virtual-time:end -->';

const ORACLE = 'oracle';
/** prefix-hash with session-affinity's load factor instead of its own 1: the other side of its trade-off. */
const PH_125 = 'prefix-hash c=1.25';
/** Rows that are a policy with other options: the flags that make them. */
const VARIANTS: Record<string, readonly string[]> = {
  [PH_125]: ['--load_balancer', 'prefix-hash', '--prefix_hash_load_factor', '1.25'],
};
/** The six policies compared, prefix-hash's variant, and the yardstick. */
const POLICIES = [
  'least-connection',
  'power-of-two',
  'session-affinity',
  'prefix-cache',
  'prefix-hash',
  PH_125,
  'engine-load',
  ORACLE,
] as const;
const PREFIX_AWARE = ['prefix-cache', 'prefix-hash'] as const;
/** The short list for the many-seed sections. */
const KEY_POLICIES = ['least-connection', 'prefix-cache', 'prefix-hash', ORACLE] as const;

/** What one run reports (a flat copy of the parts of SimulationResult the tables use). */
interface Outcome {
  readonly requests: number;
  readonly completed: number;
  readonly ttftP50: number;
  readonly ttftP99: number;
  readonly e2eP99: number;
  readonly reqPerSec: number;
  readonly hitRate: number;
  readonly imbalance: number;
  readonly idleWhileQueued: number;
  readonly prefillUtilisation: number;
}

const outcome = (r: SimulationResult): Outcome => ({
  requests: r.summary.requests,
  completed: r.summary.completed,
  ttftP50: r.summary.ttftS.p50 * 1000,
  ttftP99: r.summary.ttftS.p99 * 1000,
  e2eP99: r.summary.e2eS.p99 * 1000,
  reqPerSec: r.summary.completed / r.summary.durationS,
  hitRate: r.prefixCache.hitRate,
  imbalance: r.balance.imbalance,
  idleWhileQueued: r.balance.idleWhileQueued,
  prefillUtilisation: r.prefillUtilisation,
});

interface Spec {
  readonly workload: () => Promise<SimWorkload> | SimWorkload;
  readonly profile: ProfileName;
  readonly policy: string;
  readonly seed: number;
}

const { values } = parseArgs({
  options: { only: { type: 'string' }, skip: { type: 'string' }, resume: { type: 'boolean' } },
});
const only = values.only?.split(',');
const skip = new Set(values.skip?.split(',') ?? []);
const stored: Record<string, Outcome> = existsSync(RAW)
  ? (JSON.parse(readFileSync(RAW, 'utf8')) as { runs: Record<string, Outcome> }).runs
  : {};
const results: Record<string, Outcome> = {};
let runs = 0;
const started = performance.now();

/** Runs one simulation (or takes it from the JSON file when its section is not being rerun). */
async function run(section: string, id: string, spec: Spec): Promise<Outcome> {
  const key = `${section}/${id}/${spec.profile}/${spec.policy}/seed ${spec.seed}`;
  const old = stored[key];
  if (only && !only.includes(section)) {
    if (!old) throw new Error(`no stored result for ${key}: rerun with --only ${section}`);
    return (results[key] = old);
  }
  if (values.resume && old) return (results[key] = old);
  const p = PROFILES[spec.profile];
  const flags: string[] = [];
  if (spec.policy in VARIANTS) flags.push(...VARIANTS[spec.policy]!);
  else if (spec.policy !== ORACLE) flags.push('--load_balancer', spec.policy);
  if (p.prefixTreeMaxChars !== undefined) flags.push('--prefix_tree_max_chars', `${p.prefixTreeMaxChars}`);
  const r = await simulateFleet({
    workload: await spec.workload(),
    profile: p.profile,
    flags,
    oracle: spec.policy === ORACLE,
    seed: spec.seed,
  });
  runs++;
  const o = outcome(r);
  console.log(key, JSON.stringify(o));
  results[key] = o;
  // Kept as it goes: a long run stopped half-way keeps what it measured (rerun the rest with --only).
  stored[key] = o;
  writeFileSync(RAW, JSON.stringify({ node: process.version, runs: stored }, null, 2) + '\n');
  return o;
}

// ---------------------------------------------------------------- formatting

const ms = (x: number): string => (x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : x.toFixed(0));
const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}×`;
const mark = (ok: boolean): string => (ok ? 'met' : '**missed**');

function table(rows: readonly { policy: string; o: Outcome }[]): string {
  const head =
    '| policy | TTFT p50 (ms) | TTFT p99 (ms) | e2e p99 (ms) | req/s | hit rate | imbalance | idle while queued | prefill util. |\n' +
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |';
  const body = rows.map(({ policy, o }) => {
    const failed = o.requests - o.completed;
    const cells = [
      failed > 0 ? `${policy} (${failed} failed)` : policy,
      ms(o.ttftP50),
      ms(o.ttftP99),
      ms(o.e2eP99),
      o.reqPerSec.toFixed(2),
      pct(o.hitRate),
      o.imbalance.toFixed(2),
      pct(o.idleWhileQueued),
      o.prefillUtilisation.toFixed(2),
    ];
    return `| ${cells.join(' | ')} |`;
  });
  return [head, ...body].join('\n');
}

/** The targets on one set of rows: the best prefix-aware policy against least-connection and the oracle. */
function verdict(rows: readonly { policy: string; o: Outcome }[]): {
  best: string;
  p50: number;
  p99: number;
  hitGap: number;
  text: string;
} {
  const by = (p: string): Outcome => rows.find((r) => r.policy === p)!.o;
  const lc = by('least-connection');
  const oracle = by(ORACLE);
  const best = [...PREFIX_AWARE].sort((a, b) => by(a).ttftP50 - by(b).ttftP50)[0]!;
  const b = by(best);
  const p50 = b.ttftP50 / lc.ttftP50;
  const p99 = b.ttftP99 / lc.ttftP99;
  const hitGap = oracle.hitRate - b.hitRate;
  const text =
    `best prefix-aware: **${best}**, TTFT p50 ${ratio(b.ttftP50, lc.ttftP50)} least-connection's ` +
    `(target ≤ 0.5×: ${mark(p50 <= 0.5)}), p99 ${ratio(b.ttftP99, lc.ttftP99)} (target ≤ 1×: ${mark(p99 <= 1)}), ` +
    `hit rate ${pct(b.hitRate)} vs the oracle's ${pct(oracle.hitRate)} (target within 10 points: ${mark(hitGap <= 0.1)})`;
  return { best, p50, p99, hitGap, text };
}

const rowsOf = async (
  section: string,
  id: string,
  base: Omit<Spec, 'policy'>,
  policies: readonly string[] = POLICIES,
): Promise<{ policy: string; o: Outcome }[]> => {
  const rows: { policy: string; o: Outcome }[] = [];
  for (const policy of policies) rows.push({ policy, o: await run(section, id, { ...base, policy }) });
  return rows;
};

// ---------------------------------------------------------------- the runs

const mooncake = await readTrace(MOONCAKE_TRACE);
const mooncakeAt = (scale: number) => () => traceWorkload(mooncake, scale, 'mooncake-synthetic.jsonl');
const out: string[] = [];

// 1. The Mooncake trace, both engine profiles, two offered loads each, every policy.
const mooncakeVerdicts: string[] = [];
if (!skip.has('mooncake')) {
  out.push(`### Mooncake trace (\`mooncake-synthetic.jsonl\`, 3,993 requests, mean prompt 15.3k tokens)

Two engine profiles (\`bench/lib/balancing-workloads.ts\`): **gpu**, the simulator's default, where
the prefix cache is what of the 440k-token KV cache running requests leave free; **offload**, the
same with 2M tokens of host memory behind it (LMCache-style KV offload, loaded back at PCIe
speed). Loads are time scales of the trace: near saturation is the highest step of 0.05 at which
least-connection still answers every request (the next step times requests out).`);
  for (const profile of ['gpu', 'offload'] as const) {
    for (const [load, scale] of Object.entries(MOONCAKE_LOADS[profile])) {
      const label = load === 'moderate' ? 'moderate' : 'near saturation';
      const rows = await rowsOf('mooncake', `x${scale}`, { workload: mooncakeAt(scale), profile, seed: 1 });
      const v = verdict(rows);
      mooncakeVerdicts.push(`${profile}, ${label}: ${v.text}`);
      out.push(`#### ${profile}, ${label} (×${scale}: ${(mooncake.length / (mooncake.at(-1)!.arrivalMs / 1000 / scale)).toFixed(2)} req/s)

${table(rows)}

${v.text}.`);
    }
  }
}

// 2. The same trace near saturation with other seeds (the balancers' tie-breaks and draws).
const seedLines: string[] = [];
if (!skip.has('seeds')) {
  for (const profile of ['gpu', 'offload'] as const) {
    for (const [load, scale] of Object.entries(MOONCAKE_LOADS[profile]).filter(([l]) => l === 'saturated')) {
      for (const seed of [2, 3]) {
        const rows = await rowsOf('seeds', `x${scale}`, { workload: mooncakeAt(scale), profile, seed }, KEY_POLICIES);
        seedLines.push(seedRow(`Mooncake ×${scale}`, profile, load, seed, rows));
      }
    }
  }
}

// 3. Generated Mooncake-format traces: multi-turn chat and RAG, three seeds, two loads.
const GENERATED = {
  chat: {
    make: (seed: number): TraceRequest[] => chatTrace({ ...CHAT_DEFAULTS, seed }),
    loads: { moderate: 1.5, saturated: 3 },
  },
  rag: {
    make: (seed: number): TraceRequest[] => ragTrace({ ...RAG_DEFAULTS, seed }),
    loads: { moderate: 1.5, saturated: 3 },
  },
} as const;
const generatedLines: string[] = [];
if (!skip.has('generated')) {
  for (const [name, g] of Object.entries(GENERATED)) {
    for (const seed of [1, 2, 3]) {
      const trace = g.make(seed);
      // Both loads for the first seed, near saturation for the others.
      for (const [load, scale] of Object.entries(g.loads).filter(([l]) => seed === 1 || l === 'saturated')) {
        const rows = await rowsOf(
          'generated',
          `${name} x${scale}`,
          { workload: () => traceWorkload(trace, scale, `${name}.jsonl`), profile: 'gpu', seed },
          KEY_POLICIES,
        );
        generatedLines.push(seedRow(`${name} ×${scale}`, 'gpu', load, seed, rows));
      }
    }
  }
}

function seedRow(
  workload: string,
  profile: string,
  load: string,
  seed: number,
  rows: readonly { policy: string; o: Outcome }[],
): string {
  const by = (p: string): Outcome => rows.find((r) => r.policy === p)!.o;
  const v = verdict(rows);
  const cells = [
    workload,
    profile,
    load === 'moderate' ? 'moderate' : 'near sat.',
    seed,
    `${ms(by('least-connection').ttftP50)} / ${ms(by('least-connection').ttftP99)}`,
    `${ms(by('prefix-cache').ttftP50)} / ${ms(by('prefix-cache').ttftP99)}`,
    `${ms(by('prefix-hash').ttftP50)} / ${ms(by('prefix-hash').ttftP99)}`,
    `${v.p50.toFixed(2)} / ${v.p99.toFixed(2)}`,
    `${pct(by('least-connection').hitRate)} / ${pct(by('prefix-cache').hitRate)} / ${pct(by('prefix-hash').hitRate)} / ${pct(by(ORACLE).hitRate)}`,
    v.p50 <= 0.5 && v.p99 <= 1 && v.hitGap <= 0.1 ? 'all met' : missedList(v),
  ];
  return `| ${cells.join(' | ')} |`;
}

function missedList(v: { p50: number; p99: number; hitGap: number }): string {
  const m: string[] = [];
  if (v.p50 > 0.5) m.push('p50');
  if (v.p99 > 1) m.push('p99');
  if (v.hitGap > 0.1) m.push('hit rate');
  return `missed: ${m.join(', ')}`;
}

const SEED_HEAD =
  '| trace | profile | load | seed | least-connection TTFT p50 / p99 (ms) | prefix-cache | prefix-hash | best ÷ least-connection, p50 / p99 | hit rate: LC / PC / PH / oracle | targets |\n' +
  '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |';

if (seedLines.length + generatedLines.length > 0)
  out.push(`### The same targets on other draws and other prefix-sharing shapes

Mooncake near saturation with other seeds (the balancers' tie-breaks and draws), and generated
traces of the Mooncake format (\`src/sim/workloads/prefix-traces.ts\`), three seeds each (both
loads for the first, near saturation for the others): **chat** — multi-turn
sessions under a shared 1,024-token system prompt, 2–10 turns, each resending its history
(${CHAT_DEFAULTS.sessions} sessions; 2.2 req/s at ×1); **rag** — a 512-token system prompt, one of 400
documents of 1k–12k tokens drawn Zipf(0.9), a question of its own (3 req/s at ×1). Their
loads were set as Mooncake's (least-connection's prefill utilisation ~0.4 and ~0.75; for chat
near saturation is the gateway's 120 slots filling). The gpu profile; the best prefix-aware policy
is the one with the lower TTFT p50.

${SEED_HEAD}
${[...seedLines, ...generatedLines].join('\n')}`);

// 4. One hot system prompt: the hot-spot test.
const hotRows: string[] = [];
if (!skip.has('hot')) {
  for (const scale of [1, 2, 4]) {
    const trace = hotPrefixTrace({ ...HOT_PREFIX_DEFAULTS, seed: 1 });
    const rows = await rowsOf('hot', `x${scale}`, {
      workload: () => traceWorkload(trace, scale, 'hot-prefix.jsonl'),
      profile: 'gpu',
      seed: 1,
    });
    hotRows.push(`#### ${HOT_PREFIX_DEFAULTS.ratePerSecond * scale} req/s

${table(rows)}

prefix-cache imbalance ${rows.find((r) => r.policy === 'prefix-cache')!.o.imbalance.toFixed(2)}, prefix-hash ${rows.find((r) => r.policy === 'prefix-hash')!.o.imbalance.toFixed(2)} (target ≤ 1.5: ${mark(PREFIX_AWARE.every((p) => rows.find((r) => r.policy === p)!.o.imbalance <= 1.5))}).`);
  }
  out.push(`### One hot system prompt (the hot-spot test)

${HOT_PREFIX_DEFAULTS.requests.toLocaleString('en')} requests (\`hotPrefixTrace\`): 80% are one 2,048-token system prompt and a user turn of
20–400 tokens, the rest 200–4,000 tokens sharing nothing; Poisson arrivals at three rates.

${hotRows.join('\n\n')}`);
}

// 5. The Azure conversation trace: nothing shared.
const conv = await convTenMinutes();
if (!skip.has('conv')) {
  const convParts: string[] = [];
  for (const [load, scale] of Object.entries({ moderate: 2, saturated: 3 })) {
    const rows = await rowsOf('conv', `x${scale}`, {
      workload: () => traceWorkload(conv, scale, 'azure-llm-2023-conv.csv'),
      profile: 'gpu',
      seed: 1,
    });
    const lc = rows.find((r) => r.policy === 'least-connection')!.o;
    // The target is that prefix routing costs nothing here: at most 5% slower (faster is no miss).
    const within = (o: Outcome): boolean => o.ttftP50 / lc.ttftP50 <= 1.05 && o.ttftP99 / lc.ttftP99 <= 1.05;
    const lines = PREFIX_AWARE.map((p) => {
      const o = rows.find((r) => r.policy === p)!.o;
      const sign = (x: number): string => `${x >= 1 ? '+' : '−'}${Math.abs((x - 1) * 100).toFixed(1)}%`;
      return `${p} TTFT p50 ${sign(o.ttftP50 / lc.ttftP50)}, p99 ${sign(o.ttftP99 / lc.ttftP99)} against least-connection (target at most 5% over: ${mark(within(o))})`;
    });
    convParts.push(`#### ${load === 'moderate' ? 'moderate' : 'near saturation'} (×${scale})

${table(rows)}

${lines.join('; ')}.`);
  }
  out.push(`### Azure conversation trace (nothing shared)

Minutes 10–20 of \`azure-llm-2023-conv.csv\` (${conv.length.toLocaleString('en')} requests; Patel et al., "Splitwise", ISCA 2024, CC-BY 4.0), each
prompt unique text of its row's length: prefix routing can only cost here. Near saturation is
the gateway's slots filling (×3.5 queued for seconds).

${convParts.join('\n\n')}`);
}

// 6. The multi-turn workload of the live run.
if (!skip.has('multi-turn')) {
  const mtRows = await rowsOf('multi-turn', 'live sessions', {
    workload: () => multiTurnWorkload(MULTI_TURN),
    profile: 'gpu',
    seed: MULTI_TURN.seed,
  });
  out.push(`### Multi-turn chat, the live run's sessions (${MULTI_TURN.sessions} sessions at ${MULTI_TURN.sessionsPerSecond}/s, closed loop, session key in \`user\`)

${table(mtRows)}`);
}

// ---------------------------------------------------------------- write

const wallS = (performance.now() - started) / 1000;
// Only the runs this report shows.
writeFileSync(RAW, JSON.stringify({ node: process.version, runs: results }, null, 2) + '\n');
const section = `${BEGIN}
## Virtual-time simulation

The gateway's real core — Admission, WorkerPool, the balancer — on a virtual clock in front of
4 SIMULATED workers running the engine simulator's model, min = max = 4, capacity 30, every
request with its prompt text (and session key where the workload has one), its engine with the
prompt's 16-token block hashes. **oracle** is not a policy: it reads every engine's prefix cache
and picks the worker holding the longest cached prefix, ignoring load — the hit-rate yardstick.
No machine noise: the same seed gives the same numbers.

Columns: TTFT (gateway queue + prefill) p50 and p99, e2e p99, throughput, prefix-cache hit rate
(prompt tokens found cached ÷ looked up), imbalance (Σ busiest worker's in flight ÷ Σ mean in
flight per worker, sampled every 100 ms: 1.00 is even), idle while queued (share of samples in
which a worker had nothing in flight while another's engine had requests waiting), prefill
utilisation (engine time spent prefilling ÷ worker time).

Command (${runs} runs${only ? ` of sections ${only.join(', ')}; the rest from the JSON file` : ''}${values.resume ? ' in this pass, the rest taken from the JSON file, where earlier passes of the same command stored them' : ''}, ${wallS.toFixed(0)} s of wall time on a shared 2-core machine; numbers in \`balancing-sim.json\`):

    npx vite-node bench/balancing-sim.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}

Rows by hand (Mooncake near saturation; the first with prefix-cache on the gpu profile, the
second the oracle on the offload profile):

    node dist/cli/flockserve.js simulate --trace ../shared/traces/mooncake-synthetic.jsonl --time-scale ${MOONCAKE_LOADS.gpu.saturated} \\
      --min_workers 4 --max_workers 4 --seed 1 --load_balancer prefix-cache
    node dist/cli/flockserve.js simulate --trace ../shared/traces/mooncake-synthetic.jsonl --time-scale ${MOONCAKE_LOADS.offload.saturated} \\
      --min_workers 4 --max_workers 4 --seed 1 --offload_cache_tokens 2000000 --prefix_tree_max_chars 10000000 --oracle

Targets at a glance (Mooncake):

${mooncakeVerdicts.map((v) => `- ${v}`).join('\n')}

${out.join('\n\n')}
${END}`;

const existing = existsSync(MD) ? readFileSync(MD, 'utf8') : '';
const [head = existing, rest] = existing.split(BEGIN);
const tail = rest === undefined ? '' : rest.slice(rest.indexOf(END) + END.length);
writeFileSync(MD, `${head.trimEnd()}\n\n${section}${tail.trim() === '' ? '\n' : tail}`);
console.log(section);
