/**
 * Live balancing benchmark: each --load_balancer policy in front of 4 engine-simulator
 * processes (static provisioner), on traffic that shares prefixes — a slice of the Mooncake
 * trace, one hot system prompt, the multi-turn chat workload — and on traffic that shares
 * nothing (a slice of the Azure LLM conversation trace). Fresh simulators and gateway per run,
 * so every policy starts with cold caches; policies run in rounds (each round every policy
 * once, in a rotated order), so a change in the machine's load spreads over all of them, and
 * each row records the load average it ran under. Beside every workload, the clairvoyant
 * oracle's hit rate on the same requests and engines in virtual time: the bound routing could
 * reach. Writes the `live` section (or --section NAME, for a repeat beside it) of
 * bench/results/balancing.md and bench/results/balancing.raw.json (or --out FILE).
 *
 *   npx tsc -p tsconfig.build.json && npx vite-node bench/balancing.ts --mode short   # ~12 min
 *   npx tsc -p tsconfig.build.json && npx vite-node bench/balancing.ts --mode full    # ~2 h
 *     [--policies a,b] [--workloads mooncake,hot,multi-turn,conv] [--rounds N] [--section NAME] [--out FILE]
 *
 * Measured at the client (streaming completions): TTFT = time to the first SSE event (the
 * simulator sends it with the first token), end-to-end = time to the end of the stream. Cache
 * hit rate = prompt tokens served from the simulators' prefix caches
 * (vllm:prefix_cache_hits / vllm:prefix_cache_queries over all 4 workers). Imbalance = Σ max ÷
 * Σ mean requests held per worker (running + waiting, from each simulator's /metrics every
 * 250 ms); idle while queued = share of those samples in which a worker held nothing while
 * another had requests waiting.
 */
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { readTrace, type TraceRequest } from '../src/sim/cluster/trace.js';
import { multiTurnWorkload, traceWorkload, type SimWorkload } from '../src/sim/cluster/workload.js';
import type { EngineProfile } from '../src/sim/engine-model.js';
import {
  chatMessages,
  multiTurnSessions,
  type ChatMessage,
  type MultiTurnOptions,
} from '../src/sim/workloads/multi-turn.js';
import { HOT_PREFIX_DEFAULTS, hotPrefixTrace } from '../src/sim/workloads/prefix-traces.js';
import { tracePrompt } from '../src/sim/workloads/trace-prompts.js';
import { startGateway, startSim } from './lib/fleet.mjs';
import { ROOT } from './lib/procs.mjs';
import { writeSection } from './lib/sections.mjs';
import {
  CONV,
  FAST_ENGINES,
  MOONCAKE_LIVE,
  MOONCAKE_LOADS,
  MOONCAKE_TRACE,
  MULTI_TURN,
  WORKERS,
  convSlice,
  simulateFleet,
  traceSlice,
} from './lib/balancing-workloads.js';

const agent = new Agent({ connections: 512, keepAliveTimeout: 30_000 });

const PREFIX_AWARE = ['prefix-cache', 'prefix-hash'];
/** Every policy of the full run; the short one keeps the ones the comparison turns on. */
const ALL_POLICIES = [
  'least-connection',
  'round-robin',
  'power-of-two',
  'session-affinity',
  'prefix-cache',
  'prefix-hash',
  'engine-load',
];

/**
 * The two sizes of the run. full: the Mooncake slice of 5 minutes from minute 10 (1,215
 * requests; the trace's first minutes are mostly new sessions, later ones mostly continue them)
 * at both offered loads, the hot prompt for 3 minutes, 60 chat sessions, a minute of the conv
 * trace, 2 rounds. short: the same shapes cut to a minute or two each, the Mooncake slice at the
 * moderate load only (the lighter one for a busy machine), one round, five policies: a check
 * that it all runs and a first look at the differences.
 */
const MODES = {
  full: {
    policies: ALL_POLICIES,
    rounds: 2,
    mooncakeSeconds: MOONCAKE_LIVE.fullSeconds,
    mooncakeLoads: ['moderate', 'saturated'] as const,
    hotSeconds: 180,
    multiTurn: MULTI_TURN as Partial<MultiTurnOptions>,
    convSeconds: CONV.seconds,
  },
  short: {
    policies: ['least-connection', 'round-robin', 'session-affinity', 'prefix-cache', 'prefix-hash'],
    rounds: 1,
    mooncakeSeconds: MOONCAKE_LIVE.shortSeconds,
    mooncakeLoads: ['moderate'] as const,
    hotSeconds: 60,
    multiTurn: { ...MULTI_TURN, sessions: 30 } as Partial<MultiTurnOptions>,
    convSeconds: 30,
  },
} as const;
type Mode = keyof typeof MODES;

/** The hot-prompt trace's rate, ×2 its default (8 req/s): the middle of the virtual-time run's three. */
const HOT_SCALE = 2;

interface Sample {
  readonly ttftMs: number;
  readonly e2eMs: number;
  readonly outputTokens: number;
  readonly startMs: number;
  readonly endMs: number;
}

interface Row {
  readonly policy: string;
  readonly round: number;
  readonly requests: number;
  readonly errors: number;
  readonly ttftP50: number;
  readonly ttftP99: number;
  readonly e2eP99: number;
  readonly reqPerSec: number;
  readonly hitRate: number;
  readonly imbalance: number;
  readonly idleWhileQueued: number;
  /** The machine's 1-minute load average at the end of the run. */
  readonly loadAvg: number;
}

// ---------------------------------------------------------------- the fleet

interface Cluster {
  readonly url: string;
  readonly workerUrls: readonly string[];
  close(): Promise<void>;
}

/** startCluster, tried up to 3 times: on a machine this busy a gateway may take longer than its start timeout. */
async function startClusterRetrying(policy: string, simArgs: readonly string[]): Promise<Cluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startCluster(policy, simArgs);
    } catch (err) {
      if (attempt === 3) throw err;
      console.warn(`starting the fleet for ${policy} failed (${(err as Error).message.split('\n')[0]}); again`);
    }
  }
}

async function startCluster(policy: string, simArgs: readonly string[]): Promise<Cluster> {
  const started = await Promise.allSettled(
    Array.from({ length: WORKERS }, (_, i) => startSim(['--seed', String(i), ...simArgs])),
  );
  const sims = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.all(sims.map((s) => s.stop()));
    throw failed.reason;
  }
  const gateway = await startGateway({
    workers: sims,
    startTimeoutMs: 120_000,
    args: [
      ...['--min_workers', String(WORKERS), '--max_workers', String(WORKERS)],
      ...['--status_log_interval', '0', '--worker_probe_interval', '0.2', '--seed', '1', '--load_balancer', policy],
    ],
  }).catch(async (err: unknown) => {
    await Promise.all(sims.map((s) => s.stop()));
    throw err;
  });
  return {
    url: gateway.url,
    workerUrls: sims.map((s) => s.url),
    close: async () => {
      await gateway.stop();
      await Promise.all(sims.map((s) => s.stop()));
    },
  };
}

/** One value per worker: the first sample of `metric` on its /metrics. */
async function scrape(workerUrls: readonly string[], metrics: readonly string[]): Promise<number[][]> {
  return Promise.all(
    workerUrls.map(async (u) => {
      const text = await (await request(`${u}/metrics`, { dispatcher: agent })).body.text();
      return metrics.map((m) => Number(new RegExp(`^${m}\\S* (\\S+)`, 'm').exec(text)?.[1] ?? 0));
    }),
  );
}

/** Σ hits / Σ queries of the prefix-cache counters on every worker's /metrics. */
async function cacheHitRate(workerUrls: readonly string[]): Promise<number> {
  const per = await scrape(workerUrls, ['vllm:prefix_cache_hits_total', 'vllm:prefix_cache_queries_total']);
  const hits = per.reduce((n, [h]) => n + h!, 0);
  const queries = per.reduce((n, [, q]) => n + q!, 0);
  return queries === 0 ? 0 : hits / queries;
}

/** Samples the workers' load every 250 ms until stopped: Σ max ÷ Σ mean held, and how often one idled while another queued. */
function sampleBalance(workerUrls: readonly string[]): () => Promise<{ imbalance: number; idleWhileQueued: number }> {
  let sumMax = 0;
  let sumMean = 0;
  let samples = 0;
  let idleQueued = 0;
  let on = true;
  const loop = (async () => {
    while (on) {
      const loads = await scrape(workerUrls, ['vllm:num_requests_running', 'vllm:num_requests_waiting']).catch(
        () => undefined,
      );
      if (loads) {
        const held = loads.map(([running, waiting]) => running! + waiting!);
        const total = held.reduce((a, b) => a + b, 0);
        if (total > 0) {
          samples++;
          sumMax += Math.max(...held);
          sumMean += total / held.length;
          if (held.some((h) => h === 0) && loads.some(([, waiting]) => waiting! > 0)) idleQueued++;
        }
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return async () => {
    on = false;
    await loop;
    return {
      imbalance: sumMean === 0 ? 1 : sumMax / sumMean,
      idleWhileQueued: samples === 0 ? 0 : idleQueued / samples,
    };
  };
}

// ---------------------------------------------------------------- one request

/** Sends one streaming request; resolves with its timings and the generated text. */
async function stream(
  url: string,
  body: Record<string, unknown>,
  maxTokens: number,
  t0: number,
): Promise<{ sample: Sample; reply: string }> {
  const start = performance.now();
  const res = await request(url, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.statusCode !== 200) {
    const text = await res.body.text();
    throw new Error(`status ${res.statusCode}: ${text.slice(0, 200)}`);
  }
  let first = -1;
  let buffered = '';
  let reply = '';
  for await (const chunk of res.body) {
    if (first < 0) first = performance.now();
    buffered += (chunk as Buffer).toString();
    let cut: number;
    while ((cut = buffered.indexOf('\n\n')) >= 0) {
      const event = buffered.slice(0, cut);
      buffered = buffered.slice(cut + 2);
      const data = event.startsWith('data: ') ? event.slice(6) : '';
      if (data === '' || data === '[DONE]') continue;
      const parsed = JSON.parse(data) as {
        choices?: { delta?: { content?: string }; text?: string }[];
        error?: unknown;
      };
      if (parsed.error) throw new Error(`stream error: ${JSON.stringify(parsed.error)}`);
      reply += parsed.choices?.[0]?.delta?.content ?? parsed.choices?.[0]?.text ?? '';
    }
  }
  const end = performance.now();
  return {
    sample: {
      ttftMs: first - start,
      e2eMs: end - start,
      outputTokens: maxTokens,
      startMs: start - t0,
      endMs: end - t0,
    },
    reply,
  };
}

// ---------------------------------------------------------------- workloads

type Driver = (url: string) => Promise<{ samples: Sample[]; errors: number }>;

interface LiveWorkload {
  readonly name: string;
  readonly title: string;
  /** Whether requests share prefixes (the targets differ: beat least-connection, or lose nothing to it). */
  readonly shared: boolean;
  /** Flags of every simulator; `profile` is the same engines for the virtual-time oracle. */
  readonly simArgs: readonly string[];
  readonly profile: Partial<EngineProfile>;
  readonly drive: Driver;
  /** The same requests for the virtual-time oracle. */
  readonly simulated: () => SimWorkload;
}

/** Closed loop per session: turn k+1 goes once turn k's reply is back and its think time has passed. */
function multiTurn(options: Partial<MultiTurnOptions>): Driver {
  return async (url) => {
    const sessions = multiTurnSessions(options);
    const samples: Sample[] = [];
    let errors = 0;
    const t0 = performance.now();
    await Promise.all(
      sessions.map(async (s) => {
        await sleepUntil(t0 + s.startMs);
        const replies: string[] = [];
        for (let t = 0; t < s.turns.length; t++) {
          const turn = s.turns[t]!;
          await new Promise((r) => setTimeout(r, turn.thinkMs));
          const messages: readonly ChatMessage[] = chatMessages(s, t, replies);
          const body = { model: 'sim', messages, max_tokens: turn.maxTokens, stream: true, user: s.id };
          try {
            const { sample, reply } = await stream(`${url}/v1/chat/completions`, body, turn.maxTokens, t0);
            samples.push(sample);
            replies.push(reply);
          } catch {
            errors++;
            return; // a session whose turn failed stops, as a user would
          }
        }
      }),
    );
    return { samples, errors };
  };
}

/**
 * Open loop at a trace's arrival times ÷ `scale`; each prompt synthesised from its block ids as
 * the simulation does (unique text of its length where the trace has no ids).
 */
function replay(rows: readonly TraceRequest[], scale: number): Driver {
  return async (url) => {
    const samples: Sample[] = [];
    let errors = 0;
    const t0 = performance.now();
    await Promise.all(
      rows.map(async (r) => {
        await sleepUntil(t0 + r.arrivalMs / scale);
        const maxTokens = Math.max(1, r.outputTokens);
        const body = { model: 'sim', prompt: tracePrompt(r), max_tokens: maxTokens, stream: true };
        try {
          samples.push((await stream(`${url}/v1/completions`, body, maxTokens, t0)).sample);
        } catch {
          errors++;
        }
      }),
    );
    return { samples, errors };
  };
}

function sleepUntil(at: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, at - performance.now())));
}

async function workloadsOf(mode: Mode): Promise<Record<string, LiveWorkload[]>> {
  const m = MODES[mode];
  const mooncake = traceSlice(await readTrace(MOONCAKE_TRACE), MOONCAKE_LIVE.fromSeconds, m.mooncakeSeconds);
  const hot = traceSlice(hotPrefixTrace({ ...HOT_PREFIX_DEFAULTS, seed: 1 }), 0, m.hotSeconds * HOT_SCALE);
  const conv = await convSlice(m.convSeconds);
  const fast = { simArgs: FAST_ENGINES.simArgs, profile: FAST_ENGINES.profile };
  const defaults = { simArgs: [], profile: {} };
  return {
    mooncake: m.mooncakeLoads.map((load) => {
      // The virtual-time run's time scale, and the engines' speed-up on top.
      const scale = MOONCAKE_LOADS.gpu[load] * FAST_ENGINES.speedup;
      return {
        name: `mooncake-${load}`,
        title:
          `Mooncake, ${m.mooncakeSeconds} s of the trace from minute ${MOONCAKE_LIVE.fromSeconds / 60} (${mooncake.length} requests, mean prompt ` +
          `${Math.round(mooncake.reduce((n, r) => n + r.promptTokens, 0) / mooncake.length).toLocaleString('en')} tokens), ` +
          `${load === 'moderate' ? 'moderate load' : 'near saturation'}: the virtual-time run's ×${MOONCAKE_LOADS.gpu[load]} with ` +
          `${FAST_ENGINES.speedup}× faster engines and arrivals (${((mooncake.length / m.mooncakeSeconds) * scale).toFixed(1)} req/s)`,
        shared: true,
        ...fast,
        drive: replay(mooncake, scale),
        simulated: () => traceWorkload(mooncake, scale, 'mooncake slice'),
      };
    }),
    hot: [
      {
        name: 'hot',
        title:
          `One hot system prompt (the hot-spot test): 80% of requests one 2,048-token system prompt and a short user turn, ` +
          `the rest 200–4,000 tokens sharing nothing, ${HOT_PREFIX_DEFAULTS.ratePerSecond * HOT_SCALE} req/s for ${m.hotSeconds} s (${hot.length} requests)`,
        shared: true,
        ...defaults,
        drive: replay(hot, HOT_SCALE),
        simulated: () => traceWorkload(hot, HOT_SCALE, 'hot prefix'),
      },
    ],
    'multi-turn': [
      {
        name: 'multi-turn',
        title:
          `Multi-turn chat: ${m.multiTurn.sessions} sessions starting at ${m.multiTurn.sessionsPerSecond}/s, 4–8 turns, ` +
          'one shared 1,000-token system prompt, each turn resending the history with the real replies, session id in `user`',
        shared: true,
        ...defaults,
        drive: multiTurn(m.multiTurn),
        simulated: () => multiTurnWorkload(m.multiTurn),
      },
    ],
    conv: [
      {
        name: 'conv',
        title:
          `Azure conversation trace, nothing shared: ${m.convSeconds} s from minute ${CONV.fromSeconds / 60} replayed ${CONV.speedup}× faster ` +
          `(${conv.length} requests, ${((conv.length / m.convSeconds) * CONV.speedup).toFixed(1)} req/s), each prompt unique text of its row's length`,
        shared: false,
        ...defaults,
        drive: replay(conv, CONV.speedup),
        simulated: () => traceWorkload(conv, CONV.speedup, 'conv slice'),
      },
    ],
  };
}

// ---------------------------------------------------------------- runs and report

function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function runOne(policy: string, round: number, w: LiveWorkload): Promise<Row> {
  const cluster = await startClusterRetrying(policy, w.simArgs);
  try {
    const stopSampling = sampleBalance(cluster.workerUrls);
    const { samples, errors } = await w.drive(cluster.url);
    const balance = await stopSampling();
    const span = (Math.max(...samples.map((s) => s.endMs)) - Math.min(...samples.map((s) => s.startMs))) / 1000;
    const ttft = samples.map((s) => s.ttftMs);
    return {
      policy,
      round,
      requests: samples.length,
      errors,
      ttftP50: percentile(ttft, 50),
      ttftP99: percentile(ttft, 99),
      e2eP99: percentile(
        samples.map((s) => s.e2eMs),
        99,
      ),
      reqPerSec: samples.length / span,
      hitRate: await cacheHitRate(cluster.workerUrls),
      ...balance,
      loadAvg: loadavg()[0]!,
    };
  } finally {
    await cluster.close();
  }
}

interface Oracle {
  readonly hitRate: number;
  readonly ttftP50: number;
  readonly ttftP99: number;
}

/** The clairvoyant oracle on the same requests and engines, in virtual time. */
async function oracleOf(w: LiveWorkload): Promise<Oracle> {
  const r = await simulateFleet({ workload: w.simulated(), profile: w.profile, oracle: true, seed: 1 });
  return { hitRate: r.prefixCache.hitRate, ttftP50: r.summary.ttftS.p50 * 1000, ttftP99: r.summary.ttftS.p99 * 1000 };
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

function table(rows: readonly Row[], policies: readonly string[], oracle: Oracle): string {
  const head =
    '| policy | round | requests | errors | TTFT p50 (ms) | TTFT p99 (ms) | e2e p99 (ms) | req/s | cache hit rate | imbalance | idle while queued | load avg |\n' +
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |';
  const body = [...rows]
    .sort((a, b) => policies.indexOf(a.policy) - policies.indexOf(b.policy) || a.round - b.round)
    .map(
      (r) =>
        `| ${r.policy} | ${r.round} | ${r.requests} | ${r.errors} | ${r.ttftP50.toFixed(0)} | ${r.ttftP99.toFixed(0)} | ${r.e2eP99.toFixed(0)} | ${r.reqPerSec.toFixed(2)} | ${pct(r.hitRate)} | ${r.imbalance.toFixed(2)} | ${pct(r.idleWhileQueued)} | ${r.loadAvg.toFixed(1)} |`,
    );
  const yardstick = `| *oracle (virtual time)* | | | | ${oracle.ttftP50.toFixed(0)} | ${oracle.ttftP99.toFixed(0)} | | | ${pct(oracle.hitRate)} | | | |`;
  return [head, ...body, yardstick].join('\n');
}

/** A policy's rows averaged over rounds. */
function mean(rows: readonly Row[], policy: string): Row | undefined {
  const mine = rows.filter((r) => r.policy === policy);
  if (mine.length === 0) return undefined;
  const avg = (f: (r: Row) => number): number => mine.reduce((n, r) => n + f(r), 0) / mine.length;
  return {
    ...mine[0]!,
    ttftP50: avg((r) => r.ttftP50),
    ttftP99: avg((r) => r.ttftP99),
    e2eP99: avg((r) => r.e2eP99),
    hitRate: avg((r) => r.hitRate),
    imbalance: avg((r) => r.imbalance),
  };
}

/** The issue's targets on one workload, from the rows' means over rounds. */
function verdict(w: LiveWorkload, rows: readonly Row[], oracle: Oracle): string {
  const lc = mean(rows, 'least-connection');
  if (!lc) return 'least-connection did not run: no comparison.';
  const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}×`;
  const aware = PREFIX_AWARE.map((p) => mean(rows, p)).filter((r): r is Row => r !== undefined);
  if (!w.shared) {
    return aware
      .map((r) => {
        // Read as the summary reads it: at most 5% slower; faster is not a loss.
        const ok = r.ttftP50 / lc.ttftP50 <= 1.05 && r.ttftP99 / lc.ttftP99 <= 1.05;
        return `${r.policy}: TTFT p50 ${ratio(r.ttftP50, lc.ttftP50)}, p99 ${ratio(r.ttftP99, lc.ttftP99)} least-connection's (target at most 5% slower: ${ok ? 'met' : '**missed**'})`;
      })
      .join('; ');
  }
  const best = [...aware].sort((a, b) => a.ttftP50 - b.ttftP50)[0];
  if (!best) return 'no prefix-aware policy ran';
  const p50 = best.ttftP50 / lc.ttftP50;
  const p99 = best.ttftP99 / lc.ttftP99;
  const gap = oracle.hitRate - best.hitRate;
  const balance = aware.map((r) => `${r.policy} ${r.imbalance.toFixed(2)}`).join(', ');
  // The balance target is for traffic one prefix dominates; on a trace's mix it is reported, not judged.
  const balanced = aware.every((r) => r.imbalance <= 1.5) ? 'met' : '**missed**';
  const balanceVerdict = w.name.startsWith('mooncake') ? '' : ` (target ≤ 1.5: ${balanced})`;
  return (
    `best prefix-aware: **${best.policy}**, TTFT p50 ${ratio(best.ttftP50, lc.ttftP50)} least-connection's (target ≤ 0.5×: ${p50 <= 0.5 ? 'met' : '**missed**'}), ` +
    `p99 ${ratio(best.ttftP99, lc.ttftP99)} (target ≤ 1×: ${p99 <= 1 ? 'met' : '**missed**'}), hit rate ${pct(best.hitRate)} vs the oracle's ${pct(oracle.hitRate)} ` +
    `(target within 10 points: ${gap <= 0.1 ? 'met' : '**missed**'}); imbalance ${balance}${balanceVerdict}`
  );
}

// ---------------------------------------------------------------- main

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'short' },
    policies: { type: 'string' },
    workloads: { type: 'string' },
    rounds: { type: 'string' },
    out: { type: 'string' },
    section: { type: 'string', default: 'live' },
  },
});
if (!(values.mode! in MODES)) throw new Error(`--mode is short or full, got ${values.mode}`);
const mode = values.mode as Mode;
const policies = values.policies?.split(',') ?? [...MODES[mode].policies];
const rounds = Number(values.rounds ?? MODES[mode].rounds);
if (!(Number.isInteger(rounds) && rounds >= 1))
  throw new Error(`--rounds must be a whole number >= 1, got ${values.rounds}`);
const all = await workloadsOf(mode);
const workloads = (values.workloads?.split(',') ?? Object.keys(all)).flatMap((name) => {
  const found = all[name];
  if (!found) throw new Error(`unknown workload ${name}; one of ${Object.keys(all).join(', ')}`);
  return found;
});

const started = new Date();
const loadAtStart = loadavg()[0]!;
const oracles: Record<string, Oracle> = {};
for (const w of workloads) {
  oracles[w.name] = await oracleOf(w);
  console.log(w.name, 'oracle (virtual time)', JSON.stringify(oracles[w.name]));
}
const results: Record<string, Row[]> = {};
for (let round = 1; round <= rounds; round++) {
  for (const w of workloads) {
    results[w.name] ??= [];
    // Rotate the order each round, so no policy always runs first (or last) on a busy machine.
    const order = policies.map((_, i) => policies[(i + round - 1) % policies.length]!);
    for (const p of order) {
      const row = await runOne(p, round, w);
      results[w.name]!.push(row);
      console.log(w.name, JSON.stringify(row));
    }
    // Written after every workload, so a run stopped part-way keeps what it measured.
    report(workloads.filter((x) => results[x.name]));
  }
}
await agent.close();

function report(done: readonly LiveWorkload[]): void {
  const finished = new Date();
  const out = values.out ?? resolve(ROOT, 'bench/results/balancing.raw.json');
  writeFileSync(
    out,
    JSON.stringify({ date: started.toISOString(), mode, node: process.version, oracles, results }, null, 2) + '\n',
  );

  const flags = [
    `--mode ${mode}`,
    ...(values.policies ? [`--policies ${values.policies}`] : []),
    ...(values.workloads ? [`--workloads ${values.workloads}`] : []),
    ...(values.rounds ? [`--rounds ${values.rounds}`] : []),
    ...(values.section !== 'live' ? [`--section ${values.section}`] : []),
    ...(values.out ? [`--out ${values.out}`] : []),
  ];
  const loads = Object.values(results)
    .flat()
    .map((r) => r.loadAvg);
  const section = `## Live: 4 simulator processes behind the gateway (${mode} run, ${started.toISOString().slice(0, 16).replace('T', ' ')}–${finished.toISOString().slice(11, 16)} UTC)

Command: \`npx tsc -p tsconfig.build.json && npx vite-node bench/balancing.ts ${flags.join(' ')}\`

Wall-clock time on a 2-core machine shared with other work: 1-minute load average ${loadAtStart.toFixed(1)} at the start,
${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} at the ends of the runs (the last column). Compare within a table;
${rounds > 1 ? `policies ran in ${rounds} rounds, each round every policy once in a rotated order, and the verdicts use their means` : 'one round, so a single row per policy: differences of tens of percent in p99 can be the machine'}.
The oracle row is the clairvoyant yardstick on the same requests and engines in virtual time
(\`flockserve simulate --oracle\`): its hit rate is what routing alone could get; its latencies
are the engine model's without the machine.

${done.map((w) => `### ${w.title}\n\n${table(results[w.name]!, policies, oracles[w.name]!)}\n\n${verdict(w, results[w.name]!, oracles[w.name]!)}.`).join('\n\n')}`;
  writeSection(resolve(ROOT, 'bench/results/balancing.md'), values.section!, section);
}
