// Simulator workers and a FlockServe gateway over them, as separate processes, for the benches
// that watch the gateway's own memory and file descriptors (hostile, stalled-streams, soak).
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ROOT, rssKiB, startCli, stop, tempDir, waitHttp } from './procs.mjs';
import { startProxy } from './proxies.mjs';

/** A port nobody listens on right now (the kernel's pick). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * A simulator worker on a port of its own, which a bench may kill and start again on the same
 * port (the gateway's static list names it by URL). `start: false` only reserves the port, for
 * an engine that comes up after the gateway already lists it (`sim.start()`).
 */
export async function startSim(args = [], { start = true } = {}) {
  const port = await freePort();
  const sim = {
    port,
    url: `http://127.0.0.1:${port}`,
    child: undefined,
    async start() {
      const { child } = await startCli(
        'flockserve-sim',
        ['--host', '127.0.0.1', '--port', String(port), ...args],
        /listening on/,
      );
      sim.child = child;
    },
    /** SIGKILL: the worker dies with its streams half sent, as a crashed engine does. */
    async kill() {
      const c = sim.child;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    },
    stop: () => (sim.child ? stop(sim.child) : Promise.resolve()),
  };
  if (start) await sim.start();
  return sim;
}

/**
 * The command line of `flockserve --provisioner static` over `workers` (URLs) on 127.0.0.1:
 * quiet (no log lines, no metrics push), the simulator's task file.
 */
export function staticGatewayArgs({ workers, port, grpcPort }) {
  return [
    '--provisioner',
    'static',
    '--workers',
    workers.join(','),
    '--skypilot_task',
    'examples/serving_sim_local.yaml',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--grpc_port',
    String(grpcPort),
    '--metrics_id',
    '-1',
    '--verbosity',
    '0',
  ];
}

/**
 * `flockserve --provisioner static` over `workers` (simulators), started as its bin starts it
 * plus --expose-gc and bench/lib/memory-probe.mjs, so `memory({ gc })` reads its heap and RSS
 * over an IPC channel; `env` is added to its environment. Resolves once `ready` workers (every
 * one by default) are ready.
 */
export async function startGateway({
  workers,
  args = [],
  nodeArgs = [],
  env = {},
  startTimeoutMs,
  ready = workers.length,
}) {
  const [port, grpcPort] = [await freePort(), await freePort()];
  const { child } = await startCli(
    'flockserve',
    [...staticGatewayArgs({ workers: workers.map((w) => w.url), port, grpcPort }), ...args],
    /listening on/,
    env,
    ['--expose-gc', '--import', join(ROOT, 'bench/lib/memory-probe.mjs'), ...nodeArgs],
    { ipc: true, timeoutMs: startTimeoutMs },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/`, async (r) => (await r.json()).ready_worker_count === ready, startTimeoutMs);
  let seq = 0;
  return {
    url,
    grpcAddress: `127.0.0.1:${grpcPort}`,
    child,
    pid: child.pid,
    /** The gateway's memory (bytes), after two full GCs when `gc`; a heap snapshot to the path `snapshot`. */
    memory({ gc = false, snapshot } = {}) {
      const probe = ++seq;
      return new Promise((resolve) => {
        const on = (m) => {
          if (m?.probe !== probe) return;
          child.off('message', on);
          resolve(m);
        };
        child.on('message', on);
        child.send({ probe, gc, snapshot });
      });
    },
    rssMiB: () => rssKiB(child.pid) / 1024,
    /** Open file descriptors of the gateway process. */
    fds: () => readdirSync(`/proc/${child.pid}/fd`).length,
    /** The gateway's TCP sockets by what is at their other end (Linux: /proc/net/tcp*). */
    sockets: () => socketsOf(child.pid, [port, grpcPort], new Set(workers.map((w) => Number(new URL(w.url).port)))),
    /** FlockServe's status JSON (GET /). */
    status: async () => (await fetch(`${url}/`)).json(),
    stop: () => stop(child),
  };
}

/**
 * The TCP sockets among a process's open files, sorted: listening, accepted on one of
 * `ownPorts` (from clients), connected to one of `workerPorts`, or other; and how many of them
 * are in CLOSE_WAIT.
 */
function socketsOf(pid, ownPorts, workerPorts) {
  const inodes = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      /* closed while we read */
    }
  }
  // closeWait: the other end has closed and this process has not (a socket it forgot, if it stays).
  const by = { listening: 0, fromClients: 0, toWorkers: 0, other: 0, closeWait: 0 };
  const port = (addr) => parseInt(addr.split(':')[1], 16);
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || !inodes.has(f[9])) continue;
      if (f[3] === '08') by.closeWait++;
      if (f[3] === '0A') by.listening++;
      else if (ownPorts.includes(port(f[1]))) by.fromClients++;
      else if (workerPorts.has(port(f[2]))) by.toWorkers++;
      else by.other++;
    }
  }
  return by;
}

/**
 * `workers` simulators started with `simArgs`, and a gateway over exactly them (min = max =
 * `workers`, `capacity` requests each) with `args` added; resolves once every worker is ready.
 * `late`: the last `late` simulators are not started yet (their ports are reserved and the gateway
 * lists them, as it lists an engine still booting), and the gateway is ready without them.
 */
export async function startFleet({ workers, simArgs = [], capacity, args = [], late = 0, ...gateway }) {
  const sims = await Promise.all(
    Array.from({ length: workers }, (_, i) => startSim(simArgs, { start: i < workers - late })),
  );
  const n = String(workers);
  const gw = await startGateway({
    ...gateway,
    workers: sims,
    ready: workers - late,
    args: ['--min_workers', n, '--max_workers', n, '--worker_capacity', String(capacity), ...args],
  });
  return { sims, gw };
}

/**
 * `workers` simulators started with `simArgs` behind nginx (least_conn, as proxies.mjs configures
 * it): the engines balanced as a user would balance them without an OpenAI-aware gateway. `close`
 * stops nginx, then the workers.
 */
export async function startNginxFleet({ workers, simArgs = [], nofile = 4096 }) {
  const sims = await Promise.all(Array.from({ length: workers }, () => startSim(simArgs)));
  const stopSims = () => Promise.all(sims.map((s) => s.stop()));
  const port = await freePort();
  let proxy;
  try {
    proxy = await startProxy('nginx', tempDir('nginx-fleet-'), {
      port,
      workers: sims.map((s) => `127.0.0.1:${s.port}`),
      nofile,
    });
  } catch (err) {
    await stopSims();
    throw err;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    sims,
    proxy,
    close: async () => {
      await stop(proxy);
      await stopSims();
    },
  };
}
