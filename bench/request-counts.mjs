#!/usr/bin/env node
// What one proxy-bound request costs each Node gateway, in counts that hold at any machine load:
// PA's load (4 light workers, `wrk -t1 -c64`, 8-token answers at once) through the Node floor and
// one or more FlockServe builds in turns, per request answered in a fixed window:
//   - CPU: user and system time of the process (/proc/PID/stat), and per thread (main, V8's
//     helpers, libuv's pool); minor page faults; voluntary and involuntary context switches
//   - GC: scavenges and mark-compacts, their pause, and the bytes allocated (`--trace-gc-nvp`;
//     with FlockServe's 64 MiB semi-space a window holds a few scavenges, so bytes per request
//     are good to about one scavenge's worth)
//   - the response the client reads: header lines, body bytes, chunked or not
//   --strace  system calls by name (`strace -c -f -p PID`, a second window of the same load) and
//             the connections to the workers open before and after it
//   --async   async resources created, by type (PROMISE, TickObject, Timeout, Immediate ...;
//             bench/lib/async-counts.mjs preloaded): the hook slows the process, so a run with it
//             counts, its CPU figures do not
//   --perf    a third window under `perf record -e cpu-clock` (CPU time samples, not wall time:
//             preemption on a loaded machine is not charged to whatever ran next), with
//             `--perf-basic-prof` for JS names: `perf report -i FILE --no-children --sort dso,sym`
//             (PERF_CALLGRAPH=1 records call stacks too)
//
//   npm run build && node bench/request-counts.mjs [--seconds 5] [--rounds 3] [--strace] [--async] [--perf]
//       [--base DIR/dist] [--variant="NODE FLAGS"]
// --base DIR/dist: a second FlockServe build measured in the same rounds (another checkout's
//   `dist`; DIR needs the project's package.json and node_modules, a copy or a link)
// --variant="FLAGS": this build again with these node flags after its own (e.g. other GC sizes)
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, staticGatewayArgs } from './lib/fleet.mjs';
import { shebangNodeArgs } from './lib/procs.mjs';
import { wrk } from './lib/wrk.mjs';

const ROOT = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    strace: { type: 'boolean', default: false },
    base: { type: 'string' },
    connections: { type: 'string', default: '64' },
    perf: { type: 'boolean', default: false },
    async: { type: 'boolean', default: false },
    variant: { type: 'string', multiple: true, default: [] },
  },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const connections = Number(values.connections);
const tmp = mkdtempSync(join(tmpdir(), 'flockserve-counts-'));
const HOSTS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
const PERF_HZ = 2000;
const TICK = 100; // USER_HZ: /proc's clock ticks per second on Linux
const children = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let started = 0;
function start(args, ready) {
  const countsFile = join(tmp, `async-${started++}.json`);
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, BENCH_ASYNC_COUNTS: countsFile },
  });
  children.push(child);
  const out = { text: '', length: 0, gc: [], countsFile };
  const onLine = (line) => {
    const m = /pause=([\d.]+) .*?gc=(\w+) .*?allocated=(\d+)/.exec(line);
    if (m) out.gc.push({ pause: Number(m[1]), kind: m[2], allocated: Number(m[3]) });
  };
  let partial = '';
  child.stdout.on('data', (c) => {
    const lines = (partial + c).split('\n');
    partial = lines.pop();
    for (const l of lines) {
      if (out.text.length < 100_000) out.text += `${l}\n`;
      onLine(l);
    }
  });
  child.stderr.on('data', (c) => (out.text.length < 100_000 ? (out.text += c) : undefined));
  return new Promise((res, rej) => {
    const t = setInterval(() => {
      if (ready.test(out.text)) {
        clearInterval(t);
        res({ child, out });
      }
    }, 50);
    child.once('exit', (code) => rej(new Error(`${args.join(' ')} exited ${code}\n${out.text}`)));
  });
}

const workerPort = await freePort();
const workers = HOSTS.map((h) => `${h}:${workerPort}`);

/** utime and stime in ticks of a process and of each of its threads, by thread name. */
function cpu(pid) {
  const stat = (path) => {
    const s = readFileSync(path, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return {
      name: s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')),
      minflt: Number(f[7]),
      utime: Number(f[11]),
      stime: Number(f[12]),
    };
  };
  const threads = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const t = stat(`/proc/${pid}/task/${tid}/stat`);
      // Threads of one kind (V8's DefaultWorker, libuv-worker) are summed under their name.
      const name = tid === String(pid) ? 'main' : t.name.replace(/\d+$/, '').trim();
      threads[name] ??= { utime: 0, stime: 0 };
      threads[name].utime += t.utime;
      threads[name].stime += t.stime;
    } catch {
      // a thread that ended between the listing and the read
    }
  }
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return {
    ...stat(`/proc/${pid}/stat`),
    threads,
    voluntary: field('voluntary_ctxt_switches'),
    involuntary: field('nonvoluntary_ctxt_switches'),
  };
}

const diff = (a, b) => {
  const threads = {};
  for (const [k, v] of Object.entries(b.threads)) {
    const o = a.threads[k] ?? { utime: 0, stime: 0 };
    threads[k] = { utime: v.utime - o.utime, stime: v.stime - o.stime };
  }
  return {
    utime: b.utime - a.utime,
    stime: b.stime - a.stime,
    minflt: b.minflt - a.minflt,
    voluntary: b.voluntary - a.voluntary,
    involuntary: b.involuntary - a.involuntary,
    threads,
  };
};

/** Established TCP connections to the workers' port. */
function workerConnections() {
  return new Promise((res) =>
    execFile('ss', ['-Htn', 'state', 'established', `( dport = :${workerPort} )`], (err, out) =>
      res(err ? NaN : out.split('\n').filter(Boolean).length),
    ),
  );
}

function strace(pid, ms) {
  const file = join(tmp, `strace-${pid}-${Date.now()}.txt`);
  const child = spawn('strace', ['-c', '-f', '-o', file, '-p', String(pid)], { stdio: 'ignore' });
  return {
    done: sleep(ms).then(
      () =>
        new Promise((res) => {
          child.once('exit', () => {
            const calls = {};
            for (const line of readFileSync(file, 'utf8').split('\n')) {
              const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$/.exec(line);
              if (m && m[2] !== 'total') calls[m[2]] = Number(m[1]);
            }
            res(calls);
          });
          child.kill('SIGINT');
        }),
    ),
  };
}

/** The raw bytes of one answer: status line, headers and body as the client reads them. */
function rawAnswer(url, body) {
  return new Promise((res, rej) => {
    const u = new URL(url);
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
      },
      (r) => {
        let n = 0;
        r.on('data', (c) => (n += c.length));
        r.on('end', () =>
          res({
            headers: r.rawHeaders.length / 2,
            raw: r.rawHeaders,
            bodyBytes: n,
            chunked: r.headers['transfer-encoding'] === 'chunked',
          }),
        );
      },
    );
    req.on('error', rej);
    req.end(body);
  });
}

const gcFlags = [
  '--trace-gc-nvp',
  ...(values.perf ? ['--perf-basic-prof', '--no-logfile-per-isolate', `--logfile=${join(tmp, 'v8.log')}`] : []),
  ...(values.async ? ['--import', join(ROOT, 'bench/lib/async-counts.mjs')] : []),
];
const floorScript = join(ROOT, 'bench/lib/node-floor.mjs');
const body = JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'hello' }], max_tokens: 8 });

async function main() {
  await Promise.all(
    HOSTS.map((h) =>
      start(
        [
          join(ROOT, 'bench/lib/light-worker.mjs'),
          '--host',
          h,
          '--port',
          String(workerPort),
          '--delay-ms',
          '0',
          '--tokens',
          '8',
        ],
        /listening on/,
      ),
    ),
  );
  const targets = [];
  const floorPort = await freePort();
  targets.push({
    name: 'floor',
    port: floorPort,
    ...(await start(
      [...gcFlags, floorScript, '--port', String(floorPort), '--workers', workers.join(',')],
      /listening on/,
    )),
  });
  const builds = [
    ['FlockServe', join(ROOT, 'dist'), []],
    ...(values.base ? [['FlockServe base', resolve(values.base), []]] : []),
    ...values.variant.map((v) => [`FlockServe ${v}`, join(ROOT, 'dist'), v.split(' ').filter(Boolean)]),
  ];
  for (const [name, dist, nodeArgs] of builds) {
    const port = await freePort();
    const t = await start(
      [
        ...shebangNodeArgs(join(dist, 'cli/flockserve.js')),
        ...nodeArgs,
        ...gcFlags,
        join(dist, 'cli/flockserve.js'),
        ...staticGatewayArgs({ workers: workers.map((w) => `http://${w}`), port, grpcPort: await freePort() }),
        ...['--min_workers', '4', '--max_workers', '4', '--worker_capacity', '4096'],
      ],
      /listening on/,
    );
    for (;;) {
      const s = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.json());
      if (s.ready_worker_count === 4) break;
      await sleep(200);
    }
    targets.push({ name, port, ...t });
  }
  for (const t of targets) {
    t.url = `http://127.0.0.1:${t.port}/v1/chat/completions`;
    t.answer = await rawAnswer(t.url, body);
    console.log(
      `${t.name}: ${t.answer.headers} headers, ${t.answer.bodyBytes} body bytes${t.answer.chunked ? ', chunked' : ''}: ${JSON.stringify(t.answer.raw)}`,
    );
    // Warm-up in two runs, as bench/datapath.mjs: the end of a wrk run takes paths the first did not.
    for (let i = 0; i < 2; i++) await wrk({ dir: tmp, url: t.url, body, connections, seconds: 2 });
    t.rounds = [];
  }
  for (let round = 1; round <= rounds; round++) {
    for (const t of targets) {
      await sleep(500);
      const pid = t.child.pid;
      const asyncCounts = async () => {
        if (!values.async) return {};
        rmSync(t.out.countsFile, { force: true });
        process.kill(pid, 'SIGUSR2');
        for (let i = 0; i < 100 && !existsSync(t.out.countsFile); i++) await sleep(20);
        await sleep(20);
        return JSON.parse(readFileSync(t.out.countsFile, 'utf8'));
      };
      const a0 = await asyncCounts();
      const gc0 = t.out.gc.length;
      const c0 = cpu(pid);
      const r = await wrk({ dir: tmp, url: t.url, body, connections, seconds });
      const c = diff(c0, cpu(pid));
      const a1 = await asyncCounts();
      const gcs = t.out.gc.slice(gc0);
      const n = Math.round(r.rps * seconds);
      const m = {
        requests: n,
        rps: r.rps,
        userUs: (c.utime * 1e6) / TICK / n,
        sysUs: (c.stime * 1e6) / TICK / n,
        threads: Object.fromEntries(
          Object.entries(c.threads).map(([k, v]) => [k, ((v.utime + v.stime) * 1e6) / TICK / n]),
        ),
        pageFaults: c.minflt / n,
        voluntarySwitches: c.voluntary / n,
        involuntarySwitches: c.involuntary / n,
        asyncResources: Object.fromEntries(
          Object.keys(a1)
            .map((k) => [k, (a1[k] - (a0[k] ?? 0)) / n])
            .filter(([, v]) => v >= 0.005)
            .sort((a, b) => b[1] - a[1])
            .map(([k, v]) => [k, Number(v.toFixed(2))]),
        ),
        scavenges: gcs.filter((g) => g.kind === 's').length,
        markCompacts: gcs.filter((g) => g.kind !== 's').length,
        gcPauseUs: (gcs.reduce((s, g) => s + g.pause, 0) * 1000) / n,
        allocatedBytes: gcs.reduce((s, g) => s + g.allocated, 0) / n,
      };
      if (values.strace) {
        await sleep(500);
        const conns0 = await workerConnections();
        const st = strace(pid, seconds * 1000);
        const r2 = await wrk({ dir: tmp, url: t.url, body, connections, seconds });
        const calls = await st.done;
        const n2 = Math.round(r2.rps * seconds);
        m.straceRequests = n2;
        m.syscalls = Object.fromEntries(
          Object.entries(calls)
            .sort((a, b) => b[1] - a[1])
            .map(([k, v]) => [k, Number((v / n2).toFixed(3))]),
        );
        m.workerConnections = [conns0, await workerConnections()];
      }
      if (values.perf) {
        await sleep(500);
        const file = join(tmp, `perf-${t.name.replace(/\W/g, '')}-${round}.data`);
        const rec = spawn(
          'perf',
          [
            'record',
            ...(process.env.PERF_CALLGRAPH ? ['-g'] : []),
            '-e',
            'cpu-clock',
            '-F',
            String(PERF_HZ),
            '-o',
            file,
            '-p',
            String(pid),
          ],
          { stdio: 'ignore' },
        );
        await sleep(300);
        const r3 = await wrk({ dir: tmp, url: t.url, body, connections, seconds });
        await new Promise((res) => {
          rec.once('exit', res);
          rec.kill('SIGINT');
        });
        m.perfRequests = Math.round(r3.rps * seconds);
        m.perfFile = file;
        console.log(`  perf record: ${file} (${m.perfRequests} requests)`);
      }
      t.rounds.push(m);
      console.log(
        `round ${round} ${t.name}: ${r.rps.toFixed(0)} req/s, user ${m.userUs.toFixed(1)} sys ${m.sysUs.toFixed(1)} us/req, threads ${JSON.stringify(
          Object.fromEntries(Object.entries(m.threads).map(([k, v]) => [k, Number(v.toFixed(1))])),
        )}, ${(m.allocatedBytes / 1024).toFixed(2)} KiB/req, scavenges ${m.scavenges} mc ${m.markCompacts} pause ${m.gcPauseUs.toFixed(2)} us/req, page faults ${m.pageFaults.toFixed(2)}/req, ctx switches ${m.voluntarySwitches.toFixed(3)} + ${m.involuntarySwitches.toFixed(3)}/req`,
      );
      if (values.async) console.log(`  async resources per request: ${JSON.stringify(m.asyncResources)}`);
      if (m.syscalls)
        console.log(
          `  syscalls per request (${m.straceRequests} requests): ${JSON.stringify(m.syscalls)}; worker connections ${m.workerConnections}`,
        );
    }
  }
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log('\nmedians per request');
  for (const t of targets) {
    const k = (f) => med(t.rounds.map(f));
    console.log(
      `${t.name.padEnd(16)} req/s ${k((m) => m.rps).toFixed(0)}  cpu ${k((m) => m.userUs + m.sysUs).toFixed(1)} us (user ${k((m) => m.userUs).toFixed(1)}, sys ${k((m) => m.sysUs).toFixed(1)})  alloc ${(k((m) => m.allocatedBytes) / 1024).toFixed(2)} KiB  scavenges/1k req ${k((m) => (1000 * m.scavenges) / m.requests).toFixed(2)}`,
    );
  }
}

try {
  await main();
} finally {
  for (const c of children) c.kill('SIGTERM');
}
