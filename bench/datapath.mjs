#!/usr/bin/env node
// The data path side by side: 4 simulator workers on 127.0.0.2–127.0.0.5, and the same load
// straight to one worker (the floor), through nginx, through haproxy and through FlockServe
// (`--provisioner static` over the same 4 workers), in one run. Phases:
//   A  non-streaming chat, worker delay 0,  wrk -t1 -c64
//   B  non-streaming chat, worker delay 20 ms per token, wrk -t1 -c256
//   S  200 concurrent SSE streams × 50 tokens every 10 ms (time to first chunk, chunks/s, completion)
//   G  S over FlockServe's gRPC ChatCompletion stream (compared with FlockServe's own HTTP S)
//   M  10,000 concurrent open streams: proxy RSS per stream
// and, proxy-bound, the same loads over 4 light workers (bench/lib/light-worker.mjs: node:http
// answering from memory, a few µs per request), so the proxies, not the workers, set the pace;
// nginx and haproxy then run one worker process / thread each, as FlockServe and the Node floor
// run one process:
//   PA  as A (8-token answers at once), PB  as B (each answer after 20 ms), PS  as S
// Each proxy's CPU seconds (user + system, all its processes) are read from /proc around each load.
//
//   npm run build && node bench/datapath.mjs [--seconds 10] [--warmup 10] [--settle 1] [--rounds 5] [--phases A,B,S,G,M,PA,PB,PS] [--m-streams 10000]
//        [--profile-dir DIR]   run FlockServe under node --cpu-prof (one .cpuprofile per phase)
//        [--gateway-node-args '--max-old-space-size=512']   node flags for the gateway beside its bin's
//        [--out FILE]          default bench/results/datapath.md
//        [--python-flockserve DIR]   add the original Python FlockServe to PA and PB, from a checkout
//                              (git clone https://github.com/jdoodle-dev/flockserve DIR): bench/lib/python-flockserve.mjs
// nginx, haproxy and wrk are installed with apt-get when missing; the open-file limit is raised
// to 65536 (re-running itself under `ulimit -n`; needs root or a high hard limit).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { cpuSeconds, median } from './lib/load.mjs';
import { openFileLimit, withOpenFileLimit } from './lib/nofile.mjs';
import { ROOT, processTree, rssKiB, startCli, startScript, stop, waitHttp } from './lib/procs.mjs';
import { ensureTools, startProxy, versions } from './lib/proxies.mjs';
import {
  PYTHON_FLOCKSERVE,
  preparePythonFlockServe,
  startPythonFlockServe,
  stopPythonFlockServe,
} from './lib/python-flockserve.mjs';
import { grpcLoop, openStreams, sseLoop } from './lib/stream-load.mjs';
import { wrk } from './lib/wrk.mjs';

const NOFILE = 65536;
/** The reference target: a bare one-process Node proxy (bench/lib/node-floor.mjs). */
const NODE_FLOOR = 'Node floor (bare node:http + undici)';
/** Before each later round's S window: the 200 streams ramp up again (each target is warm by then). */
const STREAM_RAMP_MS = 2000;
const DEFAULT_OUT = join(ROOT, 'bench/results/datapath.md');
await withOpenFileLimit(NOFILE, main);

async function main() {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '10' },
      // Load before each measured run, the same for every target: one-time costs (JIT tiering,
      // pools, buffers) out of the numbers. FlockServe's CPU per request settles after ~10 s of
      // phase A load (4 s runs from start: 291, 198, 185, 161, 186, 171 us), its JIT having
      // more code to tier up than a C proxy or the Node floor; 2 s left that in the numbers.
      warmup: { type: 'string', default: '10' },
      // A pause between the warm-up and the measured run (A, B). wrk stops with a request in
      // flight on each connection, so every proxy first cancels up to 256 requests (closing their
      // worker sockets): without the pause a Node proxy's measured B run starts inside that
      // clean-up, and its first second sets the p99 (1.4 x nginx for FlockServe and the Node
      // floor alike; nginx's is unchanged). What is measured is the load, not the previous exit.
      settle: { type: 'string', default: '1' },
      // A, B, S and G measure every target this many times, in turns (nginx, haproxy, ...,
      // FlockServe, then again), and report each figure's median. This VM's speed drifts within
      // a minute (the Node floor's CPU per request ranges from 97 to 139 us within an hour,
      // FlockServe's from 142 to 220 within five minutes), so one run per target lets a slow
      // minute land on one target only. Five: a slow stretch lasts a minute or two, long enough to cover two of three
      // runs of one target (datapath-profile.md).
      rounds: { type: 'string', default: '5' },
      phases: { type: 'string', default: 'A,B,S,G,M,PA,PB,PS' },
      'm-streams': { type: 'string', default: '10000' },
      'profile-dir': { type: 'string' },
      'gateway-node-args': { type: 'string', default: '' },
      out: { type: 'string', default: DEFAULT_OUT },
      'python-flockserve': { type: 'string' },
    },
  });
  const seconds = Number(values.seconds);
  const warmup = Number(values.warmup);
  const settle = Number(values.settle);
  const rounds = Math.max(1, Number(values.rounds));
  const phases = new Set(values.phases.split(','));
  // A proxy holds two sockets per open stream (client and worker side): the open-file limit bounds M.
  const nofile = openFileLimit();
  const mStreams = Math.min(Number(values['m-streams']), Math.floor((nofile - 512) / 2 / 100) * 100);
  if (mStreams < Number(values['m-streams']))
    console.log(`open-file limit ${nofile}: phase M opens ${mStreams} streams instead of ${values['m-streams']}`);
  ensureTools();
  const py = values['python-flockserve'] ? preparePythonFlockServe(values['python-flockserve']) : undefined;
  if (!py && (phases.has('PA') || phases.has('PB')))
    console.log(
      'PA, PB: the original Python FlockServe is not among the targets (--python-flockserve DIR adds it: a checkout of github.com/jdoodle-dev/flockserve)',
    );
  const tmp = mkdtempSync('/tmp/flockserve-datapath-');

  const SIM_PORT = 18500;
  const PORTS = { nginx: 18501, haproxy: 18502, flockserve: 18503, floor: 18505 };
  const GRPC_PORT = 18504;
  const HOSTS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
  const workers = HOSTS.map((h) => `${h}:${SIM_PORT}`);
  const chat = (extra) => JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'hello' }], ...extra });

  const PHASES = {
    A: { sim: ['--token-interval', '0', '--max-num-seqs', '1024'] },
    B: { sim: ['--token-interval', '20', '--max-num-seqs', '1024'] },
    // S and G share their workers: G is compared with FlockServe's HTTP streams of the same run.
    S: { sim: ['--token-interval', '10', '--max-num-seqs', '1024'] },
    // 2,500 streams per worker × 101 tokens fit the simulator's KV cache (440k tokens); a step's
    // token budget holds a decode of every sequence (vLLM requires it to be at least max-num-seqs).
    M: { sim: ['--token-interval', '2000', '--max-num-seqs', '20000', '--max-num-batched-tokens', '20000'] },
    PA: { light: ['--delay-ms', '0', '--tokens', '8'] },
    PB: { light: ['--delay-ms', '20', '--tokens', '8'] },
    PS: { light: ['--tokens', '50', '--token-interval', '10'] },
  };
  const results = { A: [], B: [], S: [], G: [], M: [], PA: [], PB: [], PS: [] };
  /** The 1-minute load average at the start and end of each phase: the machine is shared. */
  const load = {};

  /** Starts the 4 workers, nginx, haproxy and FlockServe; returns the targets and a stop function. */
  async function startAll(phase, { sim, light }) {
    const sims = await Promise.all(
      HOSTS.map((h) =>
        light
          ? startScript(
              join(ROOT, 'bench/lib/light-worker.mjs'),
              ['--host', h, '--port', String(SIM_PORT), ...light],
              /listening on/,
            )
          : startCli('flockserve-sim', ['--host', h, '--port', String(SIM_PORT), ...sim], /listening on/),
      ),
    );
    // Proxy-bound, every proxy gets one process (one thread): the peers of one Node process.
    const single = light !== undefined;
    const nginx = await startProxy('nginx', join(tmp, `nginx-${phase}`), {
      port: PORTS.nginx,
      workers,
      nofile,
      single,
    });
    const haproxy = await startProxy('haproxy', join(tmp, `haproxy-${phase}`), {
      port: PORTS.haproxy,
      workers,
      nofile,
      single,
    });
    const floor = await startScript(
      join(ROOT, 'bench/lib/node-floor.mjs'),
      ['--port', String(PORTS.floor), '--workers', workers.join(',')],
      /listening on/,
    );
    const prof = values['profile-dir'];
    const gw = await startCli(
      'flockserve',
      [
        '--provisioner',
        'static',
        '--workers',
        workers.map((w) => `http://${w}`).join(','),
        '--skypilot_task',
        'examples/serving_sim_local.yaml',
        '--min_workers',
        '4',
        '--max_workers',
        '4',
        // High enough that the gateway never queues: nginx and haproxy do not either.
        '--worker_capacity',
        String(Math.max(4096, mStreams)),
        '--max_queue_length',
        String(mStreams * 2),
        '--metrics_id',
        '-1',
        '--verbosity',
        '0',
        '--host',
        '127.0.0.1',
        '--port',
        String(PORTS.flockserve),
        '--grpc_port',
        String(GRPC_PORT),
      ],
      /listening on/,
      {},
      [
        ...values['gateway-node-args'].split(' ').filter(Boolean),
        ...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof, '--cpu-prof-name', `flockserve-${phase}.cpuprofile`] : []),
      ],
    );
    await waitHttp(`http://127.0.0.1:${PORTS.flockserve}/`, async (r) => (await r.json()).ready_worker_count === 4);
    // Proxy-bound A and B only: it answers OpenAI streams only when asked with a `stream: 1`
    // header, which no OpenAI client sends. It reaches each worker at the worker's address and
    // its own port, so it listens on the workers' port at 127.0.0.1.
    const python =
      py && (phase === 'PA' || phase === 'PB')
        ? await startPythonFlockServe(py, {
            dir: join(tmp, `python-flockserve-${phase}`),
            host: '127.0.0.1',
            port: SIM_PORT,
            workerHosts: HOSTS,
            workerCapacity: Math.max(4096, mStreams),
          })
        : undefined;
    const targets = [
      { name: 'direct (one worker)', url: `http://${workers[0]}`, pid: sims[0].child.pid, proxy: false },
      { name: 'nginx', url: `http://127.0.0.1:${PORTS.nginx}`, pid: nginx.pid, proxy: true },
      { name: 'haproxy', url: `http://127.0.0.1:${PORTS.haproxy}`, pid: haproxy.pid, proxy: true },
      { name: NODE_FLOOR, url: `http://127.0.0.1:${PORTS.floor}`, pid: floor.child.pid, proxy: true, floor: true },
      { name: 'FlockServe', url: `http://127.0.0.1:${PORTS.flockserve}`, pid: gw.child.pid, proxy: true, ours: true },
      ...(python
        ? [{ name: PYTHON_FLOCKSERVE, url: python.url, pid: python.child.pid, proxy: true, python: true }]
        : []),
    ];
    const stopAll = async () => {
      await Promise.all([stop(gw.child), stop(floor.child), ...(python ? [stopPythonFlockServe(python.child)] : [])]);
      await Promise.all([stop(nginx), stop(haproxy)]);
      await Promise.all(sims.map((s) => stop(s.child)));
    };
    return { targets, stopAll, simPids: sims.map((x) => x.child.pid) };
  }

  const cpuOf = (pid) => processTree(pid).reduce((sum, p) => sum + cpuSeconds(p), 0);
  const workersCpu = (pids) => pids.reduce((sum, pid) => sum + cpuOf(pid), 0);
  /** CPU seconds of `pid`'s processes between start() and end() (a stream load's measured window). */
  const cpuWindow = (pid) => {
    let at = 0;
    const w = {
      seconds: NaN,
      start: () => (at = cpuOf(pid)),
      end: () => (w.seconds = cpuOf(pid) - at),
    };
    return w;
  };
  const rssOf = (pid) => processTree(pid).reduce((sum, p) => sum + rssKiB(p), 0);
  const log = (...a) => console.log(new Date().toISOString().slice(11, 19), ...a);

  for (const phase of ['A', 'B', 'S', 'M', 'PA', 'PB', 'PS']) {
    if (!phases.has(phase) && !(phase === 'S' && phases.has('G'))) continue;
    log(`phase ${phase}: starting workers and proxies`);
    const { targets, stopAll, simPids } = await startAll(phase, PHASES[phase]);
    load[phase] = { start: loadavg()[0] };
    try {
      if (phase === 'A' || phase === 'B' || phase === 'PA' || phase === 'PB') {
        const connections = phase === 'A' || phase === 'PA' ? 64 : 256;
        const body = chat({ max_tokens: 8 });
        // The warm-up in two runs with the pause between, as the measured rounds run: the end of
        // a wrk run (every connection closed with a request in flight) takes a Node proxy down
        // paths it has not JIT-compiled for: under --trace-deopt about 25 of FlockServe's hot
        // functions deoptimize there (mostly "wrong map") and re-compile during the next run,
        // so a warm-up of one run leaves the first measured round the slowest of all.
        for (const t of targets) {
          // wrk takes whole seconds only (`-d1.5s` is an error).
          const seconds = Math.max(1, Math.ceil(warmup / 2));
          const half = { dir: tmp, url: `${t.url}/v1/chat/completions`, body, connections, seconds };
          await wrk(half);
          await sleep(settle * 1000);
          await wrk(half);
        }
        const runs = new Map(targets.map((t) => [t, []]));
        for (let round = 1; round <= rounds; round++) {
          for (const t of targets) {
            await sleep(settle * 1000);
            const cpu0 = cpuOf(t.pid);
            const workers0 = workersCpu(simPids);
            const r = await wrk({ dir: tmp, url: `${t.url}/v1/chat/completions`, body, connections, seconds });
            const cpu = cpuOf(t.pid) - cpu0;
            // The workers' CPU per request, whoever proxies: in A a reading of the VM's speed (see render).
            const workerUs = ((workersCpu(simPids) - workers0) * 1e6) / (r.rps * seconds);
            runs.get(t).push({ ...r, cpu, workerUs });
            log(
              phase,
              `round ${round}`,
              t.name,
              `${r.rps.toFixed(0)} req/s p50 ${r.p50} p99 ${r.p99} errors ${r.errors} cpu ${cpu.toFixed(2)} s workers ${workerUs.toFixed(0)} us/req`,
            );
          }
        }
        for (const t of targets) {
          const rs = runs.get(t);
          const med = (k) => median(rs.map((r) => r[k]));
          results[phase].push({
            target: t.name,
            ours: t.ours,
            floor: t.floor,
            python: t.python,
            proxy: t.proxy,
            rps: med('rps'),
            rpss: rs.map((r) => r.rps),
            cpus: rs.map((r) => r.cpu),
            p50: med('p50'),
            p99: med('p99'),
            p99s: rs.map((r) => r.p99),
            workerUs: rs.map((r) => r.workerUs),
            errors: rs.reduce((n, r) => n + r.errors, 0),
            cpu: med('cpu'),
          });
        }
      }
      if (phase === 'S' || phase === 'PS') {
        // In rounds, as A and B: a slow minute of the VM would otherwise land on one target only.
        const body = chat({ max_tokens: 50, stream: true });
        const gw = targets.find((t) => t.ours);
        const { InferenceServiceClient } = await import(join(ROOT, 'dist/gen/flockserve/v1/inference.js'));
        const grpcRequest = {
          model: 'sim',
          messages: [{ role: 'user', content: { $case: 'text', value: 'hello' } }],
          maxTokens: 50,
          stop: [],
          stream: true,
        };
        // Each load: its target, the results it goes to, and one measured window of it.
        const loads = [
          ...(phases.has(phase) ? targets : []).map((t) => ({
            t,
            list: results[phase],
            run: (warmupMs, onWindow) =>
              sseLoop({
                url: t.url,
                path: '/v1/chat/completions',
                body,
                concurrency: 200,
                durationMs: seconds * 1000,
                warmupMs,
                onWindow,
              }),
          })),
          ...(phase === 'S' && phases.has('G')
            ? [
                {
                  t: { ...gw, name: 'FlockServe gRPC' },
                  list: results.G,
                  run: (warmupMs, onWindow) =>
                    grpcLoop({
                      address: `127.0.0.1:${GRPC_PORT}`,
                      Client: InferenceServiceClient,
                      request: grpcRequest,
                      concurrency: 200,
                      durationMs: seconds * 1000,
                      warmupMs,
                      onWindow,
                    }),
                },
              ]
            : []),
        ];
        const runs = new Map(loads.map((l) => [l, []]));
        for (let round = 1; round <= rounds; round++) {
          for (const l of loads) {
            // The first round warms each target up; later ones only ramp the 200 streams up again.
            const cpu = cpuWindow(l.t.pid);
            const r = await l.run(round === 1 ? warmup * 1000 : STREAM_RAMP_MS, cpu);
            runs.get(l).push({ ...r, cpu: cpu.seconds });
            log(phase, `round ${round}`, l.t.name, JSON.stringify(r), `cpu ${cpu.seconds.toFixed(2)} s`);
          }
        }
        for (const l of loads) {
          const rs = runs.get(l);
          const med = (k) => median(rs.map((r) => r[k]));
          const sum = (k) => rs.reduce((n, r) => n + r[k], 0);
          l.list.push({
            target: l.t.name,
            ours: l.t.ours,
            floor: l.t.floor,
            proxy: l.t.proxy,
            streams: sum('streams'),
            complete: sum('complete'),
            failures: sum('failures'),
            chunksPerSecond: med('chunksPerSecond'),
            ttfcP50: med('ttfcP50'),
            ttfcP99: med('ttfcP99'),
            cpu: med('cpu'),
          });
        }
      }
      if (phase === 'M') {
        const body = chat({ max_tokens: 100, stream: true });
        for (const t of targets.filter((x) => x.proxy)) {
          // A few streams first, so one-time costs (JIT, pools, buffers) are in the baseline.
          await sseLoop({
            url: t.url,
            path: '/v1/chat/completions',
            body: chat({ max_tokens: 2, stream: true }),
            concurrency: 50,
            durationMs: 1000,
            warmupMs: 0,
          });
          await sleep(1000);
          const before = rssOf(t.pid);
          const cpu0 = cpuOf(t.pid);
          const t0 = performance.now();
          const open = await openStreams({ url: t.url, path: '/v1/chat/completions', body, count: mStreams });
          const openSeconds = (performance.now() - t0) / 1000;
          await sleep(2000);
          const withStreams = rssOf(t.pid);
          const cpu = cpuOf(t.pid) - cpu0;
          await open.close();
          const perStream = (withStreams - before) / (mStreams - open.failed);
          results.M.push({
            target: t.name,
            ours: t.ours,
            open: mStreams - open.failed,
            before,
            withStreams,
            perStream,
            openSeconds,
            cpu,
          });
          log(
            'M',
            t.name,
            `open ${mStreams - open.failed}, RSS ${before} → ${withStreams} KiB, ${perStream.toFixed(1)} KiB/stream`,
          );
          await sleep(3000); // let the workers cancel the cut streams
        }
      }
    } finally {
      load[phase].end = loadavg()[0];
      await stopAll();
    }
  }
  rmSync(tmp, { recursive: true, force: true });
  const report = render({
    results,
    seconds,
    warmup,
    settle,
    rounds,
    mStreams,
    asked: Number(values['m-streams']),
    nofile,
    phases: values.phases,
    versions: versions(),
    load,
    out: values.out,
    py,
  });
  writeFileSync(values.out, report);
  writeFileSync(values.out.replace(/\.md$/, '.json'), JSON.stringify(results, null, 2) + '\n');
  console.log(report);
}

function render({
  results,
  seconds,
  warmup,
  settle,
  rounds,
  mStreams,
  asked,
  nofile,
  phases,
  versions: v,
  load,
  out,
  py,
}) {
  const f = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
  const ratio = (a, b) => (Number.isFinite(a / b) ? (a / b).toFixed(2) : 'n/a');
  const verdict = (ok) => (ok ? 'met' : '**missed**');
  const L = [
    '# Data path: FlockServe side by side with nginx and haproxy',
    '',
    `Command: \`npm run build && node bench/datapath.mjs --seconds ${seconds} --warmup ${warmup} --settle ${settle} --rounds ${rounds} --phases ${phases} --m-streams ${asked}` +
      `${py ? ' --python-flockserve DIR' : ''}${out === DEFAULT_OUT ? '' : ` --out ${relative(ROOT, out)}`}\``,
    '',
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB; ${v.nginx}; ${v.haproxy}; ${v.wrk}; Node ${v.node}.`,
    'Load generator, proxies and the 4 simulator workers (127.0.0.2–127.0.0.5) share these 2 cores, so',
    'the ratios of one run are the result, not the absolute numbers. nginx runs `worker_processes auto`',
    '(2 workers), haproxy its default threads (2), FlockServe one Node process. "Node floor" is a bare',
    'one-process Node proxy (bench/lib/node-floor.mjs: node:http + undici, no checks, queue or metrics):',
    'the least any single Node.js process pays here, so FlockServe / Node floor is the cost of its own work.',
    '"CPU s" is user + system time of all the proxy\'s processes during the measured load (for "direct":',
    `the one worker's). Every target gets the same ${warmup} s of load before it is measured (JIT, pools;`,
    `in A and B as two runs with a pause between, so the first measured round is not the first after a`,
    `wrk run ended with requests in flight, which sends a Node proxy down code it had not compiled yet).`,
    `A, B, S and G then measure every target ${rounds} times in turns (all targets, then all again),`,
    `A and B after a ${settle} s pause (so the requests the previous wrk left in flight are cancelled first),`,
    `S and G after ${STREAM_RAMP_MS / 1000} s for the 200 streams to ramp up again, and show the median of each figure`,
    "(CPU too; errors, streams and completions are summed): this VM's speed drifts within a minute,",
    'and one run per target would let a slow minute land on one target only.',
    'What the CPU profile of the gateway showed, what was changed, and what is left: datapath-profile.md.',
    '',
    `Load average (1 min) at the start → end of each phase, the machine being shared: ${Object.entries(load)
      .map(([p, l]) => `${p} ${f(l.start, 2)} → ${f(l.end, 2)}`)
      .join(', ')}.`,
    '',
  ];
  const byName = (rows, name) => rows.find((r) => r.target === name);
  for (const [phase, title, targets] of [
    ['A', `A — non-streaming chat (8 tokens), worker delay 0, \`wrk -t1 -c64 -d${seconds}s\``, { rps: 0.6, p99: 1.5 }],
    [
      'B',
      `B — non-streaming chat (8 tokens), worker delay 20 ms per token, \`wrk -t1 -c256 -d${seconds}s\``,
      { rps: 0.9, p99: 1.2 },
    ],
  ]) {
    const rows = results[phase];
    if (rows.length === 0) continue;
    const ours = rows.find((r) => r.ours);
    const nginx = byName(rows, 'nginx');
    const direct = byName(rows, 'direct (one worker)');
    const floor = byName(rows, NODE_FLOOR);
    L.push(
      `## ${title}`,
      '',
      '| target | req/s | p50 ms | p99 ms | errors | CPU s | CPU ms per 1k req |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const r of rows) {
      L.push(
        `| ${r.target} | ${f(r.rps)} | ${f(r.p50, 2)} | ${f(r.p99, 2)} | ${r.errors} | ${f(r.cpu, 2)} | ${f((r.cpu * 1e6) / (r.rps * seconds), 0)} |`,
      );
    }
    L.push(
      `| **FlockServe / nginx** | **${ratio(ours.rps, nginx.rps)}** | ${ratio(ours.p50, nginx.p50)} | **${ratio(ours.p99, nginx.p99)}** | | ${ratio(ours.cpu, nginx.cpu)} | |`,
      `| **FlockServe / direct** | ${ratio(ours.rps, direct.rps)} | ${ratio(ours.p50, direct.p50)} | ${ratio(ours.p99, direct.p99)} | | | |`,
      ...(floor
        ? [
            `| **FlockServe / Node floor** | ${ratio(ours.rps, floor.rps)} | ${ratio(ours.p50, floor.p50)} | ${ratio(ours.p99, floor.p99)} | | ${ratio(ours.cpu, floor.cpu)} | |`,
            `| **Node floor / nginx** | ${ratio(floor.rps, nginx.rps)} | ${ratio(floor.p50, nginx.p50)} | ${ratio(floor.p99, nginx.p99)} | | ${ratio(floor.cpu, nginx.cpu)} | |`,
          ]
        : []),
      '',
      `Target: req/s ≥ ${targets.rps} × nginx — ${ratio(ours.rps, nginx.rps)}, ${verdict(ours.rps >= targets.rps * nginx.rps)}; ` +
        `p99 ≤ ${targets.p99} × nginx — ${ratio(ours.p99, nginx.p99)}, ${verdict(ours.p99 <= targets.p99 * nginx.p99)}.`,
      '',
      ...(ours.p99s && ours.p99s.length > 1
        ? [
            `p99 of each round, ms: ${rows.map((r) => `${r.target} ${r.p99s.map((x) => f(x, 2)).join(', ')}`).join('; ')}.`,
            `FlockServe / nginx p99 by round: ${ours.p99s.map((x, i) => ratio(x, nginx.p99s[i])).join(', ')}.`,
            '',
          ]
        : []),
      // In A the workers are busy (no token delay) and do the same work for every request, so
      // their CPU per request follows the VM's speed. In B they mostly wait on timers: not so.
      ...(phase === 'A' && ours.workerUs.length > 1
        ? [
            "The workers' CPU per request in each round, µs (the same work for every request, so it",
            `follows the VM's speed during the run): ${rows.map((r) => `${r.target} ${r.workerUs.map((x) => f(x, 0)).join(', ')}`).join('; ')}.`,
            '',
          ]
        : []),
    );
  }
  const streamRows = (rows) => {
    for (const r of rows) {
      L.push(
        `| ${r.target} | ${r.streams} | ${r.complete} | ${r.failures} | ${f(r.chunksPerSecond, 0)} | ${f(r.ttfcP50, 2)} | ${f(r.ttfcP99, 2)} | ${f(r.cpu, 2)} |`,
      );
    }
  };
  const streamHead = [
    '| target | streams | complete | failed | chunks/s | TTFC p50 ms | TTFC p99 ms | CPU s |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  if (results.S.length > 0) {
    const rows = results.S;
    const ours = rows.find((r) => r.ours);
    const nginx = byName(rows, 'nginx');
    const direct = byName(rows, 'direct (one worker)');
    const floor = byName(rows, NODE_FLOOR);
    L.push(
      `## S — 200 concurrent SSE streams × 50 tokens every 10 ms, closed loop for ${seconds} s, ${rounds} rounds`,
      '',
      ...streamHead,
    );
    streamRows(rows);
    L.push(
      `| **FlockServe / nginx** | | | | **${ratio(ours.chunksPerSecond, nginx.chunksPerSecond)}** | ${ratio(ours.ttfcP50, nginx.ttfcP50)} | ${ratio(ours.ttfcP99, nginx.ttfcP99)} | ${ratio(ours.cpu, nginx.cpu)} |`,
      `| **FlockServe / direct** | | | | ${ratio(ours.chunksPerSecond, direct.chunksPerSecond)} | ${ratio(ours.ttfcP50, direct.ttfcP50)} | ${ratio(ours.ttfcP99, direct.ttfcP99)} | |`,
      ...(floor
        ? [
            `| **FlockServe / Node floor** | | | | ${ratio(ours.chunksPerSecond, floor.chunksPerSecond)} | ${ratio(ours.ttfcP50, floor.ttfcP50)} | ${ratio(ours.ttfcP99, floor.ttfcP99)} | ${ratio(ours.cpu, floor.cpu)} |`,
            `| **Node floor / nginx** | | | | ${ratio(floor.chunksPerSecond, nginx.chunksPerSecond)} | ${ratio(floor.ttfcP50, nginx.ttfcP50)} | ${ratio(floor.ttfcP99, nginx.ttfcP99)} | ${ratio(floor.cpu, nginx.cpu)} |`,
          ]
        : []),
      '',
      `Target: chunks/s ≥ 0.95 × nginx — ${ratio(ours.chunksPerSecond, nginx.chunksPerSecond)}, ${verdict(ours.chunksPerSecond >= 0.95 * nginx.chunksPerSecond)}; ` +
        `p50 TTFC ≤ nginx + 5 ms — ${f(ours.ttfcP50 - nginx.ttfcP50, 2)} ms more, ${verdict(ours.ttfcP50 <= nginx.ttfcP50 + 5)}; ` +
        `all streams complete — ${ours.complete}/${ours.streams}, ${verdict(ours.failures === 0 && ours.complete === ours.streams)}.`,
      '',
    );
  }
  if (results.G.length > 0) {
    const g = results.G[0];
    const http = results.S.find((r) => r.ours);
    L.push(`## G — S over FlockServe's gRPC \`ChatCompletion\` stream (same workers, same run)`, '', ...streamHead);
    if (http) streamRows([{ ...http, target: 'FlockServe HTTP (S)' }]);
    streamRows(results.G);
    if (http) {
      const r = g.chunksPerSecond / http.chunksPerSecond;
      L.push(
        '',
        `Target: gRPC chunks/s within 20% of HTTP streaming — ${r.toFixed(2)} × HTTP, ${verdict(r >= 0.8)}.`,
        'A gRPC chunk is one ChatCompletionResponse message; an HTTP chunk one SSE data event.',
      );
    }
    L.push('');
  }
  if (results.M.length > 0) {
    L.push(
      `## M — ${mStreams.toLocaleString('en')} concurrent open streams (100 tokens, one every 2 s): RSS per stream`,
      '',
      ...(mStreams < asked
        ? [
            `${asked.toLocaleString('en')} streams were asked for; this machine's open-file limit (${nofile}, the hard limit, which the container does not let even root raise) holds ${mStreams.toLocaleString('en')} per proxy (two sockets each).`,
            '',
          ]
        : []),
      "Each stream is open and has its first chunk; RSS (VmRSS, all the proxy's processes) after a warm-up",
      'and 2 s after the last stream opened.',
      '',
      '| target | streams open | RSS before MiB | RSS with streams MiB | KiB per stream | time to open s | CPU s |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const r of results.M) {
      L.push(
        `| ${r.target} | ${r.open} | ${f(r.before / 1024)} | ${f(r.withStreams / 1024)} | ${f(r.perStream)} | ${f(r.openSeconds, 1)} | ${f(r.cpu, 2)} |`,
      );
    }
    const ours = results.M.find((r) => r.ours);
    if (ours)
      L.push(
        '',
        `Target: ≤ 60 KiB of gateway RSS per open stream — ${f(ours.perStream)} KiB, ${verdict(ours.perStream <= 60)}.`,
      );
    L.push('');
  }
  proxyBound(L, results, { seconds, f, ratio, verdict, py });
  return L.join('\n');
}

/**
 * The proxy-bound phases (light workers): each target's req/s, latency and CPU per request, and
 * FlockServe against the Node floor (the least a one-process Node gateway pays) and nginx.
 */
function proxyBound(L, results, { seconds, f, ratio, verdict, py }) {
  if (results.PA.length + results.PB.length + results.PS.length === 0) return;
  const usPerRequest = (r) => (r.cpu * 1e6) / (r.rps * seconds);
  L.push(
    '# Proxy-bound: 4 light workers, the proxy is the bottleneck',
    '',
    'The workers are bench/lib/light-worker.mjs (node:http answering from memory, a few µs of CPU per',
    'request), so each proxy runs as fast as its own CPU allows. nginx runs 1 worker process and haproxy',
    '1 thread here, as FlockServe and the Node floor run one process; FlockServe as above',
    '(`--provisioner static` over the 4 workers, `--worker_capacity` high enough that nothing queues).',
    '"CPU µs/req" is the proxy\'s user + system CPU during the measured run over the requests it answered.',
    '',
    ...(py
      ? pythonTarget(py)
      : ['The original Python FlockServe is not among the targets here (`--python-flockserve DIR` adds it).', '']),
  );
  for (const [phase, title] of [
    ['PA', `PA — non-streaming chat (8 tokens) answered at once, \`wrk -t1 -c64 -d${seconds}s\``],
    ['PB', `PB — non-streaming chat (8 tokens) answered after 20 ms, \`wrk -t1 -c256 -d${seconds}s\``],
  ]) {
    const rows = results[phase];
    if (rows.length === 0) continue;
    const ours = rows.find((r) => r.ours);
    const floor = rows.find((r) => r.floor);
    const nginx = rows.find((r) => r.target === 'nginx');
    const python = rows.find((r) => r.python);
    L.push(
      `## ${title}`,
      '',
      '| target | req/s | p50 ms | p99 ms | errors | CPU s | CPU µs/req |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows.map(
        (r) =>
          `| ${r.target} | ${f(r.rps)} | ${f(r.p50, 2)} | ${f(r.p99, 2)} | ${r.errors} | ${f(r.cpu, 2)} | ${f(usPerRequest(r), 0)} |`,
      ),
      `| **FlockServe / Node floor** | **${ratio(ours.rps, floor.rps)}** | ${ratio(ours.p50, floor.p50)} | ${ratio(ours.p99, floor.p99)} | | | **${ratio(usPerRequest(ours), usPerRequest(floor))}** |`,
      `| **FlockServe / nginx** | ${ratio(ours.rps, nginx.rps)} | ${ratio(ours.p50, nginx.p50)} | ${ratio(ours.p99, nginx.p99)} | | | ${ratio(usPerRequest(ours), usPerRequest(nginx))} |`,
      ...(python
        ? [
            `| **FlockServe / Python FlockServe** | **${ratio(ours.rps, python.rps)}** | ${ratio(ours.p50, python.p50)} | ${ratio(ours.p99, python.p99)} | | | ${ratio(usPerRequest(ours), usPerRequest(python))} |`,
            `| **Node floor / Python FlockServe** | ${ratio(floor.rps, python.rps)} | ${ratio(floor.p50, python.p50)} | ${ratio(floor.p99, python.p99)} | | | ${ratio(usPerRequest(floor), usPerRequest(python))} |`,
          ]
        : []),
      '',
      `Target: req/s ≥ 0.9 × the Node floor — ${ratio(ours.rps, floor.rps)}, ${verdict(ours.rps >= 0.9 * floor.rps)}; ` +
        `CPU per request ≤ 1.15 × the Node floor — ${ratio(usPerRequest(ours), usPerRequest(floor))}, ${verdict(usPerRequest(ours) <= 1.15 * usPerRequest(floor))}.`,
      '',
      ...(python && phase === 'PA'
        ? [
            `Target: req/s ≥ 6 × the Python FlockServe's — ${ratio(ours.rps, python.rps)}, ${verdict(ours.rps >= 6 * python.rps)}.`,
            '',
          ]
        : []),
      `CPU µs per request in each round: ${rows.map((r) => `${r.target} ${r.cpus.map((c, i) => f((c * 1e6) / (r.rpss[i] * seconds), 0)).join(', ')}`).join('; ')}.`,
      '',
    );
  }
  const rows = results.PS;
  if (rows.length > 0) {
    const ours = rows.find((r) => r.ours);
    const floor = rows.find((r) => r.floor);
    const nginx = rows.find((r) => r.target === 'nginx');
    const perChunk = (r) => (r.cpu * 1e6) / (r.chunksPerSecond * seconds);
    L.push(
      `## PS — 200 concurrent SSE streams × 50 tokens every 10 ms, closed loop for ${seconds} s`,
      '',
      '| target | streams | complete | failed | chunks/s | TTFC p50 ms | TTFC p99 ms | CPU s | CPU µs/chunk |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows.map(
        (r) =>
          `| ${r.target} | ${r.streams} | ${r.complete} | ${r.failures} | ${f(r.chunksPerSecond, 0)} | ${f(r.ttfcP50, 2)} | ${f(r.ttfcP99, 2)} | ${f(r.cpu, 2)} | ${f(perChunk(r), 1)} |`,
      ),
      `| **FlockServe / Node floor** | | | | ${ratio(ours.chunksPerSecond, floor.chunksPerSecond)} | ${ratio(ours.ttfcP50, floor.ttfcP50)} | ${ratio(ours.ttfcP99, floor.ttfcP99)} | | ${ratio(perChunk(ours), perChunk(floor))} |`,
      `| **FlockServe / nginx** | | | | ${ratio(ours.chunksPerSecond, nginx.chunksPerSecond)} | ${ratio(ours.ttfcP50, nginx.ttfcP50)} | ${ratio(ours.ttfcP99, nginx.ttfcP99)} | | ${ratio(perChunk(ours), perChunk(nginx))} |`,
      '',
      `Target: TTFC p50 ≤ the Node floor's + 2 ms — ${f(ours.ttfcP50 - floor.ttfcP50, 2)} ms more, ${verdict(ours.ttfcP50 <= floor.ttfcP50 + 2)}; ` +
        `chunks/s ≥ 0.95 × nginx — ${ratio(ours.chunksPerSecond, nginx.chunksPerSecond)}, ${verdict(ours.chunksPerSecond >= 0.95 * nginx.chunksPerSecond)}; ` +
        `every stream complete — ${ours.complete}/${ours.streams}, ${verdict(ours.failures === 0 && ours.complete === ours.streams)}.`,
      '',
    );
  }
}

/** What the Python FlockServe target is: its source, how it runs, and what stands in for what. */
function pythonTarget(py) {
  return [
    `"${PYTHON_FLOCKSERVE}" is github.com/jdoodle-dev/flockserve at commit \`${py.commit}\`, unchanged, under`,
    `${py.version} (bench/lib/python-flockserve.mjs): started as its CLI starts it (FastAPI served by uvicorn,`,
    "with uvloop and httptools, uvicorn's fastest; its own access log on), `--worker_capacity` as FlockServe's,",
    '`--min_workers`/`--max_workers` 4 (so its autoscaler neither adds nor removes one), `--verbosity 0`, its',
    'other options at their defaults; its fleet is brought to 4 through its own `/add_new_node` and it is',
    'measured once all 4 are ready. It forwards each request with one shared aiohttp session (its default',
    'pool: 100 connections) to a worker picked at random among the ready ones. Its SQLite request log',
    'covers `/generate` only, so these chat requests do not reach it. Stand-ins (bench/lib/python-flockserve/standins),',
    'for what the package index used does not carry; each is off its data path or takes work off it:',
    '',
    "- `sky`: SkyPilot's Python API (Task.from_yaml, launch, status, queue, cancel, down): a cluster is launched",
    "  at once with the next of the 4 light workers' addresses as its head IP. Only its start-up and 30 s worker checks call it.",
    "- `fire`: the CLI's `--name value` arguments into `FlockServe(**kwargs)`.",
    '- `opentelemetry.instrumentation.fastapi.FastAPIInstrumentor`: a no-op. The real one makes a span and',
    '  records metrics on every request: without it the Python FlockServe is faster, so the ratios below are',
    "  conservative (FlockServe's lead over it is, if anything, larger).",
    '- `opentelemetry.sdk` (metrics and trace providers), the OTLP gRPC metric exporter, the Cloud Trace',
    "  exporter and propagator: the API's no-op providers, exporters that drop what they get. (opentelemetry-sdk",
    '  is in the index, but opentelemetry-semantic-conventions, which it requires, is not.) It records its',
    '  meters only every 10 and 30 s, never on a request.',
    '',
    'It answers OpenAI streams only when asked with a `stream: 1` header, which no OpenAI client sends, so it',
    'is not a target of PS.',
    '',
  ];
}
