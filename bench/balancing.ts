/**
 * Live balancing benchmark: each --load_balancer policy in front of 4 engine-simulator
 * processes (static provisioner), on (a) a slice of the Mooncake trace at two offered loads,
 * (b) the multi-turn chat workload and (c) a slice of the Azure LLM conversation trace. Fresh
 * simulators and gateway per run, so every policy starts with cold caches; policies run in
 * rounds (each round every policy once, in a rotated order), so a change in the machine's load
 * spreads over all of them. Writes the live section of bench/results/balancing.md and
 * bench/results/balancing.raw.json.
 *
 *   npx tsc -p tsconfig.build.json && npx vite-node bench/balancing.ts \
 *     [--policies a,b] [--workloads mooncake,multi-turn,conv] [--rounds 2]
 *
 * Measured at the client (streaming completions): TTFT = time to the first SSE event (the
 * simulator sends it with the first token), end-to-end = time to the end of the stream. Cache
 * hit rate = prompt tokens served from the simulators' prefix caches
 * (vllm:prefix_cache_hits / vllm:prefix_cache_queries over all 4 workers). Imbalance and
 * idle-while-queued as in the virtual-time run, from each simulator's /metrics (requests
 * running + waiting) every 250 ms.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { seededRandom } from '../src/core/clock.js';
import { readTrace, type TraceRequest } from '../src/sim/cluster/trace.js';
import { chatMessages, multiTurnSessions, type ChatMessage } from '../src/sim/workloads/multi-turn.js';
import { tracePrompt } from '../src/sim/workloads/trace-prompts.js';
import { CONV, MOONCAKE_LOADS, MOONCAKE_TRACE, MULTI_TURN, convSlice } from './lib/balancing-workloads.js';

const ROOT = resolve(import.meta.dirname, '..');
const WORKERS = 4;

const agent = new Agent({ connections: 512, keepAliveTimeout: 30_000 });

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
  readonly tokPerSec: number;
  readonly hitRate: number;
  readonly imbalance: number;
  readonly idleWhileQueued: number;
}

/** The six policies the comparison is about (round-robin and random run with --policies). */
const POLICIES = ['least-connection', 'power-of-two', 'session-affinity', 'prefix-cache', 'prefix-hash', 'engine-load'];

/**
 * The Mooncake slice: 5 minutes of its arrivals from minute 10 (1,215 requests; the trace's
 * first minutes are mostly new sessions, later ones mostly continue them: 57% of this window's
 * prompt tokens repeat an earlier prefix of the window), replayed with the simulators
 * `speedup` times faster than the default profile (prefill, and a fixed time per token: 12 ms
 * ÷ 5) and the arrivals as much faster on top of the virtual-time run's load, so a run takes
 * minutes, not a quarter of an hour. Latencies come out that much shorter; hit rates and
 * balance are comparable.
 */
const MOONCAKE_LIVE = { fromSeconds: 600, seconds: 300, speedup: 5, prefillTps: 50_000, tokenIntervalMs: 2.4 } as const;

// ---------------------------------------------------------------- processes

/** Every child still running, so an interrupted run takes its simulators and gateway with it. */
const children = new Set<ChildProcess>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const c of children) c.kill('SIGKILL');
    process.exit(130);
  });
}

function startProcess(args: string[], ready: RegExp): Promise<{ proc: ChildProcess; match: RegExpMatchArray }> {
  const proc = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return new Promise((resolvePromise, reject) => {
    let out = '';
    let err = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = out.match(ready);
      if (m) {
        proc.stdout!.off('data', onData);
        proc.stdout!.resume();
        resolvePromise({ proc, match: m });
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    proc.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}: ${err}`)));
  });
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

interface Cluster {
  readonly url: string;
  readonly workerUrls: readonly string[];
  close(): Promise<void>;
}

async function startCluster(policy: string, simArgs: readonly string[] = []): Promise<Cluster> {
  const sims = await Promise.all(
    Array.from({ length: WORKERS }, (_, i) =>
      startProcess(
        ['dist/cli/flockserve-sim.js', '--port', '0', '--seed', String(i), ...simArgs],
        /listening on (http:\/\/\S+)/,
      ),
    ),
  );
  const workerUrls = sims.map((s) => s.match[1]!);
  const gw = await startProcess(
    [
      'dist/cli/flockserve.js',
      ...['--skypilot_task', 'examples/serving_sim_local.yaml', '--provisioner', 'static'],
      ...['--workers', workerUrls.join(','), '--min_workers', String(WORKERS), '--max_workers', String(WORKERS)],
      ...['--host', '127.0.0.1', '--port', '0', '--grpc_port', '0', '--metrics_id', '-1', '--verbosity', '0'],
      ...['--status_log_interval', '0', '--worker_probe_interval', '0.2', '--seed', '1', '--load_balancer', policy],
    ],
    /listening on (http:\/\/\S+) \(HTTP\)/,
  );
  const url = gw.match[1]!.replace('localhost', '127.0.0.1');
  for (const deadline = Date.now() + 30_000; ;) {
    const res = await request(`${url}/health`, { dispatcher: agent }).catch(() => undefined);
    const body = res ? ((await res.body.json()) as { ready_worker_count?: number }) : {};
    if ((body.ready_worker_count ?? 0) >= WORKERS) break;
    if (Date.now() > deadline) throw new Error('workers did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    workerUrls,
    close: async () => {
      await stop(gw.proc);
      await Promise.all(sims.map((s) => stop(s.proc)));
    },
  };
}

/** Σ hits / Σ queries of the prefix-cache counters on every worker's /metrics. */
async function cacheHitRate(workerUrls: readonly string[]): Promise<number> {
  let hits = 0;
  let queries = 0;
  for (const u of workerUrls) {
    const text = await (await request(`${u}/metrics`, { dispatcher: agent })).body.text();
    hits += Number(text.match(/^vllm:prefix_cache_hits_total\S* (\S+)/m)?.[1] ?? 0);
    queries += Number(text.match(/^vllm:prefix_cache_queries_total\S* (\S+)/m)?.[1] ?? 0);
  }
  return queries === 0 ? 0 : hits / queries;
}

/** Requests each simulator holds (running + waiting), from its /metrics. */
async function engineLoads(workerUrls: readonly string[]): Promise<{ held: number; waiting: number }[]> {
  return Promise.all(
    workerUrls.map(async (u) => {
      const text = await (await request(`${u}/metrics`, { dispatcher: agent })).body.text();
      const running = Number(text.match(/^vllm:num_requests_running\S* (\S+)/m)?.[1] ?? 0);
      const waiting = Number(text.match(/^vllm:num_requests_waiting\S* (\S+)/m)?.[1] ?? 0);
      return { held: running + waiting, waiting };
    }),
  );
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
      const loads = await engineLoads(workerUrls).catch(() => undefined);
      if (loads) {
        const held = loads.map((l) => l.held);
        const total = held.reduce((a, b) => a + b, 0);
        if (total > 0) {
          samples++;
          sumMax += Math.max(...held);
          sumMean += total / held.length;
          if (held.some((h) => h === 0) && loads.some((l) => l.waiting > 0)) idleQueued++;
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

/** Sends one streaming chat completion; resolves with its timings and the reply text. */
function chat(
  url: string,
  messages: readonly ChatMessage[],
  maxTokens: number,
  user: string | undefined,
  t0: number,
): Promise<{ sample: Sample; reply: string }> {
  const body = { model: 'sim', messages, max_tokens: maxTokens, stream: true, ...(user ? { user } : {}) };
  return stream(`${url}/v1/chat/completions`, body, maxTokens, t0);
}

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

type Workload = (url: string) => Promise<{ samples: Sample[]; errors: number }>;

/** Closed loop per session: turn k+1 goes once turn k's reply is back and its think time has passed. */
const multiTurn: Workload = async (url) => {
  const sessions = multiTurnSessions(MULTI_TURN);
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
        try {
          const { sample, reply } = await chat(url, chatMessages(s, t, replies), turn.maxTokens, s.id, t0);
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

/** Open loop at the trace's (sped-up) arrival times; each prompt is unique text of the trace's length. */
const convTrace: Workload = async (url) => {
  const rows = await convSlice();
  const random = seededRandom(5);
  const samples: Sample[] = [];
  let errors = 0;
  const t0 = performance.now();
  await Promise.all(
    rows.map(async (r, i) => {
      await sleepUntil(t0 + r.arrivalMs / CONV.speedup);
      let text = `[trace request ${i}]`;
      while (text.length < r.promptTokens * 4) text += ` w${Math.floor(random() * 1e6)}`;
      try {
        samples.push((await chat(url, [{ role: 'user', content: text }], r.outputTokens, undefined, t0)).sample);
      } catch {
        errors++;
      }
    }),
  );
  return { samples, errors };
};

/** Open loop at the Mooncake slice's arrival times (× scale); each prompt synthesised from its block ids, as the simulation does. */
function mooncakeTrace(slice: readonly TraceRequest[], scale: number): Workload {
  return async (url) => {
    const samples: Sample[] = [];
    let errors = 0;
    const t0 = performance.now();
    await Promise.all(
      slice.map(async (r) => {
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

// ---------------------------------------------------------------- report

function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function runOne(policy: string, round: number, w: LiveWorkload): Promise<Row> {
  const cluster = await startCluster(policy, w.simArgs);
  try {
    const stopSampling = sampleBalance(cluster.workerUrls);
    const { samples, errors } = await w.run(cluster.url);
    const balance = await stopSampling();
    const span = (Math.max(...samples.map((s) => s.endMs)) - Math.min(...samples.map((s) => s.startMs))) / 1000;
    return {
      policy,
      round,
      requests: samples.length,
      errors,
      ttftP50: percentile(
        samples.map((s) => s.ttftMs),
        50,
      ),
      ttftP99: percentile(
        samples.map((s) => s.ttftMs),
        99,
      ),
      e2eP99: percentile(
        samples.map((s) => s.e2eMs),
        99,
      ),
      reqPerSec: samples.length / span,
      tokPerSec: samples.reduce((n, s) => n + s.outputTokens, 0) / span,
      hitRate: await cacheHitRate(cluster.workerUrls),
      ...balance,
    };
  } finally {
    await cluster.close();
  }
}

function table(rows: readonly Row[]): string {
  const head =
    '| policy | round | requests | errors | TTFT p50 (ms) | TTFT p99 (ms) | e2e p99 (ms) | req/s | cache hit rate | imbalance | idle while queued |\n' +
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |';
  const body = [...rows]
    .sort((a, b) => POLICIES.indexOf(a.policy) - POLICIES.indexOf(b.policy) || a.round - b.round)
    .map(
      (r) =>
        `| ${r.policy} | ${r.round} | ${r.requests} | ${r.errors} | ${r.ttftP50.toFixed(0)} | ${r.ttftP99.toFixed(0)} | ${r.e2eP99.toFixed(0)} | ${r.reqPerSec.toFixed(2)} | ${(r.hitRate * 100).toFixed(1)}% | ${r.imbalance.toFixed(2)} | ${(r.idleWhileQueued * 100).toFixed(1)}% |`,
    );
  return [head, ...body].join('\n');
}

interface LiveWorkload {
  readonly name: string;
  readonly title: string;
  readonly simArgs: readonly string[];
  readonly run: Workload;
}

const { values } = parseArgs({
  options: {
    policies: { type: 'string' },
    workloads: { type: 'string' },
    rounds: { type: 'string' },
    out: { type: 'string' },
  },
});
const policies = values.policies?.split(',') ?? POLICIES;
const rounds = Number(values.rounds ?? 1);
const mooncakeSlice = (await readTrace(MOONCAKE_TRACE))
  .filter((r) => r.arrivalMs >= MOONCAKE_LIVE.fromSeconds * 1000)
  .filter((r) => r.arrivalMs < (MOONCAKE_LIVE.fromSeconds + MOONCAKE_LIVE.seconds) * 1000)
  .map((r) => ({ ...r, arrivalMs: r.arrivalMs - MOONCAKE_LIVE.fromSeconds * 1000 }));
const fastSims = [
  '--prefill-tps',
  `${MOONCAKE_LIVE.prefillTps}`,
  '--token-interval',
  `${MOONCAKE_LIVE.tokenIntervalMs}`,
];
const ALL: Record<string, LiveWorkload[]> = {
  mooncake: Object.entries(MOONCAKE_LOADS.gpu).map(([load, scale]) => ({
    name: `mooncake-${load}`,
    title: `Mooncake, ${MOONCAKE_LIVE.seconds} s from minute ${MOONCAKE_LIVE.fromSeconds / 60} (${mooncakeSlice.length} requests), ${load === 'moderate' ? 'moderate' : 'near saturation'}: the virtual-time run's ×${scale}, with ${MOONCAKE_LIVE.speedup}× faster engines and arrivals`,
    simArgs: fastSims,
    run: mooncakeTrace(mooncakeSlice, scale * MOONCAKE_LIVE.speedup),
  })),
  'multi-turn': [{ name: 'multi-turn', title: 'multi-turn chat', simArgs: [], run: multiTurn }],
  conv: [{ name: 'conv', title: 'conv trace', simArgs: [], run: convTrace }],
};
const workloads = (values.workloads?.split(',') ?? ['mooncake', 'multi-turn', 'conv']).flatMap((w) => {
  const found = ALL[w];
  if (!found) throw new Error(`unknown workload ${w}; one of ${Object.keys(ALL).join(', ')}`);
  return found;
});

const started = new Date();
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
  }
}
await agent.close();
const out = values.out ?? resolve(ROOT, 'bench/results/balancing.raw.json');
writeFileSync(out, JSON.stringify({ date: started.toISOString(), node: process.version, results }, null, 2));

const BEGIN = '<!-- live:begin (written by npx vite-node bench/balancing.ts) -->';
const END = '<!-- live:end -->';
const section = `${BEGIN}
## Live: 4 simulator processes behind the gateway (${started.toISOString().slice(0, 16).replace('T', ' ')} UTC)

Wall-clock time on a 2-core machine shared with other engineers' builds and tests while it ran:
compare within a table; policies ran in ${rounds} round${rounds > 1 ? 's' : ''}, each round every policy once in a rotated order.
Command: \`npx tsc -p tsconfig.build.json && npx vite-node bench/balancing.ts --workloads ${values.workloads ?? 'mooncake,multi-turn,conv'} --rounds ${rounds}\`

${workloads.map((w) => `### ${w.title}\n\n${table(results[w.name]!)}`).join('\n\n')}
${END}`;
const MD = resolve(ROOT, 'bench/results/balancing.md');
const existing = readFileSync(MD, 'utf8');
const [head = existing, rest] = existing.split(BEGIN);
const tail = rest === undefined ? '' : rest.slice(rest.indexOf(END) + END.length);
writeFileSync(MD, `${head.trimEnd()}\n\n${section}${tail.trim() === '' ? '\n' : tail}`);
console.log(section);
