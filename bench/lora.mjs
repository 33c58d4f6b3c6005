#!/usr/bin/env node
// Run-time LoRA adapters over a fleet whose engines keep them in their own memory (vLLM with
// --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING; here `flockserve-sim --enable-lora
// --allow-runtime-lora`), live. Per target, a client:
//   1. loads two adapters (POST /v1/load_lora_adapter) through it, and each worker's own
//      GET /v1/models says whether it lists them;
//   2. sends `--requests` chat completions (`--concurrency` at once) whose `model` names one
//      adapter or the other: 200s, vLLM's 404s (an engine without the adapter), latency of the 200s.
// The targets:
//   - FlockServe (static provisioner over the workers), which makes a load on every worker
//     serving. Its last worker's engine starts only after the loads: the gateway lists it and
//     probes it, and it must list both adapters before it serves (3: the time from its engine
//     listening to its being ready at the gateway, and its first requests);
//   - nginx (least_conn), as a user would balance the engines without an OpenAI-aware gateway;
//   - one worker alone (the yardstick for the latency: every adapter on the only engine), with its
//     share of the requests.
// 4. The fan-out's cost: `--pairs` loads and unloads of a third adapter through FlockServe (every
//    worker) and on the lone worker directly, one after the other.
//   npm run build && node bench/lora.mjs [--workers 4] [--requests 200] [--concurrency 16] [--pairs 10]
// Writes bench/results/lora.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startFleet, startNginxFleet, startSim } from './lib/fleet.mjs';
import { median, percentile } from './lib/load.mjs';
import { ensureTools } from './lib/proxies.mjs';
import { ROOT, tempDir, waitHttp } from './lib/procs.mjs';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '4' },
    requests: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '16' },
    pairs: { type: 'string', default: '10' },
    tokens: { type: 'string', default: '16' },
  },
});
const WORKERS = Number(values.workers);
const REQUESTS = Number(values.requests);
const CONCURRENCY = Number(values.concurrency);
const PAIRS = Number(values.pairs);
const TOKENS = Number(values.tokens);
const SIM_ARGS = ['--enable-lora', '--allow-runtime-lora'];
/** The adapters the requests name, and the one the fan-out's cost is measured with. */
const ADAPTERS = ['sql-lora', 'chat-lora'];
const FANOUT_ADAPTER = 'fanout-lora';

ensureTools();
// An adapter is a directory holding adapter_config.json, the file vLLM opens first (the
// simulator reads no weights); the config is PEFT's, as a real adapter carries it.
const adapterRoot = tempDir('lora-adapters-');
const pathOf = (name) => join(adapterRoot, name);
for (const name of [...ADAPTERS, FANOUT_ADAPTER]) {
  mkdirSync(pathOf(name));
  writeFileSync(
    join(pathOf(name), 'adapter_config.json'),
    JSON.stringify({ peft_type: 'LORA', r: 8, lora_alpha: 16, target_modules: ['q_proj', 'v_proj'] }),
  );
}

/** One POST with a JSON body: its status, its body's text and the ms to the end of the answer. */
async function post(url, path, body) {
  const t0 = performance.now();
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, ms: performance.now() - t0 };
}

const load = (url, name) => post(url, '/v1/load_lora_adapter', { lora_name: name, lora_path: pathOf(name) });
const unload = (url, name) => post(url, '/v1/unload_lora_adapter', { lora_name: name });

/** Which of `sims` list `name` in their own GET /v1/models (asked directly, not through the target). */
async function listing(sims, name) {
  const lists = await Promise.all(
    sims.map(async (s) => ((await (await fetch(`${s.url}/v1/models`)).json()).data ?? []).map((m) => m.id)),
  );
  return lists.filter((ids) => ids.includes(name)).length;
}

/** Each worker's generation requests so far, and how many it refused (the simulator's counters). */
async function counters(sims) {
  return Promise.all(
    sims.map(async (s) => {
      const st = await (await fetch(`${s.url}/sim/stats`)).json();
      return { received: st.received, errors: st.errors };
    }),
  );
}

/** `n` chat completions, `concurrency` at once, alternating the adapters in `model`. */
async function traffic(url, n, concurrency) {
  const statuses = {};
  const ok = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const r = await post(url, '/v1/chat/completions', {
          model: ADAPTERS[i % ADAPTERS.length],
          messages: [{ role: 'user', content: `Request ${i}: name three rivers of Europe.` }],
          max_tokens: TOKENS,
        });
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        if (r.status === 200) ok.push(r.ms);
      }
    }),
  );
  ok.sort((a, b) => a - b);
  return { statuses, p50: percentile(ok, 50), p99: percentile(ok, 99) };
}

/** Loads the adapters through `url`, then what each running worker lists; then the traffic, per worker. */
async function loadThenServe(url, sims, n, concurrency) {
  const loads = [];
  for (const name of ADAPTERS) loads.push((await load(url, name)).status);
  const listed = await Promise.all(ADAPTERS.map((name) => listing(sims, name)));
  return { loads, listed, of: sims.length, ...(await serve(url, sims, n, concurrency)) };
}

/** The traffic through `url`, and what each of `sims` served and refused of it. */
async function serve(url, sims, n, concurrency) {
  const before = await counters(sims);
  const r = await traffic(url, n, concurrency);
  const after = await counters(sims);
  const perWorker = after.map((a, i) => ({
    served: a.received - before[i].received - (a.errors - before[i].errors),
    refused: a.errors - before[i].errors,
  }));
  return { ...r, perWorker };
}

/** `PAIRS` loads and unloads of FANOUT_ADAPTER through `url`, one after the other: their ms and statuses. */
async function loadCost(url) {
  const loads = [];
  const unloads = [];
  const statuses = new Set();
  for (let i = 0; i < PAIRS; i++) {
    const l = await load(url, FANOUT_ADAPTER);
    const u = await unload(url, FANOUT_ADAPTER);
    loads.push(l.ms);
    unloads.push(u.ms);
    statuses.add(`${l.status}/${u.status}`);
  }
  return { load: median(loads), loadMax: Math.max(...loads), unload: median(unloads), statuses: [...statuses] };
}

/**
 * The late worker's first requests: batches of `batch` requests at once through the gateway
 * (which picks the worker) until the late worker has received some; their statuses, and what
 * the late worker served and refused of them.
 */
async function firstRequests(url, late, batch = 8) {
  const statuses = {};
  for (let round = 0; round < 20; round++) {
    const r = await traffic(url, batch, batch);
    for (const [s, n] of Object.entries(r.statuses)) statuses[s] = (statuses[s] ?? 0) + n;
    const [c] = await counters([late]);
    if (c.received > 0) return { statuses, served: c.received - c.errors, refused: c.errors };
  }
  return { statuses, served: 0, refused: 0 };
}

const results = {};
// FlockServe: the last engine comes up only after the loads, as a worker the autoscaler adds later does.
{
  const { sims, gw } = await startFleet({ workers: WORKERS, simArgs: SIM_ARGS, capacity: 64, late: 1 });
  try {
    const early = sims.slice(0, -1);
    const lateSim = sims.at(-1);
    const loads = [];
    for (const name of ADAPTERS) loads.push((await load(gw.url, name)).status);
    const listed = await Promise.all(ADAPTERS.map((name) => listing(early, name)));
    // The join: from the engine listening to the gateway counting it ready (polled every 50 ms).
    await lateSim.start();
    const t0 = performance.now();
    await waitHttp(`${gw.url}/`, async (r) => (await r.json()).ready_worker_count === WORKERS, 30_000);
    const joinMs = performance.now() - t0;
    const lateListed = (await Promise.all(ADAPTERS.map((name) => listing([lateSim], name)))).reduce((a, b) => a + b);
    const first = await firstRequests(gw.url, lateSim);
    const listedAll = await Promise.all(ADAPTERS.map((name) => listing(sims, name)));
    const served = await serve(gw.url, sims, REQUESTS, CONCURRENCY);
    const cost = await loadCost(gw.url);
    results.flockserve = { loads, listed, of: early.length, listedAll, joinMs, lateListed, first, ...served, cost };
    console.log(JSON.stringify({ flockserve: results.flockserve }));
  } finally {
    await gw.stop();
    await Promise.all(sims.map((s) => s.stop()));
  }
}
{
  const fleet = await startNginxFleet({ workers: WORKERS, simArgs: SIM_ARGS });
  try {
    results.nginx = await loadThenServe(fleet.url, fleet.sims, REQUESTS, CONCURRENCY);
    console.log(JSON.stringify({ nginx: results.nginx }));
  } finally {
    await fleet.close();
  }
}
{
  const sim = await startSim(SIM_ARGS);
  try {
    const share = Math.ceil(REQUESTS / WORKERS);
    results.alone = await loadThenServe(sim.url, [sim], share, Math.ceil(CONCURRENCY / WORKERS));
    results.alone.cost = await loadCost(sim.url);
    results.alone.share = share;
    console.log(JSON.stringify({ alone: results.alone }));
  } finally {
    await sim.stop();
  }
}

const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '—');
const statusText = (statuses) =>
  Object.entries(statuses)
    .map(([s, n]) => `${n} × ${s}`)
    .join(', ');
const count = (r, status) => r.statuses[status] ?? 0;
const other = (r) =>
  Object.entries(r.statuses)
    .filter(([s]) => s !== '200' && s !== '404')
    .reduce((a, [, n]) => a + n, 0);
const perWorker = (r) => r.perWorker.map((w) => `${w.served}/${w.refused}`).join(', ');
const { flockserve: fs, nginx, alone } = results;
const row = (name, r, listed, requests) =>
  `| ${name} | ${r.loads.join(', ')} | ${listed} | ${requests} | ${count(r, 200)} | ${count(r, 404)} | ${other(r)} | ${f(r.p50)} | ${f(r.p99)} | ${perWorker(r)} |`;
const date = new Date().toISOString().slice(0, 10);
const lines = [
  '# Run-time LoRA adapters over engines that keep them in their own memory',
  '',
  `Command: \`npm run build && node bench/lora.mjs --workers ${WORKERS} --requests ${REQUESTS} --concurrency ${CONCURRENCY} --pairs ${PAIRS}\``,
  '',
  `Run on ${date}, ${cpus().length} cores, node ${process.version}; the gateway, the proxy, the engines and the`,
  'client share the machine.',
  '',
  `${WORKERS} simulator workers with \`--enable-lora --allow-runtime-lora\` (vLLM's run-time LoRA API; the`,
  'default engine model, Llama-3.1-8B on an A100). A client loads two adapters through the target',
  `(\`${ADAPTERS.join('`, `')}\`: directories holding adapter_config.json), then sends ${REQUESTS} chat`,
  `completions, ${CONCURRENCY} at once, each of ${TOKENS} generated tokens, whose \`model\` names one adapter or the`,
  'other. Listing: workers whose own GET /v1/models lists each adapter, asked directly. Per worker:',
  "generation requests it served / answered with vLLM's 404 (`The model ... does not exist.`).",
  '',
  `FlockServe runs \`--provisioner static\` over all ${WORKERS} URLs, but the last engine starts only after the`,
  `loads (the gateway lists it and probes it every 2 s, its default \`worker_probe_interval\`), so the`,
  `loads reach ${WORKERS - 1} workers; the requests are sent once the last one is ready. The lone worker gets`,
  `its share of the requests (${alone.share}, ${Math.ceil(CONCURRENCY / WORKERS)} at once), the load one worker of the fleets carries.`,
  '',
  `| target | loads (status) | workers listing ${ADAPTERS.join(' / ')} after the loads | requests | 200 | 404 | other | 200s: p50 ms | p99 ms | per worker: served / 404 |`,
  '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  row(
    'FlockServe (least-connection)',
    fs,
    `${fs.listed.join(' / ')} of the ${fs.of} running; ${fs.listedAll.join(' / ')} of ${WORKERS} once the last joined`,
    REQUESTS,
  ),
  row('nginx (least_conn)', nginx, `${nginx.listed.join(' / ')} of ${nginx.of}`, REQUESTS),
  row('one worker alone, its share of the requests', alone, `${alone.listed.join(' / ')} of 1`, alone.share),
  '',
  '## A worker that joins after the loads (FlockServe)',
  '',
  '| engine listening → ready at the gateway | adapters it lists once ready | its first requests through the gateway |',
  '| ---: | --- | --- |',
  `| ${f(fs.joinMs)} ms | ${fs.lateListed} of ${ADAPTERS.length} | ${fs.first.served} served, ${fs.first.refused} × 404 (batch statuses: ${statusText(fs.first.statuses)}) |`,
  '',
  'Its first requests: batches of 8 at once through the gateway, sent from the moment it is ready',
  'until it has received one; the gateway picks the worker. The join time is mostly the wait for the',
  'next readiness probe (up to 2 s); the probe then finds the engine up, reads its GET /v1/models and',
  'loads the adapters it lacks before it passes.',
  '',
  "## The fan-out's cost: one load and one unload",
  '',
  `Median of ${PAIRS} pairs (load, then unload, of \`${FANOUT_ADAPTER}\`), one after the other, with the fleet idle.`,
  '',
  '| target | load: median ms | load: max ms | unload: median ms | statuses (load/unload) |',
  '| --- | ---: | ---: | ---: | --- |',
  `| FlockServe, to ${WORKERS} workers | ${f(fs.cost.load, 1)} | ${f(fs.cost.loadMax, 1)} | ${f(fs.cost.unload, 1)} | ${fs.cost.statuses.join(', ')} |`,
  `| one worker, directly | ${f(alone.cost.load, 1)} | ${f(alone.cost.loadMax, 1)} | ${f(alone.cost.unload, 1)} | ${alone.cost.statuses.join(', ')} |`,
  '',
  'nginx has no row here: its unload goes to the least busy worker, not necessarily the one that',
  'took the load.',
  '',
  '## What it shows',
  '',
  `nginx forwards each load to one engine, so each adapter lives on 1 of the ${WORKERS}, and a request`,
  'naming it succeeds only where it lands on that engine; the 404s come back at once, so least_conn',
  `sends the engines without the adapter more of the requests (${count(nginx, 404)} of ${REQUESTS} failed). Another`,
  'balancing rule, sticky ones included, still forwards the load to one engine, and an engine added',
  'later starts without it. FlockServe makes the load on every worker serving and brings a worker',
  'that joins to the adapters before its readiness probe passes, so every request is served, at the',
  `lone worker's latency (p50 ${f(fs.p50)} ms against ${f(alone.p50)} ms). Where it does not help: (1) engines that take`,
  "the change on other paths: it fans out only vLLM's `/v1/load_lora_adapter` and",
  '`/v1/unload_lora_adapter` (`src/routes/table.ts`, matched whole in `src/routes/rules.ts`);',
  "SGLang's `/load_lora_adapter` and `/unload_lora_adapter` are forwarded as any other path, to one",
  'worker (`src/http/app.ts`); (2) an adapter loaded on an engine directly, not through the gateway,',
  'stays on that engine alone: the gateway replays only the changes made through it',
  '(`AdapterLedger.stepsFor`); (3) a load that some engines refuse counts as taken when one worker',
  'took it; the others are sent it again at once and, while they refuse it, fail their readiness',
  'probes and leave service (`AdapterSync`): the fleet shrinks rather than the load failing; (4) a',
  'load answers once every serving worker has (in parallel), so it takes as long as the slowest',
  "engine's load, which on vLLM reads the adapter's weights (the simulator reads none).",
  '',
];
writeFileSync(`${ROOT}/bench/results/lora.md`, lines.join('\n'));
console.log(lines.join('\n'));
