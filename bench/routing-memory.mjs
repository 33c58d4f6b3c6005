#!/usr/bin/env node
// The gateway's memory for routing state: 100,000 prompts routed by prefix-cache and by
// prefix-hash over 16 workers, then the heap (after a full GC) and the RSS of the process,
// against the bound prefix-cache keeps its tree within (prefix_tree_max_chars per worker).
// The prompts are the Mooncake trace's 3,993 requests 25 times over, each round with its block
// ids shifted, so every round is new text with the trace's sharing (mean 15k tokens).
//
//   npm run build && node --expose-gc bench/routing-memory.mjs [--prompts 100000] [--trace FILE]
//
// Each policy is measured in a process of its own (RSS does not shrink back between
// measurements), least-connection too: it keeps nothing, so its growth is the cost of the loop
// itself (the prompts' garbage), the baseline the others are read against. Writes
// bench/results/routing-memory.md.
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { VirtualClock, seededRandom } from '../dist/core/clock.js';
import { PREFIX_CACHE_DEFAULTS } from '../dist/core/balancer/prefix-cache.js';
import { createBalancer } from '../dist/core/balancer/registry.js';
import { wireBalancer } from '../dist/core/balancer/wire.js';
import { WorkerPool } from '../dist/core/pool.js';
import { readTrace } from '../dist/sim/cluster/trace.js';
import { mooncakePrompt } from '../dist/sim/workloads/trace-prompts.js';

const ROOT = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: { prompts: { type: 'string' }, trace: { type: 'string' }, policy: { type: 'string' } },
});
const PROMPTS = Number(values.prompts ?? 100_000);
const WORKERS = 16;
const trace =
  values.trace ??
  [
    resolve(ROOT, '../shared/traces/mooncake-synthetic.jsonl'),
    resolve(ROOT, '../../shared/traces/mooncake-synthetic.jsonl'),
  ].find((f) => existsSync(f));
if (!trace) throw new Error('mooncake-synthetic.jsonl not found; pass --trace FILE');
if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc');

const requests = await readTrace(trace);
const MiB = 1024 * 1024;

function settle() {
  for (let i = 0; i < 3; i++) globalThis.gc();
  const m = process.memoryUsage();
  // ArrayBuffers (typed arrays' memory) live outside V8's heap: counted with it.
  return { heap: m.heapUsed + m.arrayBuffers, rss: m.rss };
}

/** Routes PROMPTS prompts through `name`; returns the memory it holds afterwards, and what its tree says it remembers. */
function measure(name) {
  const pool = new WorkerPool(new VirtualClock());
  const before = settle();
  const policy = createBalancer(name, { clock: new VirtualClock() });
  wireBalancer(pool, policy);
  for (let i = 0; i < WORKERS; i++) pool.add(`w${i}`, 30, 'ready');
  const ctx = { promptText: '', random: seededRandom(1) };
  let chars = 0;
  const t0 = performance.now();
  for (let n = 0; n < PROMPTS; n++) {
    const round = Math.floor(n / requests.length);
    const r = requests[n % requests.length];
    ctx.promptText = mooncakePrompt(
      (r.hashIds ?? []).map((id) => id + round * 1_000_000),
      r.promptTokens,
      r.line + round * 1_000_000,
    );
    chars += ctx.promptText.length;
    const w = policy.pick(pool.loads, ctx);
    pool.acquire(w);
    pool.release(w);
  }
  const seconds = (performance.now() - t0) / 1000;
  ctx.promptText = '';
  const after = settle();
  const remembered =
    typeof policy.treeChars === 'function' ? pool.list().reduce((n, w) => n + policy.treeChars(w), 0) : 0;
  return { name, before, after, remembered, chars, seconds, keep: policy };
}

if (values.policy) {
  // A child: measure one policy, print the numbers.
  const { keep: _, ...m } = measure(values.policy);
  console.log(JSON.stringify(m));
  process.exit(0);
}
const rows = [];
for (const name of ['least-connection', 'prefix-cache', 'prefix-hash']) {
  const args = ['--expose-gc', import.meta.filename, '--policy', name, '--prompts', `${PROMPTS}`, '--trace', trace];
  const m = JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8' }).trim().split('\n').at(-1));
  rows.push(m);
  console.log(
    name,
    `heap +${((m.after.heap - m.before.heap) / MiB).toFixed(1)} MiB`,
    `rss +${((m.after.rss - m.before.rss) / MiB).toFixed(1)} MiB`,
    `tree ${(m.remembered / MiB).toFixed(1)} Mi chars`,
    `${m.seconds.toFixed(1)} s`,
  );
}
const control = rows[0];
const rssOver = (m) => m.after.rss - m.before.rss - (control.after.rss - control.before.rss);

const bound = PREFIX_CACHE_DEFAULTS.prefixTreeMaxChars;
const md = `# Routing state in memory

${PROMPTS.toLocaleString('en')} prompts routed over ${WORKERS} workers (the Mooncake trace's ${requests.length.toLocaleString('en')} requests, ${Math.ceil(PROMPTS / requests.length)} rounds with
their block ids shifted each round: ${(rows[0].chars / 1e9).toFixed(1)} G characters, mean ${Math.round(rows[0].chars / PROMPTS).toLocaleString('en')} per prompt), then a full
GC, each policy in a process of its own. Heap = V8's heapUsed and ArrayBuffer memory after it, minus before the
policy was made: the routing state the policy keeps. RSS is the process's resident memory, same
difference; it also holds heap pages the GC freed but the OS has not taken back, which
least-connection (no routing state) shows: the growth over its growth is the routing state's. Default options: \`prefix_tree_max_chars\`
${bound.toLocaleString('en')} (${(bound / MiB).toFixed(0)} Mi characters) per worker, ${((bound * WORKERS) / MiB).toFixed(0)} Mi for the fleet.

| policy | heap held (MiB) | RSS growth (MiB) | RSS growth over least-connection's (MiB) | per worker, heap (MiB) | prompt characters remembered | route time |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
${rows
  .map(
    (m) =>
      `| ${m.name} | ${((m.after.heap - m.before.heap) / MiB).toFixed(1)} | ${((m.after.rss - m.before.rss) / MiB).toFixed(1)} | ${m === control ? '(baseline)' : (rssOver(m) / MiB).toFixed(1)} | ${((m.after.heap - m.before.heap) / WORKERS / MiB).toFixed(2)} | ${m.remembered ? `${(m.remembered / MiB).toFixed(1)} Mi` : 'none (no tree)'} | ${m.seconds.toFixed(1)} s |`,
  )
  .join('\n')}

prefix-cache remembers up to \`prefix_tree_max_chars\` of prompt per worker, but keeps only ~60
checkpoints of each prompt's chained hash (every 64 bytes to 1 KiB, then 4 per doubling), so a
remembered character costs a small fraction of a byte. prefix-hash keeps its ring (100 points
per worker) and a fixed table of 65,536 recent prompt keys (256 KiB), nothing per prompt. Measured on a shared 2-core machine; memory does not depend
on its load.

Command: \`npm run build && node --expose-gc bench/routing-memory.mjs\`
`;
writeFileSync(new URL('./results/routing-memory.md', import.meta.url), md);
console.log(md);
