/**
 * Several gateway replicas in virtual time: the gateway's real core, assembled N times on one
 * VirtualClock, steering one fleet of SIMULATED workers through a simulated shared store
 * (src/sim/cluster/replicas.ts: replica 0 leads, the others follow what it writes and what each
 * publishes, 5 ms later, as etcd's watch would bring it). Each request goes to a replica at
 * random, as an L4 balancer spreads connections. Two questions, 1 replica against 3:
 *
 *   affinity  how close N replicas' balancing gets to one gateway's: cache hit rate, imbalance
 *             and TTFT of least-connection, prefix-cache (its tree is per replica) and
 *             prefix-hash (the same pick on every replica), 4 workers, on the generated
 *             multi-turn chat trace (Mooncake's format) and on the Mooncake trace;
 *   scaling   the default autoscaler (slo) on the Azure conversation trace's hour, from 1 worker,
 *             60 s launches: the leader reads the fleet's load history (every replica's buckets,
 *             summed), so 3 replicas should cost and wait as one gateway does.
 *
 * Replaces the "virtual time" section of bench/results/ha.md.
 *
 *   npx vite-node bench/replicas-sim.ts [--parts affinity,scaling] [--seeds 1,2,3]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseSimulateArgs } from '../src/sim/cluster/args.js';
import { simulate, type SimulationResult } from '../src/sim/cluster/run.js';
import { readTrace } from '../src/sim/cluster/trace.js';
import { traceWorkload, type SimWorkload } from '../src/sim/cluster/workload.js';
import { CHAT_DEFAULTS, chatTrace } from '../src/sim/workloads/prefix-traces.js';
import { CONV_TRACE, MOONCAKE_TRACE } from './lib/balancing-workloads.js';

const ROOT = resolve(import.meta.dirname, '..');
const MD = resolve(ROOT, 'bench/results/ha.md');
const BEGIN = '<!-- ha:virtual-time:begin -->';
const END = '<!-- ha:virtual-time:end -->';

const { values } = parseArgs({
  options: {
    parts: { type: 'string', default: 'affinity,scaling' },
    seeds: { type: 'string', default: '1,2,3' },
  },
});
const parts = new Set(values.parts.split(','));
const seeds = values.seeds.split(',').map(Number);
const REPLICAS = [1, 3] as const;
const POLICIES = ['least-connection', 'prefix-cache', 'prefix-hash'] as const;

async function run(o: {
  workload: SimWorkload;
  argv: string[];
  seed: number;
  replicas: number;
  initialWorkers: number;
  launchMs: number;
}): Promise<SimulationResult> {
  const a = parseSimulateArgs([...o.argv, '--seed', `${o.seed}`]);
  if (a === 'help') throw new Error('unreachable');
  return simulate({
    workload: o.workload,
    config: a.config,
    launchDelay: { distribution: 'fixed', meanMs: o.launchMs, cv: 0 },
    seed: o.seed,
    sampleIntervalMs: 60_000,
    initialWorkers: o.initialWorkers,
    replicas: o.replicas,
  });
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const ms = (s: number): string => (s * 1000).toFixed(0);
const sections: string[] = [];
const started = performance.now();

if (parts.has('affinity')) {
  const mooncake = await readTrace(MOONCAKE_TRACE);
  const workloads = {
    'generated chat ×3': (seed: number) => traceWorkload(chatTrace({ ...CHAT_DEFAULTS, seed }), 3, 'chat.jsonl'),
    'Mooncake ×0.3': () => traceWorkload(mooncake, 0.3, 'mooncake-synthetic.jsonl'),
  };
  const rows: string[] = [];
  for (const [name, make] of Object.entries(workloads)) {
    for (const policy of POLICIES) {
      const cells: string[] = [];
      const by: Record<number, { hit: number; imbalance: number; p50: number; p99: number; failed: number }> = {};
      for (const replicas of REPLICAS) {
        const rs: SimulationResult[] = [];
        for (const seed of seeds) {
          const r = await run({
            workload: make(seed),
            argv: ['--min_workers', '4', '--max_workers', '4', '--load_balancer', policy],
            seed,
            replicas,
            initialWorkers: 4,
            launchMs: 0,
          });
          console.log(name, policy, `${replicas} replicas`, `seed ${seed}`, r.prefixCache.hitRate, r.balance.imbalance);
          rs.push(r);
        }
        by[replicas] = {
          hit: mean(rs.map((r) => r.prefixCache.hitRate)),
          imbalance: mean(rs.map((r) => r.balance.imbalance)),
          p50: mean(rs.map((r) => r.summary.ttftS.p50)),
          p99: mean(rs.map((r) => r.summary.ttftS.p99)),
          failed: rs.reduce((n, r) => n + r.summary.requests - r.summary.completed, 0),
        };
      }
      for (const n of REPLICAS) {
        const b = by[n]!;
        cells.push(
          `${pct(b.hit)}, ${b.imbalance.toFixed(2)}, ${ms(b.p50)} / ${ms(b.p99)}${b.failed ? ` (${b.failed} failed)` : ''}`,
        );
      }
      rows.push(`| ${name} | ${policy} | ${cells.join(' | ')} | ${((by[3]!.hit - by[1]!.hit) * 100).toFixed(1)} |`);
    }
  }
  sections.push(
    [
      '### Affinity and balance: 1 gateway vs 3 replicas',
      '',
      `4 workers up throughout (min = max = 4), the engine simulator's model (prefix cache included).`,
      `Each cell: cache hit rate, imbalance (Σ max ÷ Σ mean in flight per worker, every 100 ms),`,
      `TTFT p50 / p99 (ms); means over seeds ${seeds.join(', ')}.`,
      '',
      '| workload | policy | 1 gateway | 3 replicas | hit rate, 3 − 1 (points) |',
      '| --- | --- | --- | --- | ---: |',
      ...rows,
    ].join('\n'),
  );
}

if (parts.has('scaling')) {
  const conv = await readTrace(CONV_TRACE);
  const rows: string[] = [];
  for (const replicas of REPLICAS) {
    const rs: SimulationResult[] = [];
    for (const seed of seeds) {
      const r = await run({
        workload: traceWorkload(conv, 1, 'azure-llm-2023-conv.csv'),
        argv: ['--min_workers', '1', '--max_workers', '20'],
        seed,
        replicas,
        initialWorkers: 1,
        launchMs: 60_000,
      });
      console.log(
        'conv slo',
        `${replicas} replicas`,
        `seed ${seed}`,
        r.summary.workerSeconds,
        r.summary.queueWaitS.p99,
      );
      rs.push(r);
    }
    const failed = rs.reduce((n, r) => n + r.summary.requests - r.summary.completed, 0);
    rows.push(
      `| ${replicas === 1 ? '1 gateway' : `${replicas} replicas`} | ${mean(rs.map((r) => r.summary.workerSeconds / 3600)).toFixed(2)} | ` +
        `${mean(rs.map((r) => r.summary.peakWorkers)).toFixed(1)} | ${ms(mean(rs.map((r) => r.summary.queueWaitS.p99)))} | ` +
        `${ms(mean(rs.map((r) => r.summary.ttftS.p99)))} | ${mean(rs.map((r) => r.scaleEvents.length)).toFixed(1)} | ${failed} |`,
    );
  }
  sections.push(
    [
      '### Autoscaling: 1 gateway vs 3 replicas',
      '',
      'The Azure conversation trace (one hour), the default autoscaler (`slo`), from 1 worker,',
      `min 1 / max 20, 60 s launches; means over seeds ${seeds.join(', ')}. The leader's autoscaler reads`,
      `every replica's load history, summed by bucket start; each replica sees a third of the arrivals.`,
      '',
      '| gateways | worker-hours | peak workers | queue wait p99 (ms) | TTFT p99 (ms) | scale actions | failed |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows,
    ].join('\n'),
  );
}

const command = `npx vite-node bench/replicas-sim.ts --parts ${[...parts].join(',')} --seeds ${seeds.join(',')}`;
const body = [
  BEGIN,
  '## Virtual time: several replicas on the simulated fleet',
  '',
  `The gateway's core assembled once per replica on one virtual clock (bench/replicas-sim.ts):`,
  `replica 0 leads, the others follow through a simulated store that delivers the fleet and every`,
  `replica's published load 5 ms later (etcd's watch; the real one is measured above). Each request`,
  `goes to a replica at random, as an L4 balancer spreads connections. Virtual time: the numbers do`,
  `not depend on the machine.`,
  '',
  ...sections.flatMap((s) => [s, '']),
  `Made with \`${command}\` (${((performance.now() - started) / 1000).toFixed(0)} s on this machine).`,
  END,
].join('\n');
const md = readFileSync(MD, 'utf8');
const at = md.indexOf(BEGIN);
const next = at >= 0 ? md.slice(0, at) + body + md.slice(md.indexOf(END) + END.length) : `${md.trimEnd()}\n\n${body}\n`;
writeFileSync(MD, next);
console.log(body);
