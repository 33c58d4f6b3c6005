#!/usr/bin/env node
// Where a stream's first chunk spends its time, through the Node floor and through FlockServe (and,
// optionally, floors that spin a fixed extra CPU time per read of a worker's answer), in turns: PS's
// load (4 light workers, `--streams` SSE streams of 50 tokens at 10 ms, closed loop), with the
// workers stamping the first chunk (bench/lib/light-worker.mjs --stamp). Per stream:
//   up    client sends → the worker sees the request head (client, proxy, worker event loops)
//   wait  the worker's body read → its first chunk written (its 10 ms token interval)
//   down  the worker's first write → the client reads the first chunk (proxy and client loops)
// and TTFC = up + body + wait + down; medians of each per round, then over rounds; the proxy's CPU
// over the measured window. One machine's clock for all, so the stages add up.
//
//   npm run build && node bench/ttfc-stages.mjs [--seconds 5] [--warmup 5] [--rounds 3] [--streams 200]
//        [--burn-ns 2000,5000]   add floors that spin that many ns per read (how TTFC follows CPU)
//        [--port 18700]          first of the ports used (workers on 127.0.0.2–5, proxies after it)
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { cpuSeconds, median } from './lib/load.mjs';
import { ROOT, processTree, startCli, startScript, stop, waitHttp } from './lib/procs.mjs';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    streams: { type: 'string', default: '200' },
    'burn-ns': { type: 'string', default: '' },
    port: { type: 'string', default: '18700' },
  },
});
const PORT = Number(values.port);
const HOSTS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
const workers = HOSTS.map((h) => `${h}:${PORT}`);
const epochMs = () => performance.timeOrigin + performance.now();
const cpuOf = (pid) => processTree(pid).reduce((s, p) => s + cpuSeconds(p), 0);
const BODY = JSON.stringify({
  model: 'sim',
  messages: [{ role: 'user', content: 'hello' }],
  max_tokens: 50,
  stream: true,
});

const sims = await Promise.all(
  HOSTS.map((h) =>
    startScript(
      join(ROOT, 'bench/lib/light-worker.mjs'),
      ['--host', h, '--port', String(PORT), '--tokens', '50', '--token-interval', '10', '--stamp'],
      /listening on/,
    ),
  ),
);
const targets = [];
const floors = [0, ...values['burn-ns'].split(',').filter(Boolean).map(Number)];
for (const [i, ns] of floors.entries()) {
  const port = PORT + 1 + i;
  const f = await startScript(
    join(ROOT, 'bench/lib/node-floor.mjs'),
    ['--port', String(port), '--workers', workers.join(','), '--burn-ns', String(ns)],
    /listening on/,
  );
  targets.push({
    name: ns ? `Node floor + ${ns} ns/read` : 'Node floor',
    url: `http://127.0.0.1:${port}`,
    child: f.child,
  });
}
const gwPort = PORT + 1 + floors.length;
const gw = await startCli(
  'flockserve',
  [
    ...['--provisioner', 'static', '--workers', workers.map((w) => `http://${w}`).join(',')],
    ...['--skypilot_task', 'examples/serving_sim_local.yaml', '--min_workers', '4', '--max_workers', '4'],
    ...['--worker_capacity', '4096', '--max_queue_length', '20000', '--metrics_id', '-1', '--verbosity', '0'],
    ...['--host', '127.0.0.1', '--port', String(gwPort), '--grpc_port', String(gwPort + 1)],
  ],
  /listening on/,
);
await waitHttp(`http://127.0.0.1:${gwPort}/`, async (r) => (await r.json()).ready_worker_count === 4);
targets.push({ name: 'FlockServe', url: `http://127.0.0.1:${gwPort}`, child: gw.child });

/** One closed-loop run of `streams` streams: the medians of each stage over the measured window. */
async function run(t, warmupMs, durationMs, streams) {
  const pool = new Pool(t.url, { connections: streams, pipelining: 1, bodyTimeout: 60_000, headersTimeout: 60_000 });
  const from = performance.now() + warmupMs;
  const end = from + durationMs;
  const s = { up: [], body: [], wait: [], down: [], ttfc: [], streams: 0, failed: 0 };
  let cpu = NaN;
  setTimeout(() => {
    const at = cpuOf(t.child.pid);
    setTimeout(() => (cpu = cpuOf(t.child.pid) - at), durationMs);
  }, warmupMs);
  const one = async () => {
    while (performance.now() < end) {
      const measured = performance.now() >= from;
      const t0 = epochMs();
      let text = '';
      let first = true;
      try {
        const res = await pool.request({
          method: 'POST',
          path: '/v1/chat/completions',
          headers: { 'content-type': 'application/json' },
          body: BODY,
        });
        for await (const piece of res.body) {
          const at = epochMs();
          text += piece.toString('latin1');
          const cut = text.indexOf('\n\n');
          if (first && cut >= 0) {
            first = false;
            const e = JSON.parse(text.slice('data: '.length, cut));
            if (measured) {
              s.up.push(e.t_arr - t0);
              s.body.push(e.t_end - e.t_arr);
              s.wait.push(e.t_w - e.t_end);
              s.down.push(at - e.t_w);
              s.ttfc.push(at - t0);
            }
          }
          if (text.length > 4096) text = text.slice(-64);
        }
        if (measured) {
          s.streams++;
          if (res.statusCode !== 200 || !text.includes('[DONE]')) s.failed++;
        }
      } catch {
        if (measured) s.failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: streams }, one));
  await pool.close();
  const m = (k) => median(s[k]);
  return {
    ttfc: m('ttfc'),
    up: m('up'),
    body: m('body'),
    wait: m('wait'),
    down: m('down'),
    streams: s.streams,
    failed: s.failed,
    cpu,
  };
}

const rounds = Number(values.rounds);
const results = new Map(targets.map((t) => [t, []]));
const loads = [loadavg()[0]];
const f1 = (x) => x.toFixed(1);
for (let round = 1; round <= rounds; round++) {
  for (const t of round % 2 ? targets : [...targets].reverse()) {
    const r = await run(
      t,
      round === 1 ? Number(values.warmup) * 1000 : 2000,
      Number(values.seconds) * 1000,
      Number(values.streams),
    );
    results.get(t).push(r);
    console.log(
      `round ${round} ${t.name}: TTFC ${f1(r.ttfc)} ms = up ${f1(r.up)} + wait ${f1(r.wait)} + down ${f1(r.down)}; ${r.streams} streams, ${r.failed} failed, CPU ${r.cpu.toFixed(2)} s`,
    );
  }
  loads.push(loadavg()[0]);
}
console.log(
  `\n| target | TTFC p50 ms | up | worker wait | down | CPU s | streams | failed |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
);
for (const [t, rs] of results) {
  const m = (k) => median(rs.map((r) => r[k]));
  const sum = (k) => rs.reduce((n, r) => n + r[k], 0);
  console.log(
    `| ${t.name} | ${f1(m('ttfc'))} | ${f1(m('up'))} | ${f1(m('wait'))} | ${f1(m('down'))} | ${m('cpu').toFixed(2)} | ${sum('streams')} | ${sum('failed')} |`,
  );
}
console.log(`\nLoad average (1 min) at each round's end: ${loads.map(f1).join(', ')}`);
for (const t of targets) await stop(t.child);
await Promise.all(sims.map((x) => stop(x.child)));
