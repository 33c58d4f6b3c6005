import { describe, expect, it } from 'vitest';
import { resolveOptions } from '../../../../src/config/resolve.js';
import type { FlockServeOptions } from '../../../../src/config/options.js';
import type { LaunchDelaySpec } from '../../../../src/sim/cluster/launch-delay.js';
import { simulate, type SimulationOptions } from '../../../../src/sim/cluster/run.js';
import { parseTrace, readTrace, type TraceRequest } from '../../../../src/sim/cluster/trace.js';
import { traceWorkload } from '../../../../src/sim/cluster/workload.js';

const HEADER = 'TIMESTAMP,ContextTokens,GeneratedTokens';
const FIXED_10S: LaunchDelaySpec = { distribution: 'fixed', meanMs: 10_000, cv: 0 };

function run(
  trace: readonly TraceRequest[],
  options: Partial<FlockServeOptions>,
  { timeScale = 1, ...rest }: Partial<SimulationOptions> & { timeScale?: number } = {},
): ReturnType<typeof simulate> {
  return simulate({
    workload: traceWorkload(trace, timeScale, 'inline.csv'),
    config: resolveOptions({ skypilotTask: '(simulated)', ...options }),
    launchDelay: FIXED_10S,
    seed: 1,
    sampleIntervalMs: 1000,
    ...rest,
  });
}

/** A trace from [seconds, prompt tokens, output tokens] rows. */
function trace(rows: [number, number, number][]): TraceRequest[] {
  const at = (s: number): string =>
    `2024-01-01 00:${String(Math.floor(s / 60)).padStart(2, '0')}:${(s % 60).toFixed(3).padStart(6, '0')}`;
  return parseTrace([HEADER, ...rows.map(([s, p, o]) => `${at(s)},${p},${o}`)].join('\n'), 'inline.csv');
}

describe('simulate (real core on virtual time, simulated workers)', () => {
  it('one request on a ready worker takes what the engine model says (1000-token prompt, 10 tokens out)', async () => {
    const r = await run(
      trace([
        [0, 1, 1],
        [1, 1000, 10],
      ]),
      { minWorkers: 1, maxWorkers: 1 },
    );
    // Step 1: 12 ms + 0.05 ms × 1 sequence + 1000 tokens / 10000 per s = 112.05 ms → first token;
    // then 9 more steps of 12.05 ms: 112.05 + 108.45 = 220.5 ms.
    expect(r.summary.ttftS.max).toBeCloseTo(0.11205, 9);
    expect(r.summary.e2eS.max).toBeCloseTo(0.2205, 9);
    expect(r.summary.queueWaitS.max).toBe(0);
    expect(r.summary).toMatchObject({ requests: 2, completed: 2, unfinished: 0, failed: {} });
  });

  it('scale-to-zero: the first request waits for the launch, the next one joins it, idle returns to zero', async () => {
    const r = await run(
      trace([
        [0, 100, 5],
        [4, 100, 5],
      ]),
      { minWorkers: 0, maxWorkers: 2, queueTrackingWindow: 60, autoscaleInterval: 10, downscaleDelay: 30 },
      { settle: true },
    );
    const s = r.summary;
    expect(s).toMatchObject({ requests: 2, completed: 2, failed: {}, peakWorkers: 1 });
    // Launched at 0 s, ready at 10 s (fixed launch delay): waits of 10 s and 6 s, not queue_timeout's 60.
    expect(s.queueWaitS.max).toBe(10);
    expect(s.queueWaitS.p50).toBe(6);
    expect(r.launches).toBe(1);
    // The queue was last non-zero at ~10.07 s; the 60 s mean reaches 0 at ~70.07 s, and the
    // 80 s evaluation (the downscale delay from 0 s is long over) takes the fleet to zero.
    expect(r.scaleEvents.map((e) => [e.tS, e.from, e.to])).toEqual([
      [0, 0, 1],
      [80, 1, 0],
    ]);
    expect(r.timeline.at(-1)).toMatchObject({ workers: 0, ready: 0, queue: 0 });
    // Billed from the launch at 0 s: until the last request ended (~10.07 s), then until gone
    // right after the 80 s decision (an idle worker drains at once).
    expect(s.durationS).toBeCloseTo(10.07, 1);
    expect(s.workerSeconds).toBeCloseTo(s.durationS, 9);
    expect(s.settle?.seconds).toBeCloseTo(80 - s.durationS, 6);
    expect(s.settle?.workerSeconds).toBeCloseTo(80 - s.durationS, 6);
  });

  it('accounts for every request when the fleet is too small: each one completes or fails with a reason', async () => {
    const head = await readTrace('test/fixtures/traces/azure-llm-2023-conv-head.csv');
    const r = await run(head, { minWorkers: 1, maxWorkers: 1, queueTimeout: 5, maxQueueLength: 50 }, { timeScale: 4 });
    const { requests, completed, failed, unfinished } = r.summary;
    expect(requests).toBe(1000);
    expect(unfinished).toBe(0);
    expect(failed['queue_timeout']! + failed['queue_full']!).toBeGreaterThan(0);
    expect(completed + Object.values(failed).reduce((a, b) => a + b, 0)).toBe(1000);
    expect(r.summary.queueWaitS.max).toBeCloseTo(5, 9); // the longest waits are the timed-out ones
  });

  it('same seed, same numbers; another seed, other launch delays', async () => {
    const head = await readTrace('test/fixtures/traces/azure-llm-2023-conv-head.csv');
    const opts: Partial<FlockServeOptions> = { maxWorkers: 8, autoscaler: 'target-tracking' };
    const lognormal: LaunchDelaySpec = { distribution: 'lognormal', meanMs: 60_000, cv: 0.5 };
    const a = await run(head, opts, { launchDelay: lognormal, seed: 7, timeScale: 4 });
    const b = await run(head, opts, { launchDelay: lognormal, seed: 7, timeScale: 4 });
    const c = await run(head, opts, { launchDelay: lognormal, seed: 8, timeScale: 4 });
    expect(a.scaleEvents.length).toBeGreaterThan(0);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    expect(JSON.stringify(c.summary)).not.toBe(JSON.stringify(a.summary));
  });

  it('every policy runs the slice to the end within [min, max] workers', async () => {
    const head = await readTrace('test/fixtures/traces/azure-llm-2023-conv-head.csv');
    for (const autoscaler of ['running-mean', 'flockserve-classic', 'target-tracking'] as const) {
      const r = await run(head, { autoscaler, minWorkers: 1, maxWorkers: 5 }, { timeScale: 2 });
      expect(r.summary.unfinished, autoscaler).toBe(0);
      expect(r.summary.peakWorkers, autoscaler).toBeLessThanOrEqual(5);
      for (const row of r.timeline) expect(row.workers - row.ready).toBeGreaterThanOrEqual(0);
    }
  });
});
