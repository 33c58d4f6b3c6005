/**
 * Several FlockServe gateways as real processes (`node dist/cli/flockserve.js`) sharing one
 * fleet through a real etcd, with the fake `sky` (test/fixtures) making their workers; and
 * clients that spread requests over them and retry a refused connection on the next gateway,
 * as an L4 balancer in front of them would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { clusterPort, fakeSky, skyTask, type FakeSky, type LedgerEntry } from './fake-sky.js';
import { ROOT } from './gateway.js';
import { waitFor } from './wait.js';

/** How long a replica may take to listen and agree on a leader: node's start alone takes seconds on a busy machine. */
const STARTUP_MS = 60_000;

/** What GET / says about the replicas (src/service/status.ts). */
export interface StatusJson {
  readonly ready_worker_count: number;
  readonly worker_count: number;
  readonly worker_names: string[];
  readonly lora_adapters?: string[];
  readonly coordination: {
    readonly replica: string;
    readonly leader: string | null;
    readonly leader_since: string | null;
    readonly replicas: { id: string; leader: boolean; leaving: boolean }[];
    readonly store_reachable: boolean;
    readonly scaling: 'active' | 'paused';
  };
}

export interface Replica {
  readonly name: string;
  /** The ports it listens on (it binds port 0: known once it has started). */
  port: number;
  grpcPort: number;
  url: string;
  readonly logPath: string;
  proc: ChildProcess;
  /** Whether the process has exited (it may be stopped and still alive). */
  exited: boolean;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exit: Promise<number | null>;
  status(): Promise<StatusJson | undefined>;
  /** The gateway's log lines so far (JSON, parsed). */
  logs(): { msg: string; [k: string]: unknown }[];
  signal(sig: NodeJS.Signals): void;
}

export interface ReplicaSet {
  readonly replicas: Replica[];
  readonly sky: FakeSky;
  /** The task YAML every replica runs. */
  readonly task: string;
  /** The etcd key prefix of this fleet. */
  readonly prefix: string;
  readonly workerPrefix: string;
  /** Replicas that have not exited. */
  running(): Replica[];
  /** The leader as every running, answering replica names it, in the same term: undefined until they agree. */
  leader(among?: Replica[]): Promise<Replica | undefined>;
  /** launch/down of each cluster name, from the fake sky's ledger. */
  lifecycle(): { launches: Map<string, LedgerEntry[]>; downs: Map<string, LedgerEntry[]> };
  /** SIGTERMs every running replica and waits for them to exit; kills the engines left (test clean-up). */
  stopAll(): Promise<void>;
  /** Starts one more replica (the next name) with the same options; resolves once it answers GET /. */
  add(): Promise<Replica>;
}

export interface ReplicaOptions {
  readonly etcd: readonly string[];
  readonly count?: number;
  readonly leaseTtl?: number;
  readonly minWorkers?: number;
  readonly maxWorkers?: number;
  readonly extra?: readonly string[];
  /** The fake `sky`'s fault switches (test/fixtures/fake-sky) for every replica's `sky` calls, given the worker name prefix. */
  readonly skyFaults?: (workerPrefix: string) => Readonly<Record<string, string>>;
  /** Workers from the fake `sky` (default), or these engines' URLs (--provisioner static). */
  readonly staticWorkers?: readonly string[];
  /** Log level of the gateways (--verbosity): 1 by default; 0 for benchmarks. */
  readonly verbosity?: number;
  /** A new start of a service whose replicas are all gone: the same fake sky, task and names. */
  readonly after?: ReplicaSet | undefined;
  /** More flags for the simulator the workers run. */
  readonly simArgs?: string | undefined;
}

let fleetN = 0;

/** Starts `count` gateways on one fake sky and one etcd prefix; resolves once all listen and agree on a leader. */
export async function startReplicas(o: ReplicaOptions): Promise<ReplicaSet> {
  const sky = o.after?.sky ?? fakeSky();
  const dir = mkdtempSync(join(tmpdir(), 'flockserve-replicas-'));
  const task = o.after?.task ?? skyTask(await clusterPort(), `--token-interval 2 ${o.simArgs ?? ''}`);
  const workerPrefix = o.after?.workerPrefix ?? `ha${process.pid}x${++fleetN}`;
  const prefix = `/flockserve-test/${workerPrefix}/`;
  const replicas: Replica[] = [];
  const workers = o.staticWorkers
    ? ['--provisioner', 'static', '--workers', o.staticWorkers.join(','), '--skypilot_task', task]
    : ['--provisioner', 'skypilot', '--skypilot_task', task];
  const launch = async (i: number): Promise<Replica> => {
    const name = `gw${i}`;
    const logPath = join(dir, `${name}.log`);
    const log = createWriteStream(logPath);
    const args = [
      join(ROOT, 'dist/cli/flockserve.js'),
      ...workers,
      '--host',
      '127.0.0.1',
      // Port 0: the kernel's pick, read back from the listening line. A port picked free here
      // could be taken by another process on this machine before the gateway binds it.
      '--port',
      '0',
      '--grpc_port',
      '0',
      '--etcd_endpoints',
      o.etcd.join(','),
      '--etcd_prefix',
      prefix,
      '--etcd_lease_ttl',
      String(o.leaseTtl ?? 2),
      '--replica_name',
      name,
      '--worker_name_prefix',
      workerPrefix,
      '--min_workers',
      String(o.minWorkers ?? 2),
      '--max_workers',
      String(o.maxWorkers ?? 3),
      '--worker_probe_interval',
      '0.1',
      '--worker_unhealthy_timeout',
      '5',
      '--drain_timeout',
      '2',
      '--sky_command_timeout',
      '20',
      '--sky_refresh_interval',
      '1',
      '--node_control_key',
      'k',
      '--status_log_interval',
      '0',
      '--metrics_id',
      '-1',
      '--log_format',
      'json',
      '--verbosity',
      String(o.verbosity ?? 1),
      '--log_dir',
      join(dir, 'sky-logs'),
      ...(o.extra ?? []),
    ];
    const proc = spawn(process.execPath, args, {
      env: { ...process.env, ...sky.env({ ...o.skyFaults?.(workerPrefix) }), FAKE_SKY_CALLER: name },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout.pipe(log);
    proc.stderr.pipe(log);
    const r: Replica = {
      name,
      port: 0,
      grpcPort: 0,
      url: '',
      logPath,
      proc,
      exited: false,
      exit: new Promise((resolve) => proc.once('exit', (code) => resolve(code))),
      status: () => (started(r) ? getStatus(r.url) : Promise.resolve(undefined)),
      logs: () =>
        readFileSync(logPath, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as { msg: string }),
      signal: (sig) => void proc.kill(sig),
    };
    void r.exit.then(() => (r.exited = true));
    replicas.push(r);
    return r;
  };
  for (let i = 0; i < (o.count ?? 3); i++) await launch(i);
  const set: ReplicaSet = {
    replicas,
    sky,
    task,
    prefix,
    workerPrefix,
    running: () => replicas.filter((r) => !r.exited),
    async leader(among = set.running()) {
      const statuses = await Promise.all(among.map((r) => r.status()));
      // The same term, not only the same name: a replica that has not yet seen a leader key go still
      // names the replica that held it, which may lead again under a new term by then.
      const terms = new Set(statuses.map((s) => `${s?.coordination.leader}@${s?.coordination.leader_since}`));
      if (terms.size !== 1) return undefined;
      const id = statuses[0]?.coordination.leader;
      return replicas.find((r) => r.name === id);
    },
    lifecycle() {
      const launches = new Map<string, LedgerEntry[]>();
      const downs = new Map<string, LedgerEntry[]>();
      for (const e of sky.ledger()) {
        const [cmd] = e.argv;
        const name = cmd === 'launch' ? e.argv[e.argv.indexOf('-c') + 1] : cmd === 'down' ? e.argv.at(-1) : undefined;
        if (name === undefined) continue;
        const map = cmd === 'launch' ? launches : downs;
        map.set(name, [...(map.get(name) ?? []), e]);
      }
      return { launches, downs };
    },
    async stopAll() {
      for (const r of set.running()) r.signal('SIGCONT');
      for (const r of set.running()) r.signal('SIGTERM');
      await Promise.all(replicas.map((r) => r.exit));
    },
    async add() {
      const r = await launch(replicas.length);
      await waitFor(async () => (await r.status()) !== undefined && started(r), `${r.name} started`, STARTUP_MS);
      return r;
    },
  };
  try {
    // Started, not only listening: a replica serves status while it is still joining etcd
    // (taking its lease), and one that loses etcd then exits rather than serving.
    await waitFor(
      async () => (await Promise.all(replicas.map((r) => r.status()))).every(Boolean) && replicas.every(started),
      'replicas started',
      STARTUP_MS,
    );
    await waitFor(async () => (await set.leader()) !== undefined, 'one leader named by all', STARTUP_MS);
  } catch (err) {
    // What each replica said last: why it is not up, or not agreeing on a leader.
    const tails = replicas.map(
      (r) => `${r.name}:\n${readFileSync(r.logPath, 'utf8').split('\n').slice(-8).join('\n')}`,
    );
    throw new Error(`${(err as Error).message}\n${tails.join('\n')}`);
  }
  return set;
}

/** The replica said it is up: its gateway started (it joined etcd) and listens. */
/** Whether it listens; the first time, its ports are read from the listening line. */
function started(r: Replica): boolean {
  if (r.url !== '') return true;
  let log: string;
  try {
    log = readFileSync(r.logPath, 'utf8');
  } catch {
    return false; // the log file is not open yet
  }
  const m = /FlockServe listening on (http:\/\/127\.0\.0\.1:(\d+)) \(HTTP\) and 127\.0\.0\.1:(\d+) \(gRPC\)/.exec(log);
  if (!m) return false;
  r.port = Number(m[2]);
  r.grpcPort = Number(m[3]);
  r.url = m[1]!;
  return true;
}

const agent = new Agent({ connections: 64, keepAliveTimeout: 1000 });

async function getStatus(url: string): Promise<StatusJson | undefined> {
  try {
    const res = await request(`${url}/`, { dispatcher: agent, headersTimeout: 2000, bodyTimeout: 2000 });
    if (res.statusCode !== 200) {
      await res.body.dump();
      return undefined;
    }
    return (await res.body.json()) as StatusJson;
  } catch {
    return undefined;
  }
}

/** How one client request ended. */
export type Outcome = 'ok' | 'error-answer' | 'failed-at-client' | 'refused-everywhere';

export interface Load {
  readonly counts: Record<Outcome, number>;
  /** Requests sent so far (each retry of a refused connection on another gateway is the same request). */
  readonly sent: number;
  /** Failures seen by the clients, with when and where. */
  readonly failures: { at: number; gateway: string; outcome: Outcome; detail: string }[];
  /** Stops sending; resolves once every request in flight has ended. */
  stop(): Promise<void>;
}

/**
 * `concurrency` clients, each sending one completion after another to the gateways in turn.
 * A refused connection is tried on the next gateway (as an L4 balancer does: the request was
 * never taken); any other failure counts where it happened. A request that takes longer than
 * `timeoutMs` counts as failed at the client (a hang would show there).
 */
export function startLoad(targets: () => Replica[], concurrency = 6, timeoutMs = 30_000): Load {
  const counts: Record<Outcome, number> = { ok: 0, 'error-answer': 0, 'failed-at-client': 0, 'refused-everywhere': 0 };
  const failures: Load['failures'] = [];
  let sent = 0;
  let stopping = false;
  let turn = 0;
  const one = async (): Promise<void> => {
    sent++;
    const list = targets();
    // Each gateway once, from this request's turn on: the other clients move `turn` meanwhile.
    const first = turn++;
    for (let attempt = 0; attempt < list.length; attempt++) {
      const r = list[(first + attempt) % list.length]!;
      try {
        const res = await request(`${r.url}/v1/completions`, {
          method: 'POST',
          dispatcher: agent,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'sim', prompt: 'hello there', max_tokens: 4 }),
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
        const text = await res.body.text();
        if (res.statusCode === 200) counts.ok++;
        else {
          counts['error-answer']++;
          failures.push({
            at: Date.now(),
            gateway: r.name,
            outcome: 'error-answer',
            detail: `${res.statusCode} ${text}`,
          });
        }
        return;
      } catch (err) {
        const code = (err as { code?: string }).code ?? '';
        if (code === 'ECONNREFUSED') continue;
        counts['failed-at-client']++;
        failures.push({
          at: Date.now(),
          gateway: r.name,
          outcome: 'failed-at-client',
          detail: `${code} ${(err as Error).message}`,
        });
        return;
      }
    }
    counts['refused-everywhere']++;
    failures.push({ at: Date.now(), gateway: '-', outcome: 'refused-everywhere', detail: 'every gateway refused' });
  };
  const loops = Array.from({ length: concurrency }, async () => {
    while (!stopping) await one();
  });
  return {
    counts,
    get sent() {
      return sent;
    },
    failures,
    async stop() {
      stopping = true;
      await Promise.all(loops);
    },
  };
}
