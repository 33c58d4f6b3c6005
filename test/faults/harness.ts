/**
 * The fault-injection scenarios, shared by the fault suite (test/faults, few requests) and the
 * reliability bench (bench/reliability.ts, many). A scenario starts engine simulators with fault
 * knobs as workers, a gateway in front of them, sends a known number of requests over plain
 * HTTP and sorts every one into exactly one outcome:
 *
 *   ok         200 and a complete answer (JSON that parses; a stream that ends with [DONE] or,
 *              for TGI, its final event)
 *   error      an explicit error: a non-2xx status with an error body, or a stream whose last
 *              event is an error object
 *   cancelled  the client went away on purpose (the disconnect scenario)
 *   lost       anything else: reset or cut connection, half a body, a stream that just stops,
 *              no answer within the client's patience. Must be 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import pino from 'pino';
import { FlockServe, type FlockServeOptions } from '../../src/index.js';
import { ROOT, simTask } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

export type Outcome = 'ok' | 'error' | 'cancelled' | 'lost';

export interface Shot {
  readonly stream: boolean;
  readonly maxTokens: number;
  /** The client disconnects once the first chunk of the answer arrives. */
  readonly disconnectAfterFirstChunk?: boolean;
  /** A slow reader: pauses this long after every chunk it reads (backpressure on the gateway). */
  readonly readPauseMs?: number;
}

export interface Tally {
  sent: number;
  ok: number;
  error: number;
  cancelled: number;
  lost: number;
  /** Up to 5 descriptions of lost requests, to debug a failure. */
  lostDetails: string[];
  /** Error codes seen (OpenAI `code`, or the worker's status). */
  errorCodes: Record<string, number>;
}

export interface Scenario {
  readonly name: string;
  /**
   * Workers: simulator flags per worker (static provisioner over simulator processes), or
   * `{ local }`: one task for every worker (local provisioner, crashed workers are replaced).
   */
  readonly workers: readonly string[] | { readonly local: string; readonly count: number };
  /** Workers that must be ready before requests start. Default: all. */
  readonly ready?: number;
  readonly gateway?: Partial<FlockServeOptions>;
  readonly shot: Shot;
  readonly concurrency: number;
}

const CLIENT_PATIENCE_MS = 30_000;

/** Request templates; `max_tokens` and `stream` vary per shot. */
function chatBody(shot: Shot): string {
  return JSON.stringify({
    model: 'sim',
    messages: [{ role: 'user', content: 'Tell me about reliability.' }],
    max_tokens: shot.maxTokens,
    stream: shot.stream,
  });
}

/**
 * Scenario table. Timeouts are short so the suite is fast; outlier ejection is at its default
 * (5 failures in a row), so a faulty worker is soon taken out and the rest go to the good one.
 */
export const SCENARIOS = {
  'worker killed mid-stream': {
    name: 'worker killed mid-stream',
    // Each worker process exits with code 1 in the middle of its 4th stream; the local
    // provisioner sees the exit and the fleet launches a replacement.
    workers: { local: '--crash-after 3 --token-interval 5', count: 2 },
    shot: { stream: true, maxTokens: 20 },
    concurrency: 4,
  },
  'worker hangs before headers': {
    name: 'worker hangs before headers',
    workers: ['--token-interval 2', '--token-interval 2 --hang-generation'],
    gateway: { firstByteTimeout: 1 },
    shot: { stream: true, maxTokens: 10 },
    concurrency: 4,
  },
  'worker hangs mid-stream': {
    name: 'worker hangs mid-stream',
    workers: ['--token-interval 2', '--token-interval 2 --hang-mid-stream'],
    gateway: { idleTimeout: 1 },
    shot: { stream: true, maxTokens: 10 },
    concurrency: 4,
  },
  'worker returning 500s': {
    name: 'worker returning 500s',
    workers: ['--token-interval 2', '--token-interval 2 --error-rate 1'],
    shot: { stream: false, maxTokens: 10 },
    concurrency: 4,
  },
  'worker returning 503s (retried)': {
    name: 'worker returning 503s (retried)',
    workers: ['--token-interval 2', '--token-interval 2 --error-rate 1 --error-status 503'],
    shot: { stream: true, maxTokens: 10 },
    concurrency: 4,
  },
  'malformed SSE from a worker': {
    name: 'malformed SSE from a worker',
    workers: ['--token-interval 2', '--token-interval 2 --malformed'],
    shot: { stream: true, maxTokens: 10 },
    concurrency: 4,
  },
  'malformed JSON from a worker': {
    name: 'malformed JSON from a worker',
    workers: ['--token-interval 2', '--token-interval 2 --malformed'],
    shot: { stream: false, maxTokens: 10 },
    concurrency: 4,
  },
  'worker never becomes ready': {
    name: 'worker never becomes ready',
    workers: ['--token-interval 2', '--token-interval 2 --startup-delay 1000000'],
    ready: 1,
    shot: { stream: true, maxTokens: 10 },
    concurrency: 4,
  },
  'clients disconnecting mid-stream under load': {
    name: 'clients disconnecting mid-stream under load',
    workers: ['--token-interval 5', '--token-interval 5'],
    gateway: { workerCapacity: 100 },
    shot: { stream: true, maxTokens: 200, disconnectAfterFirstChunk: true },
    concurrency: 50,
  },
  'concurrent streams with slow readers': {
    name: 'concurrent streams with slow readers',
    workers: ['--token-interval 5 --max-num-seqs 1024', '--token-interval 5 --max-num-seqs 1024'],
    gateway: { workerCapacity: 600, maxQueueLength: 2000 },
    // 40 tokens read at one chunk per 10 ms at most: the reader, not the engine, sets the pace.
    shot: { stream: true, maxTokens: 40, readPauseMs: 10 },
    concurrency: 1000,
  },
} as const satisfies Record<string, Scenario>;

export type ScenarioName = keyof typeof SCENARIOS;

// ---- workers -----------------------------------------------------------------------

export interface SimProcess {
  readonly url: string;
  readonly proc: ChildProcess;
  stop(): Promise<void>;
}

/** Starts the engine simulator CLI (dist/) as a process on a free port. */
export async function startSimProcess(args: string): Promise<SimProcess> {
  const proc = spawn(
    process.execPath,
    [join(ROOT, 'dist/cli/flockserve-sim.js'), '--port', '0', ...args.split(' ').filter(Boolean)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.resume();
  await waitFor(() => /listening on (http:\S+)/.test(out) || proc.exitCode !== null, 'the simulator to listen');
  const url = /listening on (http:\S+)/.exec(out)?.[1];
  if (!url) throw new Error(`simulator did not start: ${out}`);
  return {
    url,
    proc,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

export interface ScenarioEnv {
  readonly gw: FlockServe;
  readonly url: string;
  readonly grpcAddress: string;
  readonly sims: readonly SimProcess[];
  /** Base URLs of every worker that has existed (simulator stats are read from them). */
  workerUrls(): string[];
  close(): Promise<void>;
}

/** Starts the scenario's workers and a gateway (in this process) in front of them. */
export async function startScenario(s: Scenario, extra: Partial<FlockServeOptions> = {}): Promise<ScenarioEnv> {
  const sims = Array.isArray(s.workers) ? await Promise.all(s.workers.map((a) => startSimProcess(a))) : [];
  const local = Array.isArray(s.workers) ? undefined : (s.workers as { local: string; count: number });
  const count = local ? local.count : sims.length;
  const gw = new FlockServe(
    {
      skypilotTask: simTask(local?.local ?? ''),
      provisioner: local ? 'local' : 'static',
      workers: sims.map((p) => p.url),
      host: '127.0.0.1',
      port: 0,
      grpcPort: 0,
      minWorkers: count,
      maxWorkers: count,
      workerProbeInterval: 0.05,
      statusLogInterval: 0,
      metricsId: -1,
      drainTimeout: 2,
      autoscaleInterval: 3600,
      ...s.gateway,
      ...extra,
    },
    { logger: pino({ level: 'silent' }) },
  );
  const listening = await gw.run();
  const want = s.ready ?? count;
  await waitFor(() => gw.status().readyWorkerCount >= want, `${want} ready workers`);
  const seen = new Set<string>();
  return {
    gw,
    url: `http://127.0.0.1:${listening.httpPort}`,
    grpcAddress: `127.0.0.1:${listening.grpcPort}`,
    sims,
    workerUrls: () => {
      for (const w of gw.workers()) if (w.url) seen.add(w.url);
      for (const p of sims) seen.add(p.url);
      return [...seen];
    },
    close: async () => {
      await gw.close();
      await Promise.all(sims.map((p) => p.stop()));
    },
  };
}

// ---- clients -----------------------------------------------------------------------

const agent = new Agent({ keepAlive: true, maxSockets: Infinity });

/** Sends one request and sorts its ending into an Outcome. Never rejects. */
export function shoot(baseUrl: string, shot: Shot): Promise<{ outcome: Outcome; detail: string }> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (outcome: Outcome, detail: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(patience);
      resolve({ outcome, detail });
    };
    const body = chatBody(shot);
    const req = httpRequest(`${baseUrl}/v1/chat/completions`, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    const patience = setTimeout(() => {
      settle('lost', `no complete answer within ${CLIENT_PATIENCE_MS} ms`);
      req.destroy();
    }, CLIENT_PATIENCE_MS);
    req.on('error', (err) => settle('lost', `request error: ${err.message}`));
    req.on('response', (res) => readAnswer(res, shot, req.destroy.bind(req), settle));
    req.end(body);
  });
}

function readAnswer(
  res: IncomingMessage,
  shot: Shot,
  disconnect: () => void,
  settle: (o: Outcome, detail: string) => void,
): void {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => {
    chunks.push(c);
    if (shot.disconnectAfterFirstChunk && res.statusCode === 200) {
      settle('cancelled', 'client disconnected');
      disconnect();
      return;
    }
    if (shot.readPauseMs) {
      res.pause();
      setTimeout(() => res.resume(), shot.readPauseMs);
    }
  });
  res.on('error', (err) => settle('lost', `response error: ${err.message}`));
  res.on('aborted', () => settle('lost', 'response aborted'));
  res.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8');
    const status = res.statusCode ?? 0;
    if (status >= 400) {
      const code = errorCodeOf(text);
      return code
        ? settle('error', code)
        : settle('lost', `status ${status} without an error body: ${text.slice(0, 200)}`);
    }
    if ((res.headers['content-type'] ?? '').startsWith('text/event-stream')) return settle(...streamOutcome(text));
    try {
      const json = JSON.parse(text) as { choices?: unknown };
      return Array.isArray(json.choices)
        ? settle('ok', '')
        : settle('lost', `answer without choices: ${text.slice(0, 200)}`);
    } catch {
      return settle('lost', `answer is not JSON: ${text.slice(0, 200)}`);
    }
  });
}

/** OpenAI's `error.code`/`error.type`, or vLLM's `{"object":"error"}` / TGI's `{"error": "..."}` as `worker <type>`. */
function errorCodeOf(text: string): string | undefined {
  try {
    const j = JSON.parse(text) as { error?: unknown; object?: unknown; type?: unknown; message?: unknown };
    if (j.error && typeof j.error === 'object') {
      const e = j.error as { code?: unknown; type?: unknown; message?: unknown };
      if (typeof e.message === 'string') return String(e.code ?? e.type);
    }
    if (j.object === 'error' && typeof j.message === 'string') return `worker ${String(j.type)}`;
    if (typeof j.error === 'string') return 'worker error';
  } catch {
    /* not JSON */
  }
  return undefined;
}

function streamOutcome(text: string): [Outcome, string] {
  const events = text
    .split(/\r?\n\r?\n/)
    .map((e) => e.trim())
    .filter((e) => e.startsWith('data:'))
    .map((e) => e.slice(5).trim());
  const last = events.at(-1);
  if (last === '[DONE]') {
    const error = events.slice(0, -1).find((e) => errorCodeOf(e) !== undefined && !e.includes('"choices"'));
    return error ? ['error', errorCodeOf(error)!] : ['ok', ''];
  }
  if (last !== undefined && errorCodeOf(last) !== undefined) return ['error', errorCodeOf(last)!];
  return ['lost', `stream ended without [DONE] or an error event after ${events.length} events`];
}

/** Sends `n` shots, at most `concurrency` at a time, and tallies the outcomes. */
export async function runRequests(baseUrl: string, shot: Shot, n: number, concurrency: number): Promise<Tally> {
  const tally: Tally = { sent: 0, ok: 0, error: 0, cancelled: 0, lost: 0, lostDetails: [], errorCodes: {} };
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < n) {
      next++;
      tally.sent++;
      const { outcome, detail } = await shoot(baseUrl, shot);
      tally[outcome]++;
      if (outcome === 'lost' && tally.lostDetails.length < 5) tally.lostDetails.push(detail);
      if (outcome === 'error') tally.errorCodes[detail] = (tally.errorCodes[detail] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, lane));
  return tally;
}

/** The gateway is idle again: nothing in flight or waiting (every slot was released). */
export async function waitIdle(env: ScenarioEnv): Promise<void> {
  await waitFor(() => env.gw.status().currentQueueLength === 0, 'the gateway to be idle');
}

/** Sum of the simulators' aborted-sequence counters (GET /sim/stats), over workers still up. */
export async function abortedOnWorkers(env: ScenarioEnv): Promise<number> {
  let n = 0;
  for (const url of env.workerUrls()) {
    try {
      n += ((await (await fetch(`${url}/sim/stats`)).json()) as { aborted: number }).aborted;
    } catch {
      /* a crashed worker */
    }
  }
  return n;
}
