/**
 * How much of the Mooncake trace's prompts any cache of a given size can hold, routing aside:
 * every request sent to ONE LRU cache of 512-token blocks (the engines evict least recently
 * used, as vLLM does) holding the whole fleet's KV memory at once, no running request taking
 * any of it. A prompt's cached part is its leading run of blocks found there. Then the TTFT a
 * request would have with no queue at all: its uncached tokens at the engine's prefill speed,
 * beside half of least-connection's TTFT p50 in the virtual-time run (the ≤ 0.5× target): how
 * much of that TTFT is the request's own prefill and how much waiting behind others'.
 *
 *   npx vite-node bench/mooncake-reuse.ts
 *
 * Writes bench/results/mooncake-reuse.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { MOONCAKE_BLOCK_TOKENS, readTrace } from '../src/sim/cluster/trace.js';
import { DEFAULT_PROFILE } from '../src/sim/engine-model.js';
import { MOONCAKE_LOADS, MOONCAKE_TRACE, WORKERS } from './lib/balancing-workloads.js';

const trace = await readTrace(MOONCAKE_TRACE);
const OFFLOAD = 2_000_000;

interface Reuse {
  readonly hitRate: number;
  readonly halfCached: number;
  /** The no-queue prefill at the 45th, 50th and 55th percentiles: how steep the median is. */
  readonly prefillMs: readonly [number, number, number];
}

/** One LRU of `tokens` (Infinity: every block ever seen) in front of every request, in arrival order. */
function reuse(tokens: number): Reuse {
  const capacity = Math.floor(tokens / MOONCAKE_BLOCK_TOKENS);
  const lru = new Map<number, true>(); // insertion order = recency
  let looked = 0;
  let found = 0;
  let half = 0;
  const prefillMs: number[] = [];
  for (const r of trace) {
    const ids = r.hashIds ?? [];
    let run = 0;
    while (run < ids.length && lru.has(ids[run]!)) run++;
    const cached = Math.min(run * MOONCAKE_BLOCK_TOKENS, r.promptTokens);
    looked += r.promptTokens;
    found += cached;
    if (cached >= r.promptTokens / 2) half++;
    // At least one token is computed, as in vLLM.
    prefillMs.push((Math.max(1, r.promptTokens - cached) / DEFAULT_PROFILE.prefillTokensPerSecond) * 1000);
    for (const id of ids) {
      lru.delete(id);
      lru.set(id, true);
      if (lru.size > capacity) lru.delete(lru.keys().next().value!);
    }
  }
  prefillMs.sort((a, b) => a - b);
  const at = (q: number): number => prefillMs[Math.floor(q * prefillMs.length)]!;
  return { hitRate: found / looked, halfCached: half / trace.length, prefillMs: [at(0.45), at(0.5), at(0.55)] };
}

const kv = DEFAULT_PROFILE.kvCacheTokens;
const sizes: [string, number][] = [
  [`one GPU's KV cache (${kv.toLocaleString('en')})`, kv],
  [`the fleet's, ${WORKERS} GPUs (${(WORKERS * kv).toLocaleString('en')}): the gpu profile`, WORKERS * kv],
  [`twice that (${(2 * WORKERS * kv).toLocaleString('en')})`, 2 * WORKERS * kv],
  [
    `${WORKERS} GPUs + ${WORKERS} × ${OFFLOAD.toLocaleString('en')} host memory (${(WORKERS * (kv + OFFLOAD)).toLocaleString('en')}): the offload profile`,
    WORKERS * (kv + OFFLOAD),
  ],
  ['unbounded (every block ever seen)', Infinity],
];

// least-connection's TTFT p50 on the gpu profile in the virtual-time run, the target's yardstick.
const sim = JSON.parse(readFileSync(resolve(import.meta.dirname, 'results/balancing-sim.json'), 'utf8')) as {
  runs: Record<string, { ttftP50: number }>;
};
const lcP50 = (scale: number): number => sim.runs[`mooncake/x${scale}/gpu/least-connection/seed 1`]!.ttftP50;
const { moderate, saturated } = MOONCAKE_LOADS.gpu;

const rows = sizes.map(([label, tokens]) => {
  const r = reuse(tokens);
  return `| ${label} | ${(r.hitRate * 100).toFixed(1)}% | ${(r.halfCached * 100).toFixed(1)}% | ${r.prefillMs.map((ms) => ms.toFixed(0)).join(' / ')} |`;
});

const md = `# What the Mooncake trace's prefixes can give, routing aside

Every request of \`mooncake-synthetic.jsonl\` (${trace.length.toLocaleString('en')} requests) sent to ONE least-recently-used cache
of ${MOONCAKE_BLOCK_TOKENS}-token blocks of the given size — the whole fleet's KV memory as a single cache, no running
request taking any of it, so more than four engines' caches can hold whatever the routing — and a
prompt's cached part its leading run of blocks found there. "Prefill p45 / p50 / p55" are percentiles over
requests of the TTFT each would have with no queue at all: its uncached tokens at the engine's
${DEFAULT_PROFILE.prefillTokensPerSecond.toLocaleString('en')} tokens/s. Around the median they climb steeply (the requests that find
their history cached against those that find none), so a policy's TTFT p50 moves a lot with a few
points of requests that hit or wait.

| cache (tokens) | hit rate | requests with ≥ half their prompt cached | prefill p45 / p50 / p55, no queue (ms) |
| --- | ---: | ---: | ---: |
${rows.join('\n')}

Half of least-connection's TTFT p50 on the gpu profile in the virtual-time run: ${(lcP50(moderate) / 2).toFixed(0)} ms (moderate, ×${moderate})
and ${(lcP50(saturated) / 2).toFixed(0)} ms (near saturation, ×${saturated}).

Command: \`npx vite-node bench/mooncake-reuse.ts\`
`;
writeFileSync(resolve(import.meta.dirname, 'results/mooncake-reuse.md'), md);
console.log(md);
