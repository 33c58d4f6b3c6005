/**
 * Several gateway replicas in virtual time (SimReplicaGroup): one fleet steered by replica 0,
 * followed by the others, each request sent to a replica at random as an L4 balancer does.
 */
import { describe, expect, it } from 'vitest';
import type { FlockServeOptions } from '../../../../src/config/options.js';
import { resolveOptions } from '../../../../src/config/resolve.js';
import { simulate, type SimulationResult } from '../../../../src/sim/cluster/run.js';
import type { TraceRequest } from '../../../../src/sim/cluster/trace.js';
import { traceWorkload } from '../../../../src/sim/cluster/workload.js';
import { CHAT_DEFAULTS, chatTrace } from '../../../../src/sim/workloads/prefix-traces.js';

function run(
  trace: TraceRequest[],
  replicas: number,
  options: Partial<FlockServeOptions>,
  fleet: { initial: number; launchMs: number } = { initial: 4, launchMs: 0 },
): Promise<SimulationResult> {
  return simulate({
    workload: traceWorkload(trace, 1, 'generated.jsonl'),
    config: resolveOptions({ skypilotTask: '(simulated)', ...options }),
    launchDelay: { distribution: 'fixed', meanMs: fleet.launchMs, cv: 0 },
    seed: 1,
    sampleIntervalMs: 10_000,
    initialWorkers: fleet.initial,
    replicas,
  });
}

describe('multi-turn chat (80 sessions) on 4 workers, 1 gateway vs 3 replicas', { timeout: 120_000 }, () => {
  const trace = chatTrace({ ...CHAT_DEFAULTS, sessions: 80, sessionsPerSecond: 1, seed: 2 });
  const fixed = { minWorkers: 4, maxWorkers: 4 };

  it('prefix-hash picks the same worker on every replica: its hit rate and balance hold; prefix-cache’s per-replica tree loses some', async () => {
    const [ph1, ph3, pc1, pc3] = [
      await run(trace, 1, { ...fixed, loadBalancer: 'prefix-hash' }),
      await run(trace, 3, { ...fixed, loadBalancer: 'prefix-hash' }),
      await run(trace, 1, { ...fixed, loadBalancer: 'prefix-cache' }),
      await run(trace, 3, { ...fixed, loadBalancer: 'prefix-cache' }),
    ];
    for (const r of [ph1, ph3, pc1, pc3]) expect(r.summary.completed).toBe(trace.length);
    // Each replica sees a key's first request itself (which goes to the least loaded), and the
    // other replicas' load a second late: a few points.
    expect(ph3.prefixCache.hitRate).toBeGreaterThan(ph1.prefixCache.hitRate - 0.03);
    // Its bound counts every replica's requests on a worker: no hot spot the one gateway does not have.
    expect(ph3.balance.imbalance / ph1.balance.imbalance).toBeLessThan(1.2);
    expect(pc3.prefixCache.hitRate).toBeLessThan(pc1.prefixCache.hitRate - 0.05);
  });

  it('least-connection on each replica counts the others’ requests: the balance stays near one gateway’s', async () => {
    const [one, three] = [
      await run(trace, 1, { ...fixed, loadBalancer: 'least-connection' }),
      await run(trace, 3, { ...fixed, loadBalancer: 'least-connection' }),
    ];
    expect(three.summary.completed).toBe(trace.length);
    expect(three.balance.imbalance / one.balance.imbalance).toBeLessThan(1.2);
  });
});

describe('autoscaling (slo) with 3 replicas', { timeout: 120_000 }, () => {
  it('the leader scales on the fleet’s load: the same workers, within 10%, as one gateway with all of it', async () => {
    const trace = chatTrace({ ...CHAT_DEFAULTS, sessions: 300, sessionsPerSecond: 1, seed: 5 });
    const scaled = { minWorkers: 1, maxWorkers: 12 };
    const [one, three] = [
      await run(trace, 1, scaled, { initial: 1, launchMs: 30_000 }),
      await run(trace, 3, scaled, { initial: 1, launchMs: 30_000 }),
    ];
    expect(three.summary.completed).toBe(trace.length);
    expect(one.summary.peakWorkers).toBeGreaterThan(1);
    expect(three.summary.workerSeconds / one.summary.workerSeconds).toBeGreaterThan(0.9);
    expect(three.summary.workerSeconds / one.summary.workerSeconds).toBeLessThan(1.1);
  });
});
