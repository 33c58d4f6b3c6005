/**
 * Reliability report: runs every fault-injection scenario of test/faults/harness.ts with more
 * requests than the test suite, then the HTTP fuzz properties with more cases, and writes
 * bench/results/reliability.md.
 *
 *   npx tsc -p tsconfig.build.json   # the simulator workers run from dist/
 *   node --expose-gc node_modules/.bin/vite-node bench/reliability.ts [--rounds 3]
 *
 * --rounds: how many times the leak check runs its 1,000 requests on one gateway.
 * The gateway runs in this process (the programmatic API), the workers are simulator processes.
 * Memory is the gateway process's heap after a forced GC (needs --expose-gc), measured when the
 * scenario's gateway is up and its workers ready, and again once the scenario is over and the
 * gateway idle; the clients' own garbage is collected by then. One-time costs (module loading,
 * JIT) are paid by a warm-up gateway first. There is no warm-up per scenario: it would trip
 * outlier detection before the measured requests and hide the fault. "Gateway restarts" counts crashes: an uncaught exception or unhandled
 * rejection in this process, or a gateway that no longer answers GET /health.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  SCENARIOS,
  abortedOnWorkers,
  runRequests,
  startScenario,
  waitIdle,
  type ScenarioName,
  type Tally,
} from '../test/faults/harness.js';
import { FUZZ_GATEWAY, PROPERTIES, fuzz } from '../test/fuzz/properties.js';
import { readSection } from './lib/sections.mjs';

/** Requests per scenario, and how many run at once (bounded: the machine is small and shared). */
const PLAN: Record<ScenarioName, { requests: number; concurrency?: number }> = {
  'worker killed mid-stream': { requests: 100, concurrency: 2 },
  'worker hangs before headers': { requests: 200, concurrency: 8 },
  'worker hangs mid-stream': { requests: 200, concurrency: 8 },
  'worker returning 500s': { requests: 300 },
  'worker returning 503s (retried)': { requests: 300 },
  'malformed SSE from a worker': { requests: 300 },
  'malformed JSON from a worker': { requests: 300 },
  'worker never becomes ready': { requests: 300 },
  'clients disconnecting mid-stream under load': { requests: 1000, concurrency: 200 },
  'concurrent streams with slow readers': { requests: 1000, concurrency: 1000 },
};
const FUZZ_RUNS = Number(process.env['FUZZ_RUNS'] ?? 2000);

let crashes = 0;
process.on('uncaughtException', (err) => {
  crashes++;
  process.stderr.write(`uncaught exception: ${err.stack ?? String(err)}\n`);
});
process.on('unhandledRejection', (err) => {
  crashes++;
  process.stderr.write(`unhandled rejection: ${String(err)}\n`);
});

const gc = (globalThis as { gc?: () => void }).gc;
function heapMiB(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

interface Row {
  name: string;
  tally: Tally;
  restarts: number;
  servesAfter: boolean;
  heapBefore: number;
  heapAfter: number;
  aborted?: number;
}

async function alive(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) })).status === 200;
  } catch {
    return false;
  }
}

async function scenario(name: ScenarioName): Promise<Row> {
  const s = SCENARIOS[name];
  const plan = PLAN[name];
  const env = await startScenario(s);
  const crashesBefore = crashes;
  try {
    const heapBefore = heapMiB();
    const tally = await runRequests(env.url, s.shot, plan.requests, plan.concurrency ?? s.concurrency);
    await waitIdle(env);
    const aborted = 'disconnectAfterFirstChunk' in s.shot ? await abortedOnWorkers(env) : undefined;
    const after = await runRequests(env.url, { stream: true, maxTokens: 3 }, 4, 1);
    await new Promise((r) => setTimeout(r, 500));
    const heapAfter = heapMiB();
    const up = await alive(env.url);
    const row: Row = {
      name,
      tally,
      restarts: crashes - crashesBefore + (up ? 0 : 1),
      servesAfter: up && after.ok > 0 && after.lost === 0,
      heapBefore,
      heapAfter,
      ...(aborted === undefined ? {} : { aborted }),
    };
    process.stderr.write(`${JSON.stringify({ ...row, tally: { ...tally } })}\n`);
    return row;
  } finally {
    await env.close();
  }
}

/**
 * Leak check under load: the same 1,000 requests `--rounds` times (default 3) on one gateway, heap after each
 * round. The first round pays one-time costs (JIT, 1,000 upstream connections in the pools);
 * a leak shows as growth from round to round after that.
 */
async function plateau(name: ScenarioName, rounds = 3): Promise<{ name: string; heaps: number[]; lost: number }> {
  const s = SCENARIOS[name];
  const plan = PLAN[name];
  const env = await startScenario(s);
  const heaps = [heapMiB()];
  let lost = 0;
  try {
    for (let i = 0; i < rounds; i++) {
      lost += (await runRequests(env.url, s.shot, plan.requests, plan.concurrency ?? s.concurrency)).lost;
      await waitIdle(env);
      heaps.push(heapMiB());
    }
  } finally {
    await env.close();
  }
  return { name, heaps, lost };
}

const ROUNDS = Number(parseArgs({ options: { rounds: { type: 'string', default: '3' } } }).values.rounds);

async function main(): Promise<void> {
  const started = Date.now();
  const warm = await startScenario({
    name: 'warm-up',
    workers: ['--token-interval 1'],
    shot: { stream: true, maxTokens: 3 },
    concurrency: 4,
  });
  await runRequests(warm.url, { stream: true, maxTokens: 5 }, 200, 8);
  await runRequests(warm.url, { stream: false, maxTokens: 5 }, 200, 8);
  await warm.close();
  const rows: Row[] = [];
  for (const name of Object.keys(PLAN) as ScenarioName[]) rows.push(await scenario(name));

  const plateaus = [
    await plateau('clients disconnecting mid-stream under load', ROUNDS),
    await plateau('concurrent streams with slow readers', ROUNDS),
  ];

  const fuzzEnv = await startScenario({
    name: 'fuzz',
    workers: ['--token-interval 1'],
    gateway: FUZZ_GATEWAY,
    shot: { stream: false, maxTokens: 1 },
    concurrency: 1,
  });
  const crashesBeforeFuzz = crashes;
  let fuzzCases = 0;
  let fuzzFailure = '';
  try {
    fuzzCases = await fuzz(fuzzEnv.url, FUZZ_RUNS);
  } catch (err) {
    fuzzFailure = String(err).slice(0, 500);
  }
  const fuzzAlive = await alive(fuzzEnv.url);
  await fuzzEnv.close();

  const mib = (x: number): string => x.toFixed(1);
  const lines = [
    '# Reliability under faults, bad input and load',
    '',
    'Command (after `npx tsc -p tsconfig.build.json`):',
    '',
    '```',
    `node --expose-gc node_modules/.bin/vite-node bench/reliability.ts --rounds ${ROUNDS}`,
    '```',
    '',
    `Run ${new Date(started).toISOString()}, ${((Date.now() - started) / 1000).toFixed(0)} s, Node ${process.version}, ` +
      `gc ${gc ? 'forced (--expose-gc)' : 'NOT available: heap numbers include garbage'}.`,
    'Scenarios are the table in test/faults/harness.ts (the fault suite runs the same ones with fewer requests).',
    'Every request is sorted into one outcome: succeeded (complete answer), failed with an explicit error',
    '(non-2xx with an error body, or a stream whose last event is an error object), cancelled by its client,',
    'or lost (cut connection, half an answer, a stream that stops without an error, no answer in 30 s).',
    '',
    '| Scenario | Sent | Succeeded | Failed (explicit error) | Cancelled by client | Lost | Gateway restarts | Serves after | Heap before → after (MiB) | Errors seen |',
    '| --- | --: | --: | --: | --: | --: | --: | --- | --- | --- |',
    ...rows.map((r) => {
      const codes = Object.entries(r.tally.errorCodes)
        .map(([c, n]) => `${c} ×${n}`)
        .join(', ');
      const extra = r.aborted === undefined ? '' : `; upstream aborts counted by the engines: ${r.aborted}`;
      return (
        `| ${r.name} | ${r.tally.sent} | ${r.tally.ok} | ${r.tally.error} | ${r.tally.cancelled} | ${r.tally.lost} | ` +
        `${r.restarts} | ${r.servesAfter ? 'yes' : 'NO'} | ${mib(r.heapBefore)} → ${mib(r.heapAfter)} | ${codes || '—'}${extra} |`
      );
    }),
    '',
    `Heap after GC, started gateway → after each of ${ROUNDS} rounds of the same 1,000 requests on it (a leak grows`,
    'from round to round; round 1 pays one-time costs such as JIT and the upstream connection pools):',
    '',
    '| Scenario | Heap (MiB) | Lost |',
    '| --- | --- | --: |',
    ...plateaus.map((p) => `| ${p.name} | ${p.heaps.map(mib).join(' → ')} | ${p.lost} |`),
    '',
    `Fuzz (fast-check, test/fuzz/properties.ts): **${fuzzCases} cases** (${PROPERTIES.length} properties × ${FUZZ_RUNS}: ` +
      `${PROPERTIES.map((p) => p.name).join('; ')}), ` +
      `${fuzzFailure ? `FAILED: ${fuzzFailure}` : 'every bad input answered with an OpenAI-shaped 4xx, no 5xx'}; ` +
      `gateway restarts ${crashes - crashesBeforeFuzz + (fuzzAlive ? 0 : 1)}.`,
    '',
    `Lost in all: ${rows.reduce((n, r) => n + r.tally.lost, 0)}. Gateway restarts in all: ${crashes}.`,
    ...(rows.some((r) => r.tally.lostDetails.length > 0)
      ? ['', 'Lost requests:', ...rows.flatMap((r) => r.tally.lostDetails.map((d) => `- ${r.name}: ${d}`))]
      : []),
    '',
  ];
  const dir = join(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  // bench/soak.mjs writes its own section of the file, and the reading of it its own: kept as they are.
  const kept = ['soak', 'soak-notes'].map((name) => readSection(join(dir, 'reliability.md'), name)).filter(Boolean);
  writeFileSync(join(dir, 'reliability.md'), [lines.join('\n'), ...kept].join('\n'));
  process.stdout.write(lines.join('\n'));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
