#!/usr/bin/env node
// A soak: hours of a gateway's life compressed into --minutes. Mixed normal and hostile traffic
// against a gateway over 4 simulator workers, one worker killed (SIGKILL, streams cut
// mid-answer) and started again every --kill-every seconds, and --slow connections trickling a
// request head or body the whole time. It counts what the gateway must never do, and watches what
// must not grow:
//
//   lost       requests that got neither an answer nor an explicit error (must be 0): a cut
//              connection, a stream that stops without [DONE] or an error event, a gRPC call that
//              ends without a status, a slow connection closed without its 408, no answer within
//              the client's patience (120 s)
//   abandoned  requests whose client goes (an HTTP abort before or during the answer, a gRPC
//              cancel, a gRPC deadline that passes) ask for a 20 s answer: the worker must abort
//              them, so once the last client is done the workers must be idle within a second or
//              two, not 20 s later; the workers' own abort counters are reported beside them
//   leaked     in-flight slots left once the traffic stops: the status JSON's
//              current_queue_length must return to 0
//   memory     RSS and what it is made of (V8's heap: used and committed; external memory and
//              array buffers; the anonymous memory left outside both: malloc arenas, libuv,
//              nghttp2) sampled every --sample s, the heap after a forced GC every --gc-every s;
//              slopes over the last --window minutes (at most the last 2/3 of the run: after warm-up)
//   handles    the gateway's open files (/proc/PID/fd) and its active handles
//              (process.getActiveResourcesInfo(): sockets, timers, servers) over time, and its TCP
//              sockets by peer (from clients, to workers, left in CLOSE_WAIT)
//
// Traffic: Poisson arrivals at --rate requests/s, each one of the kinds in MIX (whole and
// streamed answers over HTTP and gRPC, slow and stalled readers, clients that go, bad input at
// 8 %: broken JSON, wrong types, a body over max_body_size, undecodable protobuf; each must get
// its 400, 413 or INVALID_ARGUMENT).
//
//   npm run build && node bench/soak.mjs [--minutes 30] [--rate 20] [--kill-every 180] [--down 10]
//        [--slow 200] [--trickle 5] [--workers 4] [--sample 5] [--gc-every 60] [--seed 1]
//        [--gateway-args='--client_header_timeout 10 ...'] [--gateway-env='MALLOC_ARENA_MAX=2']
//        [--gateway-node-args='--max-semi-space-size=...'] [--window 20] [--short]
//        [--out bench/results/reliability.md]
//
// The gateway runs with client timeouts shorter than its defaults (--gateway-args), so that slow
// connections come and go many times within the run, as they would over hours with the defaults.
// --short marks the result as a short run. The result replaces the soak section of --out
// (bench/reliability.ts keeps it when it rewrites the file).
import { credentials, Metadata } from '@grpc/grpc-js';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { seededRandom } from '../dist/core/clock.js';
import { InferenceServiceClient } from '../dist/gen/flockserve/v1/inference.js';
import { startFleet } from './lib/fleet.mjs';
import { ROOT } from './lib/procs.mjs';
import { writeSection } from './lib/sections.mjs';
import { gatewayCounters, slowClients } from './lib/slow-clients.mjs';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    rate: { type: 'string', default: '20' },
    'kill-every': { type: 'string', default: '180' },
    down: { type: 'string', default: '10' },
    slow: { type: 'string', default: '200' },
    trickle: { type: 'string', default: '5' },
    workers: { type: 'string', default: '4' },
    sample: { type: 'string', default: '5' },
    'gc-every': { type: 'string', default: '60' },
    seed: { type: 'string', default: '1' },
    'gateway-args': {
      type: 'string',
      default: '--client_header_timeout 10 --client_body_timeout 10 --client_request_timeout 30 --max_body_size 262144',
    },
    'gateway-env': { type: 'string', default: '' },
    'gateway-node-args': { type: 'string', default: '' },
    window: { type: 'string', default: '20' },
    short: { type: 'boolean', default: false },
    out: { type: 'string', default: join(ROOT, 'bench/results/reliability.md') },
  },
});
const DURATION_MS = Number(values.minutes) * 60_000;
const RATE = Number(values.rate);
const KILL_EVERY_MS = Number(values['kill-every']) * 1000;
const DOWN_MS = Number(values.down) * 1000;
const SAMPLE_MS = Number(values.sample) * 1000;
const GC_EVERY_MS = Number(values['gc-every']) * 1000;
const SLOW = Number(values.slow);
const GATEWAY_ARGS = values['gateway-args'].split(' ').filter(Boolean);
const GATEWAY_ENV = Object.fromEntries(
  values['gateway-env']
    .split(' ')
    .filter(Boolean)
    .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
);
const GATEWAY_NODE_ARGS = values['gateway-node-args'].split(' ').filter(Boolean);
const MAX_BODY = Number(GATEWAY_ARGS[GATEWAY_ARGS.indexOf('--max_body_size') + 1] ?? 10 * 2 ** 20);
const PATIENCE_MS = 120_000;
const TOKEN_MS = 5;
/** Tokens asked for by a client that goes: 20 s of answer, so a worker left generating shows. */
const LONG = 4000;
const GRPC_CODE = { OK: 0, CANCELLED: 1, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4 };

/** Kinds of request and their weights (sum 100). */
const MIX = [
  ['http-stream', 20],
  ['http-whole', 15],
  ['completion', 8],
  ['grpc-stream', 12],
  ['grpc-whole', 5],
  ['http-slow-reader', 8], // a 20 ms pause after every chunk
  ['grpc-stalled-reader', 5], // reads nothing for 3 s after the first message, then the rest
  ['http-abort', 8], // goes after the first chunk of a long stream
  ['http-abort-early', 3], // goes 50–500 ms into a long whole answer, before its headers
  ['grpc-cancel', 5], // cancels after the first message of a long stream
  ['grpc-deadline', 3], // a 300 ms deadline on a long stream
  ['bad-body', 5],
  ['huge-body', 1],
  ['grpc-garbage', 2],
];
/** Kinds whose client goes before its answer ends (the worker must abort them). */
const ABANDONING = new Set(['http-abort', 'http-abort-early', 'grpc-cancel', 'grpc-deadline']);

const rand = seededRandom(Number(values.seed));
const pick = () => {
  let r = rand() * 100;
  for (const [kind, w] of MIX) if ((r -= w) < 0) return kind;
  return MIX[0][0];
};
const shortAnswer = () => 10 + Math.floor(rand() * 150);
const log = (...a) => console.log(new Date().toISOString().slice(11, 19), ...a);

const tally = {};
const lostDetails = [];
function count(kind, outcome, detail) {
  tally[kind][outcome]++;
  if (outcome === 'lost' && lostDetails.length < 10) lostDetails.push(`${kind}: ${detail}`);
}
const errorCodes = {};
const seenError = (code) => (errorCodes[code] = (errorCodes[code] ?? 0) + 1);

/** Reads an SSE body: ok with [DONE], error when its last event is an error. */
async function readSse(body, { pauseMs = 0, abortAfterFirst } = {}) {
  let text = '';
  let first = true;
  for await (const chunk of body) {
    text += chunk.toString('utf8');
    if (first && abortAfterFirst) {
      abortAfterFirst();
      return { outcome: 'cancelled' };
    }
    first = false;
    if (pauseMs) await sleep(pauseMs);
  }
  const events = text.split('\n\n').filter((e) => e.startsWith('data:'));
  const last = events.at(-1) ?? '';
  if (last === 'data: [DONE]') return { outcome: 'ok' };
  if (last.startsWith('data: {"error"')) {
    seenError(JSON.parse(last.slice(6)).error?.code ?? 'stream error');
    return { outcome: 'error' };
  }
  return { outcome: 'lost', detail: `stream ended without [DONE] or an error: ${JSON.stringify(last.slice(0, 80))}` };
}

/** The body, path and expected refusal of an HTTP request of this kind. */
function httpRequestOf(kind) {
  const chat = (maxTokens, stream) => ({
    model: 'sim',
    messages: [{ role: 'user', content: `soak ${Math.floor(rand() * 1e6)}` }],
    max_tokens: maxTokens,
    stream,
  });
  switch (kind) {
    case 'http-whole':
      return { body: JSON.stringify(chat(shortAnswer(), false)) };
    case 'http-abort-early':
      return { body: JSON.stringify(chat(LONG, false)) };
    case 'http-abort':
      return { body: JSON.stringify(chat(LONG, true)) };
    case 'completion':
      return {
        path: '/v1/completions',
        body: JSON.stringify({ model: 'sim', prompt: 'soak', max_tokens: shortAnswer(), stream: rand() < 0.5 }),
      };
    case 'bad-body': {
      const bad = [
        '{"model": "sim", "messages": [',
        '{"model":"sim","messages":"not a list"}',
        '{"model":"sim"}',
        'not json',
      ];
      return { body: bad[Math.floor(rand() * bad.length)], refusal: 400 };
    }
    case 'huge-body':
      return {
        body: JSON.stringify({ ...chat(16, false), padding: 'x'.repeat(MAX_BODY) }),
        refusal: 413,
      };
    default:
      return { body: JSON.stringify(chat(shortAnswer(), true)) };
  }
}

async function httpCall(gw, dispatcher, kind) {
  const { path = '/v1/chat/completions', body, refusal } = httpRequestOf(kind);
  const ac = new AbortController();
  const patience = setTimeout(() => ac.abort(new Error('no answer within the client patience')), PATIENCE_MS);
  const goAway = () => ac.abort(new Error('client abort'));
  const early = kind === 'http-abort-early' ? setTimeout(goAway, 50 + rand() * 450) : undefined;
  try {
    const res = await request(`${gw.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: ac.signal,
      dispatcher,
    });
    const stream = (res.headers['content-type'] ?? '').startsWith('text/event-stream');
    if (res.statusCode !== 200) {
      const text = await res.body.text();
      let code;
      try {
        code = JSON.parse(text).error?.code;
      } catch {
        /* not JSON */
      }
      if (code === undefined) return { outcome: 'lost', detail: `${res.statusCode} without an error body` };
      seenError(`${res.statusCode} ${code}`);
      if (refusal)
        return res.statusCode === refusal
          ? { outcome: 'ok' }
          : { outcome: 'lost', detail: `${kind} got ${res.statusCode}, not ${refusal}` };
      return { outcome: 'error' };
    }
    if (refusal) return { outcome: 'lost', detail: `${kind} got 200` };
    if (!stream) {
      const text = await res.body.text();
      try {
        JSON.parse(text);
        return { outcome: 'ok' };
      } catch {
        return { outcome: 'lost', detail: `200 with a body that is not JSON: ${text.slice(0, 80)}` };
      }
    }
    return await readSse(res.body, {
      pauseMs: kind === 'http-slow-reader' ? 20 : 0,
      abortAfterFirst: kind === 'http-abort' ? goAway : undefined,
    });
  } catch (err) {
    if (ABANDONING.has(kind) && String(ac.signal.reason?.message) === 'client abort') return { outcome: 'cancelled' };
    return { outcome: 'lost', detail: `${err?.code ?? ''} ${err?.message ?? err}` };
  } finally {
    clearTimeout(patience);
    clearTimeout(early);
  }
}

/** Random bytes as a ChatCompletion request: the gateway must answer INVALID_ARGUMENT. */
function grpcGarbage(client) {
  const bytes = Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 200) }, () => Math.floor(rand() * 256)));
  return client.makeServerStreamRequest(
    '/flockserve.v1.InferenceService/ChatCompletion',
    (b) => b,
    (b) => b,
    bytes,
    new Metadata(),
    { deadline: Date.now() + PATIENCE_MS },
  );
}

function grpcCall(client, kind) {
  const long = kind === 'grpc-cancel' || kind === 'grpc-deadline';
  const req = {
    model: 'sim',
    messages: [{ role: 'user', content: { $case: 'text', value: `soak ${Math.floor(rand() * 1e6)}` } }],
    maxTokens: long ? LONG : kind === 'grpc-stalled-reader' ? 400 : shortAnswer(),
    stream: kind !== 'grpc-whole',
    stop: [],
  };
  return new Promise((resolve) => {
    const call =
      kind === 'grpc-garbage'
        ? grpcGarbage(client)
        : client.chatCompletion(req, { deadline: Date.now() + (kind === 'grpc-deadline' ? 300 : PATIENCE_MS) });
    let messages = 0;
    call.on('data', () => {
      if (messages++ > 0) return;
      if (kind === 'grpc-cancel') call.cancel();
      if (kind === 'grpc-stalled-reader') {
        call.pause();
        setTimeout(() => call.resume(), 3000);
      }
    });
    call.on('error', (err) => {
      if (kind === 'grpc-cancel' && err.code === GRPC_CODE.CANCELLED) return resolve({ outcome: 'cancelled' });
      if (kind === 'grpc-deadline' && err.code === GRPC_CODE.DEADLINE_EXCEEDED) {
        seenError('grpc DEADLINE_EXCEEDED (the client’s 300 ms)');
        return resolve({ outcome: 'error' });
      }
      if (err.code === GRPC_CODE.DEADLINE_EXCEEDED)
        return resolve({ outcome: 'lost', detail: 'no answer within the client patience (deadline)' });
      if (!err.details) return resolve({ outcome: 'lost', detail: `gRPC error ${err.code} without details` });
      seenError(`grpc ${err.code}`);
      if (kind === 'grpc-garbage')
        return resolve(
          err.code === GRPC_CODE.INVALID_ARGUMENT
            ? { outcome: 'ok' }
            : { outcome: 'lost', detail: `garbage got code ${err.code}: ${err.details}` },
        );
      resolve({ outcome: 'error' });
    });
    call.on('status', (s) => {
      if (s.code !== GRPC_CODE.OK) return;
      // Random bytes may decode as a request the gateway can serve: an answer is not lost.
      if (kind === 'grpc-garbage') return resolve({ outcome: 'ok' });
      resolve(messages > 0 ? { outcome: 'ok' } : { outcome: 'lost', detail: 'status OK, no message' });
    });
  });
}

/**
 * The workers' own counters (GET /sim/stats) summed over their lives: a worker killed and
 * started again counts from 0, so what it had counted before is carried over.
 */
function workerCounters(sims) {
  const last = new Map(sims.map((s) => [s, { received: 0, aborted: 0, completed: 0 }]));
  const carried = { received: 0, aborted: 0, completed: 0 };
  return {
    /** Reads every worker that is up; resolves with their requests running or waiting. */
    async read() {
      let busy = 0;
      await Promise.all(
        sims.map(async (sim) => {
          const stats = await fetch(`${sim.url}/sim/stats`, { signal: AbortSignal.timeout(2000) })
            .then((r) => r.json())
            .catch(() => undefined);
          if (!stats) return;
          const prev = last.get(sim);
          if (stats.received < prev.received) for (const k of Object.keys(carried)) carried[k] += prev[k];
          last.set(sim, { received: stats.received, aborted: stats.aborted, completed: stats.completed });
          busy += stats.running + stats.waiting;
        }),
      );
      return busy;
    },
    totals() {
      const t = { ...carried };
      for (const v of last.values()) for (const k of Object.keys(t)) t[k] += v[k];
      return t;
    },
  };
}

async function main() {
  log(`starting ${values.workers} workers and the gateway`);
  const { sims, gw } = await startFleet({
    workers: Number(values.workers),
    simArgs: ['--token-interval', String(TOKEN_MS), '--max-num-seqs', '256'],
    capacity: 64,
    args: GATEWAY_ARGS,
    env: GATEWAY_ENV,
    nodeArgs: GATEWAY_NODE_ARGS,
  });
  const dispatcher = new Agent({ connections: 256 });
  const grpc = new InferenceServiceClient(gw.grpcAddress, credentials.createInsecure());
  const workers = workerCounters(sims);

  const t0 = performance.now();
  const load0 = loadavg()[0];
  const samples = [];
  const gcSamples = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let kills = 0;
  let slow;
  const since = () => (performance.now() - t0) / 1000;
  const gcSample = async () => {
    const m = await gw.memory({ gc: true });
    gcSamples.push({ s: since(), ...breakdown(m) });
  };
  const sample = async () => {
    const [status, m, busy] = await Promise.all([gw.status().catch(() => undefined), gw.memory(), workers.read()]);
    samples.push({
      s: since(),
      ...breakdown(m),
      fds: gw.fds(),
      sockets: gw.sockets(),
      handles: Object.values(m.resources).reduce((a, b) => a + b, 0),
      resources: m.resources,
      queue: status?.current_queue_length ?? NaN,
      workersBusy: busy,
      inFlight,
      slowOpen: slow?.open() ?? 0,
      load: loadavg()[0],
    });
  };
  await gcSample();
  await sample();
  // One sample at a time: on a busy machine a sample can take longer than the interval.
  let sampling = true;
  const every = async (ms, fn) => {
    while (sampling) {
      await sleep(ms);
      if (sampling) await fn();
    }
  };
  const samplers = Promise.all([every(SAMPLE_MS, sample), every(GC_EVERY_MS, gcSample)]);

  // One worker down and up again every KILL_EVERY_MS, in turn.
  let killing = Promise.resolve();
  const killer = setInterval(() => {
    const sim = sims[kills++ % sims.length];
    log(`killing the worker on port ${sim.port}; back in ${DOWN_MS / 1000} s`);
    killing = (async () => {
      await workers.read(); // what it counted, before its counters go with it
      await sim.kill();
      await sleep(DOWN_MS);
      await sim.start();
    })();
  }, KILL_EVERY_MS);

  slow = slowClients({
    port: new URL(gw.url).port,
    slowHeader: Math.ceil(SLOW / 2),
    slowBody: Math.floor(SLOW / 2),
    trickleS: Number(values.trickle),
  });
  await slow.opened;
  log(`${slow.open()} slow connections open; traffic for ${values.minutes} min at ${RATE} requests/s`);
  const pending = new Set();
  while (performance.now() - t0 < DURATION_MS) {
    await sleep((-Math.log(1 - rand()) / RATE) * 1000);
    const kind = pick();
    tally[kind] ??= { sent: 0, ok: 0, error: 0, cancelled: 0, lost: 0 };
    tally[kind].sent++;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const p = (kind.startsWith('grpc') ? grpcCall(grpc, kind) : httpCall(gw, dispatcher, kind)).then(
      ({ outcome, detail }) => {
        inFlight--;
        count(kind, outcome, detail);
        pending.delete(p);
      },
    );
    pending.add(p);
  }
  clearInterval(killer);
  const countersDuring = await gatewayCounters(gw.url);
  slow.stop();
  log(`traffic stopped; waiting for ${pending.size} requests and the slow connections`);
  await Promise.all([...pending, slow.closed]);
  // Every client is done: the workers must stop generating for those that went.
  const lastClient = performance.now();
  let busy = await workers.read();
  while (busy > 0 && performance.now() - lastClient < 30_000) {
    await sleep(100);
    busy = await workers.read();
  }
  const idleAfterS = (performance.now() - lastClient) / 1000;
  log(`workers idle ${idleAfterS.toFixed(1)} s after the last client (${busy} still busy)`);
  await killing;
  // The gateway's own count of requests in flight: every slot given back.
  let queue = NaN;
  for (let i = 0; i < 100; i++) {
    queue = (await gw.status()).current_queue_length;
    if (queue === 0) break;
    await sleep(100);
  }
  sampling = false;
  await samplers;
  const endS = since();
  // The clients' keep-alive connections closed: what the gateway still holds open is its own.
  grpc.close();
  await dispatcher.close();
  await sleep(2000);
  await sample();
  await gcSample();
  const workerTotals = workers.totals();
  await gw.stop();
  await Promise.all(sims.map((s) => s.stop()));

  const md = render({
    samples,
    gcSamples,
    queue,
    endS,
    kills,
    maxInFlight,
    slowTally: slow.tally,
    idleAfterS,
    busyAtEnd: busy,
    workerTotals,
    countersDuring,
    load0,
  });
  writeSection(values.out, 'soak', md);
  console.log(md);
  process.exit(0);
}

/**
 * The gateway's memory in MiB: RSS; V8's heap used and committed (heapTotal: pages V8 holds,
 * live or not); external memory (array buffers among it); the anonymous memory outside V8's heap
 * and the external memory (malloc arenas and their fragmentation, libuv, nghttp2, V8's own
 * malloc, thread stacks).
 */
function breakdown(m) {
  const mib = (b) => b / 2 ** 20;
  return {
    rss: mib(m.rss),
    heap: mib(m.heapUsed),
    heapTotal: mib(m.heapTotal),
    newSpace: mib(m.newSpaceSize),
    external: mib(m.external),
    buffers: mib(m.arrayBuffers),
    native: m.anonKiB / 1024 - mib(m.heapTotal) - mib(m.external),
  };
}

/** Least-squares slope of y over x. */
function slope(points) {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return num / den;
}

function render(r) {
  const { samples, gcSamples, queue, endS, kills, maxInFlight, slowTally, workerTotals } = r;
  const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '—');
  const sum = (rows, key) => rows.reduce((n, row) => n + row[key], 0);
  const totals = Object.fromEntries(
    ['sent', 'ok', 'error', 'cancelled', 'lost'].map((k) => [k, sum(Object.values(tally), k)]),
  );
  const runS = DURATION_MS / 1000;
  const during = samples.slice(0, -1);
  const windowS = Math.min(Number(values.window) * 60, (runS * 2) / 3);
  const tail = (rows) => rows.filter((s) => s.s >= runS - windowS && s.s <= runS);
  const win = `the last ${f(windowS / 60, 0)} min`;
  const perHour = (rows, key) => slope(tail(rows).map((s) => ({ x: s.s / 3600, y: s[key] })));
  const at = (rows, frac) =>
    rows.reduce((best, s) => (Math.abs(s.s - frac * runS) < Math.abs(best.s - frac * runS) ? s : best));
  const series = (rows, key, d = 1) =>
    `${f(rows[0][key], d)} at the start, ${f(at(rows, 1 / 3)[key], d)} at 1/3, ${f(at(rows, 2 / 3)[key], d)} at 2/3, ${f(at(rows, 1)[key], d)} at the end`;
  const abandoned = [...ABANDONING].reduce((n, k) => n + (tally[k]?.cancelled ?? 0) + (tally[k]?.error ?? 0), 0);
  const slowRows = Object.entries(slowTally);
  const slowLost = sum(
    slowRows.map(([, t]) => t),
    'closedSilently',
  );
  const command = [
    `node bench/soak.mjs --minutes ${values.minutes} --rate ${RATE} --kill-every ${values['kill-every']} --down ${values.down}`,
    `--slow ${SLOW} --trickle ${values.trickle} --workers ${values.workers} --sample ${values.sample} --gc-every ${values['gc-every']}`,
    `--seed ${values.seed} --gateway-args='${GATEWAY_ARGS.join(' ')}'`,
    values['gateway-env'] ? `--gateway-env='${values['gateway-env']}'` : '',
    GATEWAY_NODE_ARGS.length ? `--gateway-node-args='${values['gateway-node-args']}'` : '',
    values.window !== '20' ? `--window ${values.window}` : '',
    values.short ? '--short' : '',
  ]
    .filter(Boolean)
    .join(' ');
  const lastResources = samples.at(-1).resources;
  const L = [
    values.short
      ? `## Soak — a short run (${values.minutes} min; the soak the issue asks for is 30 minutes or more)`
      : '## Soak',
    '',
    'Command (after `npm run build`):',
    '',
    '```',
    command,
    '```',
    '',
    `Run ${new Date().toISOString()}, Node ${process.version}, ${f(endS, 0)} s; load average ${f(r.load0)} at the start, ${f(Math.max(...samples.map((s) => s.load)))} at most (the machine is shared).`,
    `${values.workers} simulator workers (${TOKEN_MS} ms per token) behind \`${Object.entries(GATEWAY_ENV)
      .map(([k, v]) => `${k}=${v} `)
      .join(
        '',
      )}flockserve --provisioner static ${GATEWAY_ARGS.join(' ')}\`${GATEWAY_NODE_ARGS.length ? ` (node ${GATEWAY_NODE_ARGS.join(' ')})` : ''};`,
    `one worker killed with SIGKILL and started again ${values.down} s later every ${values['kill-every']} s (${kills} kills).`,
    `Poisson arrivals at ${RATE}/s (at most ${maxInFlight} requests in flight at once) and ${SLOW} slow connections throughout`,
    `(half trickling a request head, half a body; each opened again when the gateway closes it).`,
    'Outcomes: ok (a complete answer, or the refusal bad input must get: 400, 413, INVALID_ARGUMENT), an explicit',
    'error (an error body or event, a gRPC status with details; a worker killed mid-answer ends in one), cancelled by',
    'its client, or lost (neither answer nor explicit error).',
    '',
    '| kind | sent | ok | explicit error | cancelled by client | lost |',
    '| --- | --: | --: | --: | --: | --: |',
  ];
  for (const [kind] of MIX) {
    const t = tally[kind];
    if (t) L.push(`| ${kind} | ${t.sent} | ${t.ok} | ${t.error} | ${t.cancelled} | ${t.lost} |`);
  }
  L.push(
    `| **all** | ${totals.sent} | ${totals.ok} | ${totals.error} | ${totals.cancelled} | **${totals.lost}** |`,
    '',
    '| slow connection | opened | answered 408 | answered otherwise | closed without an answer | open at the end | connect failed (tried again) |',
    '| --- | --: | --: | --: | --: | --: | --: |',
  );
  for (const [kind, t] of slowRows)
    L.push(
      `| ${kind} | ${t.opened} | ${t.answered408} | ${t.answeredOther} | ${t.closedSilently} | ${t.openAtEnd} | ${t.connectFailed} |`,
    );
  L.push(
    '',
    `- **Lost: ${totals.lost} requests, ${slowLost} slow connections.** Errors seen: ${
      Object.entries(errorCodes)
        .map(([k, v]) => `${k} ×${v}`)
        .join(', ') || 'none'
    }.`,
    `- **Clients that went: ${abandoned}** (aborted, cancelled or past their deadline, each asking for ${(LONG * TOKEN_MS) / 1000} s of answer).` +
      ` Workers idle **${f(r.idleAfterS)} s** after the last client was done (${r.busyAtEnd} requests still running on them);` +
      ` sequences the workers aborted: ${workerTotals.aborted} (of ${workerTotals.received} received, ${workerTotals.completed} completed; a killed worker's last counts are lost with it).`,
    `- **Leaked in-flight slots: ${queue}** (current_queue_length once the traffic stopped and every request ended).`,
    `- **RSS (MiB)**: ${series(during, 'rss')}; slope over ${win}: **${f(perHour(during, 'rss'))} MiB/hour**.`,
    `- **What the RSS is made of (MiB)**, slope over ${win} in MiB/hour: V8's heap committed (heapTotal) ${series(during, 'heapTotal')}, **${f(perHour(during, 'heapTotal'))}**;` +
      ` the young generation among it ${series(during, 'newSpace')}, **${f(perHour(during, 'newSpace'))}**;` +
      ` external memory ${series(during, 'external')}, **${f(perHour(during, 'external'))}**;` +
      ` anonymous memory outside both (malloc arenas, libuv, nghttp2, stacks) ${series(during, 'native')}, **${f(perHour(during, 'native'))}**.`,
    `- **Heap after a forced GC (MiB)**, every ${values['gc-every']} s: ${series(gcSamples.slice(0, -1), 'heap')}, ${f(gcSamples.at(-1).heap)} once the clients were gone; slope over ${win}: **${f(perHour(gcSamples, 'heap'))} MiB/hour**.` +
      ` After the same GCs: heap committed ${f(gcSamples[0].heapTotal)} → ${f(gcSamples.at(-1).heapTotal)}, external ${f(gcSamples[0].external)} → ${f(gcSamples.at(-1).external)}, array buffers ${f(gcSamples[0].buffers)} → ${f(gcSamples.at(-1).buffers)}, outside both ${f(gcSamples[0].native)} → ${f(gcSamples.at(-1).native)}, RSS ${f(gcSamples[0].rss)} → ${f(gcSamples.at(-1).rss)} MiB.`,
    `- **Open files**: ${series(during, 'fds', 0)}, ${samples.at(-1).fds} once the traffic and the clients' connections were gone; slope over ${win}: ${f(perHour(during, 'fds'))} per hour.`,
    `- **Sockets** at the end, once the clients had gone: ${Object.entries(samples.at(-1).sockets)
      .map(
        ([k, v]) =>
          `${v} ${{ listening: 'listening', fromClients: 'from clients', toWorkers: 'to workers (the pool kept alive)', other: 'other', closeWait: 'in CLOSE_WAIT' }[k]}`,
      )
      .join(
        ', ',
      )}; to workers at most ${Math.max(...samples.map((s) => s.sockets.toWorkers))}, in CLOSE_WAIT at most ${Math.max(...samples.map((s) => s.sockets.closeWait))} (the client has closed, the gateway not yet). The bench's own status and /metrics polls are among the clients.`,
    `- **Active handles** (sockets, timers, servers): ${series(during, 'handles', 0)}, ${samples.at(-1).handles} at the end (${Object.entries(
      lastResources,
    )
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}); slope over ${win}: ${f(perHour(during, 'handles'))} per hour.`,
    `- The gateway's client counters at the end of the traffic: ${Object.entries(r.countersDuring)
      .filter(([k]) => !k.includes('grpc'))
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}.`,
  );
  if (lostDetails.length) L.push('', 'Lost requests (the first 10):', ...lostDetails.map((d) => `- ${d}`));
  L.push(
    '',
    `Samples (time s; MiB: RSS, heap used, heap committed, young generation committed (among the heap), external, array buffers,`,
    'anonymous outside heap and external;',
    'open files, sockets from clients, sockets to workers,',
    'active handles, current_queue_length, requests running on workers, client requests in flight, slow connections',
    'open, load average):',
    '',
    '```',
  );
  const every = Math.max(1, Math.floor(samples.length / 40));
  const pad = (x, n, d = 1) => (typeof x === 'number' && !Number.isInteger(x) ? f(x, d) : String(x)).padStart(n);
  for (let i = 0; i < samples.length; i += every) {
    const s = samples[i];
    L.push(
      [
        pad(f(s.s, 0), 6),
        pad(s.rss, 7),
        pad(s.heap, 6),
        pad(s.heapTotal, 6),
        pad(s.newSpace, 6),
        pad(s.external, 6),
        pad(s.buffers, 6),
        pad(s.native, 6),
        pad(s.fds, 5),
        pad(s.sockets.fromClients, 5),
        pad(s.sockets.toWorkers, 4),
        pad(s.handles, 5),
        pad(s.queue, 4),
        pad(s.workersBusy, 4),
        pad(s.inFlight, 4),
        pad(s.slowOpen, 4),
        pad(s.load, 5),
      ].join(' '),
    );
  }
  L.push('```', '');
  return L.join('\n');
}

await main();
