/**
 * Prefix-aware routing in virtual time, on generated Mooncake-format traces: the hit rate it
 * gets against the clairvoyant oracle, and no hot spot where one prefix is most of the traffic.
 */
import { describe, expect, it } from 'vitest';
import type { FlockServeOptions } from '../../../../src/config/options.js';
import { resolveOptions } from '../../../../src/config/resolve.js';
import { simulate, type SimulationResult } from '../../../../src/sim/cluster/run.js';
import type { TraceRequest } from '../../../../src/sim/cluster/trace.js';
import { traceWorkload } from '../../../../src/sim/cluster/workload.js';
import {
  CHAT_DEFAULTS,
  HOT_PREFIX_DEFAULTS,
  chatTrace,
  hotPrefixTrace,
} from '../../../../src/sim/workloads/prefix-traces.js';

function run(trace: TraceRequest[], options: Partial<FlockServeOptions>, oracle = false): Promise<SimulationResult> {
  return simulate({
    workload: traceWorkload(trace, 1, 'generated.jsonl'),
    config: resolveOptions({ skypilotTask: '(simulated)', minWorkers: 4, maxWorkers: 4, ...options }),
    launchDelay: { distribution: 'fixed', meanMs: 0, cv: 0 },
    seed: 1,
    sampleIntervalMs: 10_000,
    initialWorkers: 4,
    oracle,
  });
}

describe('one hot system prompt, 80% of 1,200 requests at 8/s (4 workers)', () => {
  const trace = hotPrefixTrace({ ...HOT_PREFIX_DEFAULTS, requests: 1200, ratePerSecond: 8, seed: 3 });

  it.each(['prefix-cache', 'prefix-hash'] as const)(
    '%s keeps the busiest worker within 1.5× the mean in flight, and a worker seldom idles while another queues',
    async (loadBalancer) => {
      const r = await run(trace, { loadBalancer });
      expect(r.summary.completed).toBe(1200);
      expect(r.balance.imbalance).toBeLessThanOrEqual(1.5);
      // prefix-hash keeps a prefix on its ring worker while that one has room under its bound,
      // even with another idle: ~1% of the time here (least-connection: 0).
      expect(r.balance.idleWhileQueued).toBeLessThan(0.02);
    },
  );

  it('the oracle, which ignores load, is the hot spot the others avoid', async () => {
    const r = await run(trace, {}, true);
    expect(r.balance.imbalance).toBeGreaterThan(1.5);
  });
});

describe('multi-turn chat under a shared system prompt (150 sessions)', () => {
  const trace = chatTrace({ ...CHAT_DEFAULTS, sessions: 150, sessionsPerSecond: 1, seed: 2 });

  it('prefix-cache’s hit rate is within 10 points of the oracle’s; least-connection’s is not', async () => {
    const [oracle, pc, lc] = [
      await run(trace, {}, true),
      await run(trace, { loadBalancer: 'prefix-cache' }),
      await run(trace, { loadBalancer: 'least-connection' }),
    ];
    expect(pc.prefixCache.hitRate).toBeGreaterThan(oracle.prefixCache.hitRate - 0.1);
    expect(lc.prefixCache.hitRate).toBeLessThan(oracle.prefixCache.hitRate - 0.1);
  });
});
