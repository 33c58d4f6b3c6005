import { describe, expect, it } from 'vitest';
import { resolveOptions } from '../../../../src/config/resolve.js';
import type { GatewayLog } from '../../../../src/gateway/assemble.js';
import { simulate } from '../../../../src/sim/cluster/run.js';
import type { TraceRequest } from '../../../../src/sim/cluster/trace.js';
import { traceWorkload } from '../../../../src/sim/cluster/workload.js';

/** `rate` requests per second for `seconds`, evenly spaced: 1,000 prompt tokens, 200 out. */
function steady(rate: number, seconds: number): TraceRequest[] {
  return Array.from({ length: rate * seconds }, (_, i) => ({
    arrivalMs: (i * 1000) / rate,
    promptTokens: 1000,
    outputTokens: 200,
    line: i + 2,
  }));
}

function logCapture(): GatewayLog & { lines: [level: string, msg: string][] } {
  const lines: [string, string][] = [];
  const at = (level: string) => (_f: Record<string, unknown>, msg: string) => void lines.push([level, msg]);
  return { lines, debug: () => {}, info: at('info'), warn: at('warn'), error: at('error') };
}

const run = (maxWorkers: number, log: GatewayLog) =>
  simulate({
    workload: traceWorkload(steady(12, 600), 1, 'steady 12 req/s'),
    config: resolveOptions({ skypilotTask: '(simulated)', autoscaler: 'slo', minWorkers: 1, maxWorkers }),
    launchDelay: { distribution: 'fixed', meanMs: 30_000, cv: 0 },
    seed: 1,
    sampleIntervalMs: 10_000,
    log,
  });

describe('slo autoscaler in the simulation: max_workers holding it back is reported', () => {
  it('12 req/s on a max of 2: one warning naming both numbers, the decisions counted', async () => {
    const log = logCapture();
    const r = await run(2, log);
    const warnings = log.lines.filter(([level, m]) => level === 'warn' && /max_workers 2 holds it back/.test(m));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]![1]).toMatch(/^autoscaler wants (\d+) workers; max_workers 2 holds it back/);
    expect(Number(/wants (\d+)/.exec(warnings[0]![1])![1])).toBeGreaterThan(2);
    expect(r.heldBack).toBeGreaterThan(0);
    expect(r.summary.peakWorkers).toBe(2);
  });

  it('with room (max 8) it is never held back and sizes the fleet itself', async () => {
    const log = logCapture();
    const r = await run(8, log);
    expect(log.lines.filter(([, m]) => /holds it back/.test(m))).toEqual([]);
    expect(r.heldBack).toBe(0);
    expect(r.summary.peakWorkers).toBeGreaterThan(2);
    expect(r.summary.peakWorkers).toBeLessThan(8);
  });
});

describe('slo autoscaler in the simulation: a young history, streamed answers', () => {
  it('warm at 3 on a steady load 2 hold: the streams’ first tokens show the load is not prefill-bound, and the third worker goes within 10 minutes', async () => {
    const r = await simulate({
      workload: traceWorkload(steady(5, 1200), 1, 'steady 5 req/s'),
      config: resolveOptions({ skypilotTask: '(simulated)', autoscaler: 'slo', minWorkers: 1, maxWorkers: 6 }),
      launchDelay: { distribution: 'fixed', meanMs: 60_000, cv: 0 },
      seed: 1,
      sampleIntervalMs: 10_000,
      initialWorkers: 3,
    });
    const shedAt = r.scaleEvents.find((e) => e.to < e.from)?.tS;
    expect(shedAt).toBeLessThan(600);
    expect(r.timeline.at(-1)!.workers).toBe(2);
    expect(r.summary.queueWaitS.p99).toBeLessThan(1);
  });
});
