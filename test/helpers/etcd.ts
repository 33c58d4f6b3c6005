/**
 * A real etcd cluster for system tests: Debian's `etcd-server` binary, N members on free
 * loopback ports, data in a temp dir. Members can be killed and started again (same data
 * dir), so tests can take one member away, or the quorum, and give it back.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait.js';

export const ETCD_BINARY = process.env.ETCD_BINARY ?? 'etcd';

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly running: boolean;
}

export interface EtcdCluster {
  /** Client URLs of every member (what --etcd_endpoints takes). */
  readonly endpoints: string[];
  readonly members: readonly EtcdMember[];
  /** SIGKILLs member i. */
  kill(i: number): Promise<void>;
  /** Starts member i again on its data dir and waits until it answers. */
  restart(i: number): Promise<void>;
  /** SIGSTOPs member i: its connections stay open and nothing on them is answered (a hung host, a partition that drops packets). */
  pause(i: number): void;
  /** SIGCONTs member i. */
  resume(i: number): void;
  /** Waits until the running members answer /health with a leader. */
  healthy(): Promise<void>;
  close(): Promise<void>;
}

interface Member extends EtcdMember {
  proc: ChildProcess | undefined;
  running: boolean;
  readonly dataDir: string;
  /** The last lines the member wrote to stderr, for the error when it does not come back. */
  readonly stderrTail: string[];
}

const STDERR_LINES = 20;

/**
 * A loopback port below the kernel's ephemeral range that is free now. A member's ports must
 * stay free while it is down so that it can start again on them; a port from the ephemeral
 * range (what binding port 0 gives) can meanwhile become the source port of any outgoing
 * connection, e.g. the test's own load, and etcd then exits on `address already in use`.
 */
async function portOutsideEphemeralRange(): Promise<number> {
  const low = ephemeralRangeStart();
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port in 10000-${low - 1} after 100 tries`);
}

function ephemeralRangeStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 11_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Starts an n-member cluster (elections tuned fast for tests: 50 ms heartbeat, 500 ms election timeout). */
export async function startEtcd(n = 3): Promise<EtcdCluster> {
  const version = spawnSync(ETCD_BINARY, ['--version'], { encoding: 'utf8' });
  if (version.status !== 0) {
    throw new Error(
      `cannot run ${ETCD_BINARY} (apt-get install etcd-server): ${version.error?.message ?? version.stderr}`,
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'flockserve-etcd-'));
  const members: Member[] = [];
  for (let i = 0; i < n; i++) {
    const [client, peer] = [await portOutsideEphemeralRange(), await portOutsideEphemeralRange()];
    members.push({
      name: `m${i}`,
      clientUrl: `http://127.0.0.1:${client}`,
      peerUrl: `http://127.0.0.1:${peer}`,
      proc: undefined,
      running: false,
      dataDir: join(dir, `m${i}`),
      stderrTail: [],
    });
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const launch = (m: Member): void => {
    const proc = spawn(
      ETCD_BINARY,
      [
        '--name',
        m.name,
        '--data-dir',
        m.dataDir,
        '--listen-client-urls',
        m.clientUrl,
        '--advertise-client-urls',
        m.clientUrl,
        '--listen-peer-urls',
        m.peerUrl,
        '--initial-advertise-peer-urls',
        m.peerUrl,
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        `flockserve-test-${process.pid}`,
        '--heartbeat-interval',
        '50',
        '--election-timeout',
        '500',
        '--logger',
        'zap',
        '--log-level',
        'error',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    // Read stderr as it comes: a pipe nobody reads fills up and then blocks the member.
    proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      m.stderrTail.push(...chunk.split('\n').filter(Boolean));
      m.stderrTail.splice(0, Math.max(0, m.stderrTail.length - STDERR_LINES));
    });
    proc.on('exit', () => (m.running = false));
    m.proc = proc;
    m.running = true;
  };
  const answers = async (m: Member): Promise<boolean> => {
    try {
      const res = await fetch(`${m.clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
      return res.ok && ((await res.json()) as { health?: string }).health === 'true';
    } catch {
      return false;
    }
  };
  const healthy = async (): Promise<void> => {
    await waitFor(
      async () => (await Promise.all(members.filter((m) => m.running).map(answers))).every(Boolean),
      'etcd members healthy',
      20_000,
    );
  };
  for (const m of members) launch(m);
  await healthy();
  const kill = async (m: Member): Promise<void> => {
    const proc = m.proc;
    if (!proc || !m.running) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGKILL');
    await exited;
  };
  return {
    endpoints: members.map((m) => m.clientUrl),
    members,
    kill: (i) => kill(members[i]!),
    async restart(i) {
      const m = members[i]!;
      if (m.running) return;
      m.stderrTail.length = 0;
      launch(m);
      await waitFor(
        async () => {
          if (!m.running) throw new Error(`etcd member ${m.name} exited on restart:\n${m.stderrTail.join('\n')}`);
          return answers(m);
        },
        () => `etcd member ${m.name} back (its stderr: ${m.stderrTail.join(' | ') || 'nothing'})`,
        20_000,
      );
    },
    pause: (i) => void members[i]!.proc?.kill('SIGSTOP'),
    resume: (i) => void members[i]!.proc?.kill('SIGCONT'),
    healthy,
    async close() {
      for (const m of members) m.proc?.kill('SIGCONT');
      await Promise.all(members.map(kill));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
