#!/usr/bin/env node
// A soak: mixed traffic against a gateway over 4 simulator workers for --minutes, one worker
// killed (SIGKILL, streams cut mid-answer) and started again every --kill-every seconds. It
// counts what the gateway must never do, and watches what must not grow:
//
//   lost       requests that got neither an answer nor an explicit error (must be 0): a cut
//              connection, a stream that stops without [DONE] or an error event, a gRPC call that
//              ends without a status, no answer within the client's patience (120 s)
//   leaked     in-flight slots left once the traffic stops: the status JSON's
//              current_queue_length must return to 0
//   RSS        sampled every --sample s; its slope over the last 2/3 of the run (after warm-up)
//   open files the gateway's /proc/PID/fd, over time
//
// Traffic: Poisson arrivals at --rate requests/s, each one of (weights in MIX): HTTP streams,
// whole HTTP answers, gRPC streams, gRPC whole answers, HTTP streams the client aborts after the
// first chunk, slow readers (a pause after every chunk), completions, and bad bodies (5 %: broken
// JSON, wrong types, a missing field; each must get its 400).
//
//   npm run build && node bench/soak.mjs [--minutes 30] [--rate 20] [--kill-every 180] [--down 10]
//        [--workers 4] [--sample 5] [--seed 1] [--short] [--out bench/results/reliability.md]
//
// --short marks the result as a short run (a check that the soak works, not the soak). The result
// replaces the soak section of --out (bench/reliability.ts keeps it when it rewrites the file).
import { credentials } from '@grpc/grpc-js';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { InferenceServiceClient } from '../dist/gen/flockserve/v1/inference.js';
import { startGateway, startSim } from './lib/fleet.mjs';
import { ROOT } from './lib/procs.mjs';
import { writeSection } from './lib/sections.mjs';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    rate: { type: 'string', default: '20' },
    'kill-every': { type: 'string', default: '180' },
    down: { type: 'string', default: '10' },
    workers: { type: 'string', default: '4' },
    sample: { type: 'string', default: '5' },
    seed: { type: 'string', default: '1' },
    short: { type: 'boolean', default: false },
    out: { type: 'string', default: join(ROOT, 'bench/results/reliability.md') },
  },
});
const DURATION_MS = Number(values.minutes) * 60_000;
const RATE = Number(values.rate);
const KILL_EVERY_MS = Number(values['kill-every']) * 1000;
const DOWN_MS = Number(values.down) * 1000;
const SAMPLE_MS = Number(values.sample) * 1000;
const PATIENCE_MS = 120_000;

/** Kinds of request and their weights (sum 100). */
const MIX = [
  ['http-stream', 25],
  ['http-whole', 20],
  ['grpc-stream', 15],
  ['grpc-whole', 5],
  ['http-abort', 10],
  ['http-slow-reader', 10],
  ['completion', 10],
  ['bad-body', 5],
];

/** A seeded random source (mulberry32): the same run for the same seed. */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = random(Number(values.seed));
const pick = () => {
  let r = rand() * 100;
  for (const [kind, w] of MIX) if ((r -= w) < 0) return kind;
  return MIX[0][0];
};
const log = (...a) => console.log(new Date().toISOString().slice(11, 19), ...a);

const tally = {};
const lostDetails = [];
function count(kind, outcome, detail) {
  tally[kind] ??= { sent: 0, ok: 0, error: 0, cancelled: 0, lost: 0 };
  tally[kind][outcome]++;
  if (outcome === 'lost' && lostDetails.length < 10) lostDetails.push(`${kind}: ${detail}`);
}
const errorCodes = {};
const seenError = (code) => (errorCodes[code] = (errorCodes[code] ?? 0) + 1);

/** Reads an SSE body: ok with [DONE] (or TGI's final event), error when its last event is an error. */
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

async function httpCall(gw, dispatcher, kind) {
  const maxTokens = 10 + Math.floor(rand() * 150);
  const chat = {
    model: 'sim',
    messages: [{ role: 'user', content: `soak ${Math.floor(rand() * 1e6)}` }],
    max_tokens: maxTokens,
  };
  const ac = new AbortController();
  const patience = setTimeout(() => ac.abort(new Error('no answer within the client patience')), PATIENCE_MS);
  let path = '/v1/chat/completions';
  let body;
  let expectBad = false;
  switch (kind) {
    case 'http-whole':
      body = JSON.stringify(chat);
      break;
    case 'completion':
      path = '/v1/completions';
      body = JSON.stringify({ model: 'sim', prompt: 'soak', max_tokens: maxTokens, stream: rand() < 0.5 });
      break;
    case 'bad-body': {
      expectBad = true;
      const bad = [
        '{"model": "sim", "messages": [',
        '{"model":"sim","messages":"not a list"}',
        '{"model":"sim"}',
        'not json',
      ];
      body = bad[Math.floor(rand() * bad.length)];
      break;
    }
    default:
      body = JSON.stringify({ ...chat, stream: true });
  }
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
      if (expectBad)
        return res.statusCode === 400
          ? { outcome: 'ok' }
          : { outcome: 'lost', detail: `bad body got ${res.statusCode}` };
      return { outcome: 'error' };
    }
    if (expectBad) return { outcome: 'lost', detail: 'a bad body got 200' };
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
      abortAfterFirst: kind === 'http-abort' ? () => ac.abort(new Error('client abort')) : undefined,
    });
  } catch (err) {
    if (kind === 'http-abort' && ac.signal.aborted && String(ac.signal.reason?.message) === 'client abort')
      return { outcome: 'cancelled' };
    return { outcome: 'lost', detail: `${err?.code ?? ''} ${err?.message ?? err}` };
  } finally {
    clearTimeout(patience);
  }
}

function grpcCall(client, kind) {
  const req = {
    model: 'sim',
    messages: [{ role: 'user', content: { $case: 'text', value: `soak ${Math.floor(rand() * 1e6)}` } }],
    maxTokens: 10 + Math.floor(rand() * 150),
    stream: kind === 'grpc-stream',
    stop: [],
  };
  return new Promise((resolve) => {
    const call = client.chatCompletion(req, { deadline: Date.now() + PATIENCE_MS });
    let messages = 0;
    call.on('data', () => messages++);
    call.on('error', (err) => {
      if (err.code === 4) resolve({ outcome: 'lost', detail: 'no answer within the client patience (deadline)' });
      else if (err.details) {
        seenError(`grpc ${err.code}`);
        resolve({ outcome: 'error' });
      } else resolve({ outcome: 'lost', detail: `gRPC error ${err.code} without details` });
    });
    call.on('status', (s) => {
      if (s.code === 0)
        resolve(messages > 0 ? { outcome: 'ok' } : { outcome: 'lost', detail: 'status OK, no message' });
    });
  });
}

async function main() {
  log(`starting ${values.workers} workers and the gateway`);
  const sims = await Promise.all(
    Array.from({ length: Number(values.workers) }, () => startSim(['--token-interval', '5', '--max-num-seqs', '256'])),
  );
  const gw = await startGateway({
    workers: sims,
    args: ['--min_workers', values.workers, '--max_workers', values.workers, '--worker_capacity', '64'],
  });
  const dispatcher = new Agent({ connections: 256 });
  const grpc = new InferenceServiceClient(gw.grpcAddress, credentials.createInsecure());

  const t0 = performance.now();
  const samples = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let kills = 0;
  const sample = async () => {
    const status = await gw.status().catch(() => undefined);
    samples.push({
      s: (performance.now() - t0) / 1000,
      rss: gw.rssMiB(),
      fds: gw.fds(),
      queue: status?.current_queue_length ?? NaN,
      inFlight,
    });
  };
  await sample();
  const sampler = setInterval(() => void sample(), SAMPLE_MS);

  // One worker down and up again every KILL_EVERY_MS, in turn.
  let killing = Promise.resolve();
  const killer = setInterval(() => {
    const sim = sims[kills++ % sims.length];
    log(`killing the worker on port ${sim.port}; back in ${DOWN_MS / 1000} s`);
    killing = (async () => {
      await sim.kill();
      await sleep(DOWN_MS);
      await sim.start();
    })();
  }, KILL_EVERY_MS);

  log(`traffic for ${values.minutes} min at ${RATE} requests/s`);
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
  log(`traffic stopped; waiting for ${pending.size} requests and the last worker restart`);
  await Promise.all(pending);
  await killing;
  // The gateway's own count of requests in flight: every slot given back.
  let queue = NaN;
  for (let i = 0; i < 100; i++) {
    queue = (await gw.status()).current_queue_length;
    if (queue === 0) break;
    await sleep(100);
  }
  clearInterval(sampler);
  const endS = (performance.now() - t0) / 1000;
  // The clients' keep-alive connections closed: what the gateway still holds open is its own.
  grpc.close();
  await dispatcher.close();
  await sleep(2000);
  await sample();
  await gw.stop();
  await Promise.all(sims.map((s) => s.stop()));

  const md = render({ samples, queue, endS, kills, maxInFlight });
  writeSection(values.out, 'soak', md);
  console.log(md);
  process.exit(0);
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

function render({ samples, queue, endS, kills, maxInFlight }) {
  const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '—');
  const totals = Object.values(tally).reduce(
    (t, k) => {
      for (const key of Object.keys(t)) t[key] += k[key];
      return t;
    },
    { sent: 0, ok: 0, error: 0, cancelled: 0, lost: 0 },
  );
  const runS = DURATION_MS / 1000;
  const tail = samples.filter((s) => s.s >= runS / 3 && s.s <= runS);
  const rssSlope = slope(tail.map((s) => ({ x: s.s / 3600, y: s.rss })));
  const fdSlope = slope(tail.map((s) => ({ x: s.s / 3600, y: s.fds })));
  const during = samples.slice(0, -1);
  const at = (frac) =>
    during.reduce((best, s) => (Math.abs(s.s - frac * runS) < Math.abs(best.s - frac * runS) ? s : best));
  const L = [
    values.short ? '## Soak — short run (a check that the soak works; the full run is 30 minutes)' : '## Soak',
    '',
    'Command (after `npm run build`):',
    '',
    '```',
    `node bench/soak.mjs --minutes ${values.minutes} --rate ${RATE} --kill-every ${values['kill-every']} --down ${values.down} --workers ${values.workers} --sample ${values.sample} --seed ${values.seed}${values.short ? ' --short' : ''}`,
    '```',
    '',
    `Run ${new Date().toISOString()}, Node ${process.version}, ${f(endS, 0)} s. ${values.workers} simulator workers (5 ms per token)`,
    `behind \`flockserve --provisioner static\`; one worker killed with SIGKILL and started again ${values.down} s later`,
    `every ${values['kill-every']} s (${kills} kills). Poisson arrivals at ${RATE}/s; at most ${maxInFlight} requests in flight at once.`,
    'Outcomes as in the tables above: ok (a complete answer, or the 400 a bad body must get), an explicit error,',
    'cancelled by its client, or lost (neither answer nor explicit error).',
    '',
    '| kind | sent | ok | explicit error | cancelled by client | lost |',
    '| --- | --: | --: | --: | --: | --: |',
  ];
  for (const [kind, t] of Object.entries(tally))
    L.push(`| ${kind} | ${t.sent} | ${t.ok} | ${t.error} | ${t.cancelled} | ${t.lost} |`);
  L.push(
    `| **all** | ${totals.sent} | ${totals.ok} | ${totals.error} | ${totals.cancelled} | **${totals.lost}** |`,
    '',
  );
  L.push(
    `- **Lost: ${totals.lost}.** Errors seen: ${
      Object.entries(errorCodes)
        .map(([k, v]) => `${k} ×${v}`)
        .join(', ') || 'none'
    }.`,
    `- **Leaked in-flight slots: ${queue}** (current_queue_length once the traffic stopped and every request ended).`,
    `- **RSS**: ${f(samples[0].rss)} MiB at the start, ${f(at(1 / 3).rss)} at 1/3, ${f(at(2 / 3).rss)} at 2/3, ${f(at(1).rss)} at the end; slope over the last 2/3: **${f(rssSlope)} MiB/hour**.`,
    `- **Open files**: ${samples[0].fds} at the start, ${f(at(1 / 3).fds, 0)} at 1/3, ${f(at(2 / 3).fds, 0)} at 2/3, ${samples.at(-1).fds} once the traffic and the clients' connections were gone; max ${Math.max(...samples.map((s) => s.fds))}; slope over the last 2/3: ${f(fdSlope)} per hour.`,
  );
  if (lostDetails.length) L.push('', 'Lost requests:', ...lostDetails.map((d) => `- ${d}`));
  L.push(
    '',
    `Samples every ${values.sample} s (time s, RSS MiB, open files, current_queue_length, client in flight):`,
    '',
    '```',
  );
  const every = Math.max(1, Math.floor(samples.length / 40));
  for (let i = 0; i < samples.length; i += every) {
    const s = samples[i];
    L.push(
      `${f(s.s, 0).padStart(6)} ${f(s.rss).padStart(7)} ${String(s.fds).padStart(5)} ${String(s.queue).padStart(4)} ${String(s.inFlight).padStart(4)}`,
    );
  }
  L.push('```', '');
  return L.join('\n');
}

await main();
