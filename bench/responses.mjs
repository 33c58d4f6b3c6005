#!/usr/bin/env node
// Conversations on the Responses API over a fleet whose engines keep their answers in their own
// memory (vLLM with VLLM_ENABLE_RESPONSES_API_STORE=1; here `flockserve-sim --responses-store`),
// live: `--conversations` clients at once, each `--turns` streamed turns long, every turn after
// the first naming the one before it (`previous_response_id`), each turn adding `--chars` of
// new input. The same conversations through:
//   - FlockServe (least-connection, the default), which sends a turn to the worker that stored
//     the turn before it;
//   - nginx (least_conn), as a user would balance the engines without an OpenAI-aware gateway;
//   - one worker alone (the yardstick for the turns' latency: nothing to route, every turn at home).
// A conversation ends at its first failed turn (the engine answers 404 for an answer it does
// not hold). Per target: conversations completed, turns failed, time to the first text delta
// of the later turns, and the engines' prefix-cache hits (the replayed conversation is cached
// only where it was prefilled before).
//   npm run build && node bench/responses.mjs [--workers 4] [--conversations 16] [--turns 6] [--chars 2000]
// Writes bench/results/responses.md.
import { writeFileSync } from 'node:fs';
import { parseArgs, TextDecoder } from 'node:util';
import { seededRandom } from '../dist/core/clock.js';
import { startFleet, startNginxFleet, startSim } from './lib/fleet.mjs';
import { percentile } from './lib/load.mjs';
import { ensureTools } from './lib/proxies.mjs';
import { ROOT, stop } from './lib/procs.mjs';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '4' },
    conversations: { type: 'string', default: '16' },
    turns: { type: 'string', default: '6' },
    chars: { type: 'string', default: '2000' },
    tokens: { type: 'string', default: '32' },
    seed: { type: 'string', default: '1' },
  },
});
const WORKERS = Number(values.workers);
const CONVERSATIONS = Number(values.conversations);
const TURNS = Number(values.turns);
const CHARS = Number(values.chars);
const TOKENS = Number(values.tokens);
const SIM_ARGS = ['--responses-store'];

const WORDS =
  'the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her she there one all we their'.split(
    ' ',
  );

/** `n` characters of words, different for every conversation, turn and target. */
function text(random, n) {
  let s = '';
  while (s.length < n) s += WORDS[Math.floor(random() * WORDS.length)] + ' ';
  return s.slice(0, n);
}

/**
 * One streamed turn: its status, the answer's id (from response.created), the ms to the first
 * text delta and to the end.
 */
async function turn(url, input, previous) {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'sim',
      input,
      max_output_tokens: TOKENS,
      stream: true,
      ...(previous ? { previous_response_id: previous } : {}),
    }),
  });
  if (res.status !== 200 || !(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    await res.arrayBuffer();
    return { status: res.status };
  }
  let seen = '';
  let id;
  let ttft;
  const decoder = new TextDecoder();
  for await (const chunk of res.body) {
    seen += decoder.decode(chunk, { stream: true });
    if (id === undefined) id = /"response":\{"id":"(resp_[0-9a-f]+)"/.exec(seen)?.[1];
    if (ttft === undefined && seen.includes('event: response.output_text.delta')) ttft = performance.now() - t0;
  }
  const completed = seen.includes('event: response.completed');
  return { status: completed ? 200 : 502, id, ttft, ms: performance.now() - t0 };
}

/** `count` conversations at once against `url`; a conversation ends at its first failed turn. */
async function conversations(url, count) {
  const later = [];
  let failedTurns = 0;
  let completed = 0;
  const statuses = {};
  await Promise.all(
    Array.from({ length: count }, async (_, c) => {
      // The same conversations through every target.
      const random = seededRandom(Number(values.seed) * 1_000 + c);
      let previous;
      for (let t = 0; t < TURNS; t++) {
        const r = await turn(url, text(random, CHARS), previous);
        if (r.status !== 200 || !r.id) {
          failedTurns++;
          statuses[r.status] = (statuses[r.status] ?? 0) + 1;
          return;
        }
        if (t > 0) later.push(r.ttft);
        previous = r.id;
      }
      completed++;
    }),
  );
  later.sort((a, b) => a - b);
  return { completed, failedTurns, statuses, later };
}

/** Prefix-cache hits of the engines, in prompt tokens looked up and found. */
async function cacheHits(sims) {
  let queries = 0;
  let hits = 0;
  for (const s of sims) {
    const st = await (await fetch(`${s.url}/sim/stats`)).json();
    queries += st.prefixCacheQueries;
    hits += st.prefixCacheHits;
  }
  return queries > 0 ? hits / queries : NaN;
}

async function run(name, count, target) {
  const { url, sims, close } = await target();
  try {
    const r = await conversations(url, count);
    const row = {
      name,
      count,
      ...r,
      hitRate: await cacheHits(sims),
      p50: percentile(r.later, 50),
      p99: percentile(r.later, 99),
    };
    console.log(JSON.stringify({ ...row, later: r.later.length }));
    return row;
  } finally {
    await close();
  }
}

ensureTools();
const rows = [];
rows.push(
  await run('FlockServe (least-connection)', CONVERSATIONS, async () => {
    const { sims, gw } = await startFleet({ workers: WORKERS, simArgs: SIM_ARGS, capacity: 64 });
    return {
      url: gw.url,
      sims,
      close: async () => {
        await stop(gw.child);
        await Promise.all(sims.map((s) => s.stop()));
      },
    };
  }),
);
rows.push(
  await run('nginx (least_conn)', CONVERSATIONS, () => startNginxFleet({ workers: WORKERS, simArgs: SIM_ARGS })),
);
rows.push(
  await run('one worker alone, its share of the conversations', Math.ceil(CONVERSATIONS / WORKERS), async () => {
    const sim = await startSim(SIM_ARGS);
    return { url: sim.url, sims: [sim], close: () => sim.stop() };
  }),
);

const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '—');
const lines = [
  '# Conversations on the Responses API over engines that store their answers',
  '',
  `Command: \`npm run build && node bench/responses.mjs --workers ${WORKERS} --conversations ${CONVERSATIONS} --turns ${TURNS} --chars ${CHARS}\``,
  '',
  `${WORKERS} simulator workers with \`--responses-store\` (each keeps the answers it wrote in its own`,
  'memory, as vLLM does with VLLM_ENABLE_RESPONSES_API_STORE=1; the default engine model, Llama-3.1-8B',
  `on an A100) and ${CONVERSATIONS} conversations at once, each ${TURNS} streamed turns of ${CHARS} new characters`,
  `and ${TOKENS} generated tokens; every turn after the first names the one before it. A conversation`,
  'ends at its first failed turn. Time to first delta: from sending a later turn to its first',
  '`response.output_text.delta` event. Cache hits: prompt tokens the engines found in their prefix',
  'caches, of those looked up.',
  '',
  '| target | conversations completed | turns failed (status) | later turns: first delta p50 ms | p99 ms | prefix-cache hits |',
  '| --- | ---: | --- | ---: | ---: | ---: |',
  ...rows.map((r) => {
    const failed = Object.entries(r.statuses)
      .map(([s, n]) => `${n} × ${s}`)
      .join(', ');
    return `| ${r.name} | ${r.completed} of ${r.count} | ${r.failedTurns}${failed ? ` (${failed})` : ''} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.hitRate * 100, 1)} % |`;
  }),
  '',
  `nginx sends each turn to the least busy engine, which holds the turn before it once in ${WORKERS}`,
  'times: a conversation breaks at the first turn that lands elsewhere (its first-delta times are',
  'those of the few later turns that landed by chance, early and short). FlockServe sends every',
  'turn that names an answer to the worker that stored it, so the yardstick for its times is one',
  'worker serving its share of the conversations alone, where every turn is at home: the engines',
  'find the replayed conversation in their prefix caches as often as that worker does.',
  '',
];
writeFileSync(`${ROOT}/bench/results/responses.md`, lines.join('\n'));
console.log(lines.join('\n'));
