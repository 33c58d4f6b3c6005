/**
 * Live balancing benchmark: each --load_balancer policy in front of 4 engine-simulator
 * processes (static provisioner), on (a) the multi-turn chat workload and (b) a slice of the
 * Azure LLM conversation trace. Fresh simulators and gateway per run, so every policy starts
 * with cold caches. Writes bench/results/balancing.md.
 *
 *   npx tsc -p tsconfig.build.json && npx vite-node bench/balancing.ts [--policies a,b] [--workloads multi-turn,conv]
 *
 * Measured at the client (streaming chat completions): TTFT = time to the first SSE event
 * (the simulator sends it with the first token), end-to-end = time to the end of the stream.
 * Cache hit rate = prompt tokens served from the simulators' prefix caches
 * (vllm:prefix_cache_hits / vllm:prefix_cache_queries over all 4 workers).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { seededRandom } from '../src/core/clock.js';
import { BALANCER_NAMES } from '../src/core/balancer/registry.js';
import { chatMessages, multiTurnSessions, type ChatMessage } from '../src/sim/workloads/multi-turn.js';
import { CONV, MULTI_TURN, convSlice } from './lib/balancing-workloads.js';

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
  readonly requests: number;
  readonly errors: number;
  readonly ttftP50: number;
  readonly ttftP99: number;
  readonly e2eP99: number;
  readonly reqPerSec: number;
  readonly tokPerSec: number;
  readonly hitRate: number;
}

// ---------------------------------------------------------------- processes

function startProcess(args: string[], ready: RegExp): Promise<{ proc: ChildProcess; match: RegExpMatchArray }> {
  const proc = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
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

async function startCluster(policy: string): Promise<Cluster> {
  const sims = await Promise.all(
    Array.from({ length: WORKERS }, (_, i) =>
      startProcess(['dist/cli/flockserve-sim.js', '--port', '0', '--seed', String(i)], /listening on (http:\/\/\S+)/),
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

// ---------------------------------------------------------------- one request

/** Sends one streaming chat completion; resolves with its timings and the reply text. */
async function chat(
  url: string,
  messages: readonly ChatMessage[],
  maxTokens: number,
  user: string | undefined,
  t0: number,
): Promise<{ sample: Sample; reply: string }> {
  const start = performance.now();
  const res = await request(`${url}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'sim', messages, max_tokens: maxTokens, stream: true, ...(user ? { user } : {}) }),
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
      const parsed = JSON.parse(data) as { choices?: { delta?: { content?: string } }[]; error?: unknown };
      if (parsed.error) throw new Error(`stream error: ${JSON.stringify(parsed.error)}`);
      reply += parsed.choices?.[0]?.delta?.content ?? '';
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

function sleepUntil(at: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, at - performance.now())));
}

// ---------------------------------------------------------------- report

function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function runOne(policy: string, workload: Workload): Promise<Row> {
  const cluster = await startCluster(policy);
  try {
    const { samples, errors } = await workload(cluster.url);
    const span = (Math.max(...samples.map((s) => s.endMs)) - Math.min(...samples.map((s) => s.startMs))) / 1000;
    return {
      policy,
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
    };
  } finally {
    await cluster.close();
  }
}

function table(rows: readonly Row[]): string {
  const head =
    '| policy | requests | errors | TTFT p50 (ms) | TTFT p99 (ms) | e2e p99 (ms) | req/s | output tok/s | cache hit rate |\n' +
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |';
  const body = rows.map(
    (r) =>
      `| ${r.policy} | ${r.requests} | ${r.errors} | ${r.ttftP50.toFixed(0)} | ${r.ttftP99.toFixed(0)} | ${r.e2eP99.toFixed(0)} | ${r.reqPerSec.toFixed(2)} | ${r.tokPerSec.toFixed(0)} | ${(r.hitRate * 100).toFixed(1)}% |`,
  );
  return [head, ...body].join('\n');
}

const { values } = parseArgs({
  options: { policies: { type: 'string' }, workloads: { type: 'string' }, out: { type: 'string' } },
});
const policies = values.policies?.split(',') ?? BALANCER_NAMES;
const workloads = (values.workloads?.split(',') ?? ['multi-turn', 'conv']).map((w) => {
  if (w === 'multi-turn') return { name: w, run: multiTurn };
  if (w === 'conv') return { name: w, run: convTrace };
  throw new Error(`unknown workload ${w}; one of multi-turn, conv`);
});

const results: Record<string, Row[]> = {};
for (const w of workloads) {
  results[w.name] = [];
  for (const p of policies) {
    const row = await runOne(p, w.run);
    results[w.name]!.push(row);
    console.log(w.name, JSON.stringify(row));
  }
}
await agent.close();
const out = values.out ?? resolve(ROOT, 'bench/results/balancing.raw.json');
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, results }, null, 2));
for (const [name, rows] of Object.entries(results)) console.log(`\n### ${name}\n\n${table(rows)}`);
