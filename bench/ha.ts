/**
 * Several gateways, one fleet: what it costs and what it gives. Parts, each runnable alone:
 *
 *   failover  SIGKILL the leader of 3 replicas (real 3-member etcd, fake `sky` workers) under
 *             steady load, N trials: time to the new leader's election and to its first fleet
 *             action (its first fenced fleet write, seen by watching etcd), and the client
 *             requests that failed meanwhile. The killed replica is started again between trials.
 *   hung      3 replicas at steady load; each etcd member in turn SIGSTOPped (it hangs: its
 *             connections stay open, nothing is answered) for --hang seconds while flockctl
 *             asks a follower to change max_workers once a second: how many such calls were
 *             answered, how long they took, and the client requests that failed.
 *   writes    3 replicas at steady load: etcd writes per second, by key (watched), and raft
 *             proposals committed per second (etcd's own counter).
 *   cpu       one gateway over 4 simulator workers (--provisioner static), phase A of
 *             bench/datapath.mjs (non-streaming chat, wrk -c64): its CPU per request with the
 *             in-process coordinator and with etcd, in alternating rounds.
 *   scaleout  phase A through haproxy in TCP mode in front of 1, then 2 etcd replicas:
 *             requests/s, p99, CPU per request. Needs a quiet machine (wall-clock throughput).
 *
 *   npx tsc -p tsconfig.build.json && npx vite-node bench/ha.ts [--parts failover,hung,writes,cpu,scaleout]
 *        [--trials 10] [--ttl 5] [--seconds 10] [--warmup 5] [--rounds 3] [--out bench/results/ha.md]
 *
 * Each part replaces its own section of the results file; the others stay as they were.
 * etcd (etcd-server), haproxy and wrk are installed with apt-get when missing.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import { parseFleet, parseLeader } from '../src/coordination/etcd-keys.js';
import { staticGatewayArgs } from './lib/fleet.mjs';
import { startEtcd, type EtcdCluster } from '../test/helpers/etcd.js';
import { startLoad, startReplicas, type Replica, type ReplicaSet } from '../test/helpers/replicas.js';
import { waitFor } from '../test/helpers/wait.js';
import { freePort } from './lib/fleet.mjs';
import { cpuSeconds, median } from './lib/load.mjs';
import { openFileLimit } from './lib/nofile.mjs';
import { ROOT, processTree, startCli, stop, waitHttp } from './lib/procs.mjs';
import { ensureTools, startProxy } from './lib/proxies.mjs';
import { wrk } from './lib/wrk.mjs';

const { values } = parseArgs({
  options: {
    parts: { type: 'string', default: 'failover,writes,cpu' },
    hang: { type: 'string', default: '15' },
    trials: { type: 'string', default: '10' },
    ttl: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    out: { type: 'string', default: join(ROOT, 'bench/results/ha.md') },
  },
});
const parts = new Set(values.parts.split(','));
const TRIALS = Number(values.trials);
const TTL = Number(values.ttl);
const SECONDS = Number(values.seconds);
const WARMUP = Number(values.warmup);
const ROUNDS = Number(values.rounds);
const HANG_S = Number(values.hang);
const log = (...a: unknown[]): void => console.log(new Date().toISOString().slice(11, 19), ...a);
const ms = (x: number): string => `${Math.round(x)} ms`;
const sections = new Map<string, string>();

ensureTools();
if (!existsSync('/usr/bin/etcd')) {
  execFileSync('apt-get', ['install', '-y', 'etcd-server'], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}
const etcd: EtcdCluster = await startEtcd(3);
try {
  if (parts.has('failover')) sections.set('failover', await failover());
  if (parts.has('hung')) sections.set('hung', await hung());
  if (parts.has('writes')) sections.set('writes', await writes());
  if (parts.has('cpu') || parts.has('scaleout')) {
    const { cpu, scaleout } = await dataPath();
    if (cpu) sections.set('cpu', cpu);
    if (scaleout) sections.set('scaleout', scaleout);
  }
} finally {
  await etcd.close();
}
writeResults();
process.exit(0);

// ---- failover ------------------------------------------------------------------------------

async function failover(): Promise<string> {
  log(`failover: ${TRIALS} trials, lease TTL ${TTL} s`);
  const set = await startReplicas({ etcd: etcd.endpoints, leaseTtl: TTL, verbosity: 0 });
  const watch = await watchKeys(set.prefix);
  const load = startLoad(() => set.running(), 8);
  const trials: { elected: number; action: number; failed: number; sent: number }[] = [];
  let ledgerAtFirstKill = 0;
  let ledgerAtEnd = 0;
  try {
    await fleetReady(set);
    ledgerAtFirstKill = set.sky.ledger().length;
    for (let trial = 1; trial <= TRIALS; trial++) {
      const old = (await set.leader())!;
      const sentBefore = load.sent;
      const failedBefore = load.failures.length;
      const killedAt = Date.now();
      old.signal('SIGKILL');
      const elected = await watch.next(
        (e) => e.key === 'leader' && e.leader !== undefined && e.leader !== old.name,
        killedAt,
      );
      const action = await watch.next(
        (e) => e.key === 'fleet' && e.leader !== undefined && e.leader !== old.name,
        killedAt,
      );
      await old.exit;
      // The clients' view: the requests that failed from the kill until the new leader acted.
      const failed = load.failures.slice(failedBefore).filter((f) => f.at <= action.at).length;
      trials.push({
        elected: elected.at - killedAt,
        action: action.at - killedAt,
        failed,
        sent: load.sent - sentBefore,
      });
      log(
        `trial ${trial}: ${old.name} killed; ${elected.leader} elected after ${ms(elected.at - killedAt)}, first fleet write after ${ms(action.at - killedAt)}; ${failed} requests failed`,
      );
      await set.add();
      await waitFor(
        async () => (await set.leader()) !== undefined && set.running().length === 3,
        'three replicas, one leader',
        30_000,
      );
    }
  } finally {
    ledgerAtEnd = set.sky.ledger().length;
    await load.stop();
    await set.stopAll();
    await watch.close();
    set.sky.killJobs();
  }
  // What the fake sky did from the first kill on, before the final shutdown tore the fleet down.
  const during = set.sky.ledger().slice(ledgerAtFirstKill, ledgerAtEnd);
  const launchesDuring = during.filter((e) => e.argv[0] === 'launch').length;
  const downsDuring = during.filter((e) => e.argv[0] === 'down').length;
  const col = (k: 'elected' | 'action' | 'failed'): number[] => trials.map((t) => t[k]);
  const stat = (xs: number[], f: (x: number) => string): string =>
    `${f(Math.min(...xs))} / ${f(median(xs))} / ${f(Math.max(...xs))}`;
  return `## Failover: SIGKILL of the leader

3 replicas (\`--etcd_lease_ttl ${TTL}\`), a 3-member etcd, 2 workers made by the fake \`sky\`, 8 clients
sending completions to the replicas in turn (a refused connection is tried on the next replica, as an
L4 balancer does). Each trial SIGKILLs the leader, then starts a replica again. Times from the kill,
as etcd's watch saw them. ${TRIALS} trials.

| | min / median / max |
| --- | --- |
| new leader elected (its leader key) | ${stat(col('elected'), ms)} |
| its first fleet action (the takeover's fenced fleet write) | ${stat(col('action'), ms)} |
| requests failed at the clients, per trial | ${stat(col('failed'), String)} |

Per trial (ms to election, ms to first fleet action, requests failed of those sent in the trial):
${trials.map((t, i) => `${i + 1}: ${Math.round(t.elected)}, ${Math.round(t.action)}, ${t.failed} of ${t.sent}`).join('; ')}.

The election waits for the dead leader's lease to run out: at most the TTL after its last keepalive
(sent every TTL/3), so ${Math.round((2 / 3) * TTL * 1000)}–${TTL * 1000} ms after the kill, plus the watch and a transaction. The
takeover adds \`sky status\` (adoption) and one fenced write. The requests that failed are those in
flight on the killed replica: its clients' connections closed at once (no hang); the two other
replicas served throughout. From the first kill to the final shutdown the fake \`sky\` saw ${launchesDuring}
launches and ${downsDuring} teardowns: each new leader adopted the running workers.
`;
}

// ---- hung ----------------------------------------------------------------------------------

async function hung(): Promise<string> {
  log(`hung: each etcd member stopped for ${HANG_S} s, ${ROUNDS} rounds, lease TTL ${TTL} s`);
  const set = await startReplicas({ etcd: etcd.endpoints, leaseTtl: TTL, verbosity: 0 });
  const load = startLoad(() => set.running(), 8);
  const hangs: { member: number; calls: { ms: number; ok: boolean; why: string }[]; failed: number; sent: number }[] =
    [];
  let max = 10;
  try {
    await fleetReady(set);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const member of [0, 1, 2]) {
        const failedBefore = load.failures.length;
        const sentBefore = load.sent;
        const calls: { ms: number; ok: boolean; why: string }[] = [];
        etcd.pause(member);
        const until = Date.now() + HANG_S * 1000;
        try {
          while (Date.now() < until) {
            const leader = await set.leader();
            const follower = set.running().find((r) => r !== leader) ?? set.running()[0]!;
            max = max === 19 ? 10 : max + 1;
            const at = Date.now();
            const r = await flockctl(follower, ['scale', '--max', String(max)]);
            calls.push({ ms: Date.now() - at, ok: r.ok, why: r.why });
            await sleep(Math.max(0, 1000 - (Date.now() - at)));
          }
        } finally {
          etcd.resume(member);
        }
        await etcd.healthy();
        const h = { member, calls, failed: load.failures.length - failedBefore, sent: load.sent - sentBefore };
        hangs.push(h);
        const oks = calls.filter((c) => c.ok);
        log(
          `round ${round}, member ${member} stopped: ${oks.length} of ${calls.length} node control calls answered (longest ${ms(Math.max(...calls.map((c) => c.ms)))}), ${h.failed} requests failed`,
        );
      }
    }
  } finally {
    await load.stop();
    await set.stopAll();
    set.sky.killJobs();
  }
  const all = hangs.flatMap((h) => h.calls);
  const answered = all.filter((c) => c.ok);
  const refusals = new Map<string, number>();
  for (const c of all) if (!c.ok) refusals.set(c.why, (refusals.get(c.why) ?? 0) + 1);
  const pct = (xs: number[], q: number): number =>
    [...xs].sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))] ?? NaN;
  const lat = all.map((c) => c.ms);
  return `## A hung etcd member

3 replicas (\`--etcd_lease_ttl ${TTL}\`), a 3-member etcd, 2 workers made by the fake \`sky\`, 8 clients
sending completions to the replicas in turn. Each etcd member in turn is SIGSTOPped for ${HANG_S} s (it
hangs: its connections stay open and nothing on them is answered, as behind a partition that drops
packets), ${ROUNDS} rounds. Meanwhile \`flockctl scale --max N\` goes to a follower once a second
(node control through the leader, over etcd).

| | |
| --- | --- |
| node control calls answered | ${answered.length} of ${all.length} |
| their time, median / p90 / max | ${ms(pct(lat, 0.5))} / ${ms(pct(lat, 0.9))} / ${ms(Math.max(...lat))} |
| refused (explicit error), by message | ${refusals.size === 0 ? 'none' : [...refusals].map(([why, n]) => `${n} × "${why}"`).join('; ')} |
| requests failed at the clients | ${hangs.reduce((t, h) => t + h.failed, 0)} of ${hangs.reduce((t, h) => t + h.sent, 0)} |

Per hang (member: answered of calls, longest call ms, requests failed):
${hangs.map((h) => `${h.member}: ${h.calls.filter((c) => c.ok).length} of ${h.calls.length}, ${Math.max(...h.calls.map((c) => c.ms))}, ${h.failed}`).join('; ')}.
`;
}

/** Runs flockctl against a replica's gRPC port; ok, or the first line of what it said. */
function flockctl(r: Replica, args: string[]): Promise<{ ok: boolean; why: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, 'dist/cli/flockctl.js'), '-a', `127.0.0.1:${r.grpcPort}`, '-k', 'k', '--timeout', '40', ...args],
      (err, stdout, stderr) =>
        resolve({ ok: !err, why: err ? (stderr || stdout || err.message).split('\n')[0]!.slice(0, 160) : '' }),
    );
  });
}

// ---- writes --------------------------------------------------------------------------------

async function writes(): Promise<string> {
  const seconds = Math.max(20, SECONDS);
  log(`writes: 3 replicas at steady load for ${seconds} s, lease TTL ${TTL} s`);
  const set = await startReplicas({ etcd: etcd.endpoints, leaseTtl: TTL, verbosity: 0 });
  let result = '';
  try {
    await fleetReady(set);
    const load = startLoad(() => set.running(), 8);
    await sleep(3000); // every replica's load is in flight and published
    const watch = await watchKeys(set.prefix);
    const proposals0 = await committedProposals(etcd.endpoints[0]!);
    const sent0 = load.sent;
    await sleep(seconds * 1000);
    const proposals = (await committedProposals(etcd.endpoints[0]!)) - proposals0;
    const sent = load.sent - sent0;
    const events = watch.events.slice();
    await watch.close();
    await load.stop();
    const by = (prefix: string): number => events.filter((e) => e.key.startsWith(prefix)).length / seconds;
    const all = events.length / seconds;
    result = `## Cost of coordination: etcd writes at steady load

3 replicas (\`--etcd_lease_ttl ${TTL}\`), 2 workers, 8 clients: ${(sent / seconds).toFixed(0)} requests/s over ${seconds} s.

| writes per second | |
| --- | --- |
| all keys of the service (watched puts and deletes) | ${all.toFixed(2)} |
| load/<replica> (each replica's queue length and in flight per worker) | ${by('load/').toFixed(2)} |
| fleet (the leader's fenced writes) | ${by('fleet').toFixed(2)} |
| leader, replicas/, commands/, results/ | ${(by('leader') + by('replicas/') + by('commands/') + by('results/')).toFixed(2)} |
| raft proposals committed (etcd_server_proposals_committed_total) | ${(proposals / seconds).toFixed(2)} |

Besides these, each replica sends a lease keepalive every TTL/3: ${((3 * 3) / TTL).toFixed(1)} per second for
the 3 (not raft writes: the etcd leader renews leases without a proposal). A replica writes its load
at most once a second and only when it changed, so at steady load that is about 1 write per second
per replica, whatever the request rate; the fleet is written only when a worker changes state, the
target or the bounds change. Writes do not grow with requests/s.
`;
  } finally {
    await set.stopAll();
    set.sky.killJobs();
  }
  return result;
}

// ---- data path: CPU per request, scale-out -----------------------------------------------------

async function dataPath(): Promise<{ cpu?: string; scaleout?: string }> {
  const SIM_PORT = 18600;
  const HOSTS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
  const workers = HOSTS.map((h) => `http://${h}:${SIM_PORT}`);
  const tmp = mkdtempSync('/tmp/flockserve-ha-bench-');
  const sims = await Promise.all(
    HOSTS.map((h) =>
      startCli(
        'flockserve-sim',
        ['--host', h, '--port', String(SIM_PORT), '--token-interval', '0', '--max-num-seqs', '1024'],
        /listening on/,
      ),
    ),
  );
  const body = JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'hello' }], max_tokens: 8 });
  const out: { cpu?: string; scaleout?: string } = {};
  try {
    if (parts.has('cpu')) out.cpu = await cpuPart(workers, tmp, body);
    if (parts.has('scaleout')) out.scaleout = await scaleOutPart(workers, tmp, body);
  } finally {
    await Promise.all(sims.map((s) => stop(s.child)));
  }
  return out;
}

/** The flags of a gateway over the static workers that never queues (as bench/datapath.mjs runs it). */
function gatewayArgs(workers: string[], port: number): string[] {
  return [
    ...staticGatewayArgs({ workers, port, grpcPort: port + 50 }),
    ...['--worker_capacity', '4096', '--max_queue_length', '8192', '--status_log_interval', '0'],
  ];
}

async function cpuPart(workers: string[], tmp: string, body: string): Promise<string> {
  log('cpu: one gateway, in-process coordinator vs etcd');
  const load0 = loadavg()[0]!.toFixed(1);
  const port = 18610;
  const variants = [
    { name: 'in-process (no etcd)', args: [] as string[] },
    {
      name: 'etcd (one replica, 3-member etcd)',
      args: [
        '--etcd_endpoints',
        etcd.endpoints.join(','),
        '--etcd_prefix',
        `/flockserve-bench/cpu-${process.pid}/`,
        '--replica_name',
        'solo',
      ],
    },
  ];
  const runs = new Map(variants.map((v) => [v.name, [] as { rps: number; p99: number; cpuUs: number }[]]));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const v of variants) {
      const gw = await startCli('flockserve', [...gatewayArgs(workers, port), ...v.args], /listening on/);
      try {
        await waitHttp(
          `http://127.0.0.1:${port}/`,
          async (r) => ((await r.json()) as { ready_worker_count: number }).ready_worker_count === 4,
        );
        const url = `http://127.0.0.1:${port}/v1/chat/completions`;
        await wrk({ dir: tmp, url, body, connections: 64, seconds: WARMUP });
        await sleep(1000);
        const cpu0 = cpuOf(gw.child.pid!);
        const r = await wrk({ dir: tmp, url, body, connections: 64, seconds: SECONDS });
        const cpuUs = ((cpuOf(gw.child.pid!) - cpu0) * 1e6) / (r.rps * SECONDS);
        runs.get(v.name)!.push({ rps: r.rps, p99: r.p99, cpuUs });
        log(
          `cpu round ${round} ${v.name}: ${r.rps.toFixed(0)} req/s, p99 ${r.p99} ms, ${cpuUs.toFixed(0)} us CPU per request, errors ${r.errors}`,
        );
      } finally {
        await stop(gw.child);
      }
    }
  }
  const row = (name: string): string => {
    const rs = runs.get(name)!;
    const m = (k: 'rps' | 'p99' | 'cpuUs'): number => median(rs.map((r) => r[k]));
    return `| ${name} | ${m('cpuUs').toFixed(0)} (${rs.map((r) => r.cpuUs.toFixed(0)).join(', ')}) | ${m('rps').toFixed(0)} | ${m('p99').toFixed(1)} |`;
  };
  return `## Cost of coordination: the gateway's CPU per request

One gateway over 4 simulator workers (\`--provisioner static\`), phase A of bench/datapath.mjs:
non-streaming chat, \`max_tokens\` 8, worker delay 0, \`wrk -t1 -c64\`, ${SECONDS} s after ${WARMUP} s of warm-up,
${ROUNDS} rounds taking turns; medians (each round in brackets). CPU is the gateway process's user +
system time over the measured run. ${cpus().length} cores, shared with other work: the load average was
${load0} at the start and ${loadavg()[0]!.toFixed(1)} at the end. With the machine busy, a round's numbers move by 2x
from one minute to the next: compare within a round, and rerun on a quiet machine for a figure.

| coordinator | CPU per request (us) | requests/s | p99 (ms) |
| --- | --- | --- | --- |
${variants.map((v) => row(v.name)).join('\n')}

With etcd the request path does the same work: the other replicas' load reaches the load index about
once a second, off the request path, and a lone replica writes its load once a second when it changed.
`;
}

async function scaleOutPart(workers: string[], tmp: string, body: string): Promise<string> {
  log('scaleout: haproxy (TCP) in front of 1, then 2 replicas');
  const load0 = loadavg()[0]!.toFixed(1);
  // haproxy sizes maxconn to the files it may open, and refuses to start above the limit it is given.
  const nofile = Math.min(65536, openFileLimit());
  const results: {
    replicas: number;
    rps: number[];
    p99: number[];
    cpuUs: number[];
    haproxyUs: number[];
    spread: number[];
    errors: number[];
  }[] = [];
  for (const n of [1, 2]) {
    const ports = Array.from({ length: n }, (_, i) => 18620 + i * 2);
    const prefix = `/flockserve-bench/scaleout-${process.pid}-${n}/`;
    const gws = [];
    for (const [i, p] of ports.entries()) {
      gws.push(
        await startCli(
          'flockserve',
          [
            ...gatewayArgs(workers, p),
            '--etcd_endpoints',
            etcd.endpoints.join(','),
            '--etcd_prefix',
            prefix,
            '--replica_name',
            `r${i}`,
          ],
          /listening on/,
        ),
      );
    }
    const haproxyPort = await freePort();
    const haproxy = await startProxy('haproxy-tcp', join(tmp, `haproxy-${n}`), {
      port: haproxyPort,
      workers: ports.map((p) => `127.0.0.1:${p}`),
      nofile,
    });
    const r = {
      replicas: n,
      rps: [] as number[],
      p99: [] as number[],
      cpuUs: [] as number[],
      haproxyUs: [] as number[],
      spread: [] as number[],
      errors: [] as number[],
    };
    try {
      for (const p of ports) {
        await waitHttp(
          `http://127.0.0.1:${p}/`,
          async (res) => ((await res.json()) as { ready_worker_count: number }).ready_worker_count === 4,
        );
      }
      const url = `http://127.0.0.1:${haproxyPort}/v1/chat/completions`;
      await wrk({ dir: tmp, url, body, connections: 64, seconds: WARMUP });
      for (let round = 1; round <= ROUNDS; round++) {
        await sleep(1000);
        const cpu0 = gws.reduce((s, g) => s + cpuOf(g.child.pid!), 0);
        const h0 = cpuOf(haproxy.pid!);
        const sampling = sampleSpread(workers);
        const w = await wrk({ dir: tmp, url, body, connections: 64, seconds: SECONDS });
        r.spread.push(await sampling.stop());
        r.errors.push(w.errors);
        const requests = w.rps * SECONDS;
        r.rps.push(w.rps);
        r.p99.push(w.p99);
        r.cpuUs.push(((gws.reduce((s, g) => s + cpuOf(g.child.pid!), 0) - cpu0) * 1e6) / requests);
        r.haproxyUs.push(((cpuOf(haproxy.pid!) - h0) * 1e6) / requests);
        log(`scaleout ${n} replica(s) round ${round}: ${w.rps.toFixed(0)} req/s, p99 ${w.p99} ms, errors ${w.errors}`);
      }
    } finally {
      await stop(haproxy);
      await Promise.all(gws.map((g) => stop(g.child)));
    }
    results.push(r);
  }
  const row = (r: (typeof results)[number]): string =>
    `| ${r.replicas} | ${median(r.rps).toFixed(0)} (${r.rps.map((x) => x.toFixed(0)).join(', ')}) | ${median(r.p99).toFixed(1)} | ${median(r.cpuUs).toFixed(0)} | ${median(r.haproxyUs).toFixed(0)} | ${median(r.spread).toFixed(2)} | ${r.errors.join(', ')} |`;
  return `## Scale-out: 1 and 2 replicas behind haproxy (TCP)

Phase A of bench/datapath.mjs (non-streaming chat, \`max_tokens\` 8, worker delay 0, \`wrk -t1 -c64\`) through
haproxy in TCP mode (\`balance leastconn\`, the README's config) in front of 1, then 2 replicas sharing
the fleet through etcd; 4 simulator workers. ${SECONDS} s runs after ${WARMUP} s of warm-up, ${ROUNDS} rounds; medians
(each round in brackets). ${cpus().length} cores: the replicas, haproxy, the workers and wrk share them; the load
average was ${load0} at the start and ${loadavg()[0]!.toFixed(1)} at the end (a quiet machine reads below 1 before the run).

| replicas | requests/s | p99 (ms) | gateways' CPU per request (us) | haproxy's CPU per request (us) | in-flight spread | errors (wrk: socket errors and non-2xx, each round) |
| --- | --- | --- | --- | --- | --- | --- |
${results.map(row).join('\n')}

In-flight spread: how evenly the 4 workers are loaded, sampled every 200 ms during the measured runs:
the mean over samples of (most − fewest requests running on a worker) / (the mean running per worker).
0 is perfectly even; with 2 replicas each counts the other's in flight (published once a second), so
the closer it is to the 1-replica figure, the closer least-connection across replicas is to one gateway's.
`;
}

// ---- helpers -------------------------------------------------------------------------------

/** Samples the workers' running requests every 200 ms; stop() gives the mean relative spread. */
function sampleSpread(workers: string[]): { stop(): Promise<number> } {
  const spreads: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const counts = await Promise.all(
        workers.map(async (w) => ((await (await fetch(`${w}/sim/stats`)).json()) as { running: number }).running),
      );
      const mean = counts.reduce((a, b) => a + b, 0) / counts.length;
      if (mean > 0) spreads.push((Math.max(...counts) - Math.min(...counts)) / mean);
      await sleep(200);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return spreads.length > 0 ? spreads.reduce((a, b) => a + b, 0) / spreads.length : NaN;
    },
  };
}

function cpuOf(pid: number): number {
  return processTree(pid).reduce((s: number, p: number) => s + cpuSeconds(p), 0);
}

async function fleetReady(set: ReplicaSet): Promise<void> {
  await waitFor(
    async () =>
      (await Promise.all(set.running().map((r: Replica) => r.status()))).every((s) => s?.ready_worker_count === 2),
    'two ready workers at every replica',
    60_000,
  );
}

interface KeyEvent {
  readonly key: string;
  readonly at: number;
  /** For leader and fleet puts: the replica named in the value. */
  readonly leader: string | undefined;
}

/** Every put and delete under `prefix`, with when this process saw it (wall ms). */
async function watchKeys(prefix: string) {
  const client = new Etcd3({ hosts: etcd.endpoints });
  const events: KeyEvent[] = [];
  const waiters: { match: (e: KeyEvent) => boolean; since: number; resolve: (e: KeyEvent) => void }[] = [];
  const watcher = await client.namespace(prefix).watch().prefix('').create();
  const seen = (key: string, value: string | undefined): void => {
    const leader =
      value === undefined
        ? undefined
        : key === 'leader'
          ? parseLeader(value)?.id
          : key === 'fleet'
            ? parseFleet(value)?.leader
            : undefined;
    const e: KeyEvent = { key, at: Date.now(), leader };
    events.push(e);
    for (const w of [...waiters]) {
      if (e.at >= w.since && w.match(e)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  };
  watcher.on('put', (kv) => seen(kv.key.toString(), kv.value.toString()));
  watcher.on('delete', (kv) => seen(kv.key.toString(), undefined));
  return {
    events,
    /** The first event since `since` that matches (one already seen counts). */
    next(match: (e: KeyEvent) => boolean, since: number): Promise<KeyEvent> {
      const hit = events.find((e) => e.at >= since && match(e));
      return hit ? Promise.resolve(hit) : new Promise((resolve) => waiters.push({ match, since, resolve }));
    },
    async close() {
      await watcher.cancel();
      client.close();
    },
  };
}

async function committedProposals(endpoint: string): Promise<number> {
  const text = await (await fetch(`${endpoint}/metrics`)).text();
  return Number(/^etcd_server_proposals_committed_total (\S+)$/m.exec(text)?.[1] ?? NaN);
}

function writeResults(): void {
  const file = values.out;
  const head = `# Several gateways, one fleet (etcd)

Written by bench/ha.ts; each part replaces its own section. How the replicas work: README
("Several gateways") and docs/replicas.md.
`;
  const order = ['failover', 'hung', 'writes', 'cpu', 'scaleout'];
  const block = (name: string): RegExp => new RegExp(`<!-- ha:${name}:begin -->[\\s\\S]*?<!-- ha:${name}:end -->\\n?`);
  // Each part's section is replaced where it stands; everything else in the file (other scripts'
  // sections, what was written by hand) stays.
  let text = existsSync(file) ? readFileSync(file, 'utf8') : head;
  for (const [name, body] of sections) {
    const command = `npx tsc -p tsconfig.build.json && npx vite-node bench/ha.ts --parts ${name}${name === 'failover' ? ` --trials ${TRIALS}` : ''}${name === 'hung' ? ` --hang ${HANG_S} --rounds ${ROUNDS}` : ''} --ttl ${TTL}${name === 'cpu' || name === 'scaleout' ? ` --seconds ${SECONDS} --rounds ${ROUNDS}` : ''}`;
    const section = `<!-- ha:${name}:begin -->\n${body}\nMeasured ${new Date().toISOString().slice(0, 16)}Z with \`${command}\`.\n<!-- ha:${name}:end -->\n`;
    const here = block(name).exec(text);
    if (here) {
      text = text.slice(0, here.index) + section + text.slice(here.index + here[0].length);
      continue;
    }
    // A part not written before goes after the nearest earlier part's section, else at the end.
    const before = order
      .slice(0, order.indexOf(name))
      .reverse()
      .map((n) => block(n).exec(text))
      .find((m) => m !== null);
    const at = before ? before.index + before[0].length : text.length;
    text = `${text.slice(0, at)}\n${section}${text.slice(at)}`;
  }
  writeFileSync(file, text);
  log(`wrote ${file}`);
}
