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

/** slo from 1 worker (or `initialWorkers`) up to `maxWorkers` on `requests`, launches of `launchS` every time. */
const simulateSlo = (
  requests: TraceRequest[],
  o: { maxWorkers: number; launchS: number; log?: GatewayLog; initialWorkers?: number; requestLog?: string },
) =>
  simulate({
    workload: traceWorkload(requests, 1, 'hand-made'),
    config: resolveOptions({
      skypilotTask: '(simulated)',
      autoscaler: 'slo',
      minWorkers: 1,
      maxWorkers: o.maxWorkers,
      ...(o.requestLog ? { requestLog: o.requestLog } : {}),
    }),
    launchDelay: { distribution: 'fixed', meanMs: o.launchS * 1000, cv: 0 },
    seed: 1,
    sampleIntervalMs: 10_000,
    ...(o.log ? { log: o.log } : {}),
    ...(o.initialWorkers ? { initialWorkers: o.initialWorkers } : {}),
  });

const run = (maxWorkers: number, log: GatewayLog) => simulateSlo(steady(12, 600), { maxWorkers, launchS: 30, log });

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

describe('the gateway says when the p99 queue wait misses queue_wait_slo, whatever the cause', () => {
  /** 1 req/s for 20 minutes, and a spike of 150 requests within 5 s at 5 and at 12 minutes. */
  const spiky: TraceRequest[] = [
    ...steady(1, 1200),
    ...[300, 720].flatMap((atS) =>
      Array.from({ length: 150 }, (_, i) => ({
        arrivalMs: atS * 1000 + (i * 5000) / 150,
        promptTokens: 1000,
        outputTokens: 200,
        line: 0,
      })),
    ),
  ]
    .sort((a, b) => a.arrivalMs - b.arrivalMs)
    .map((r, i) => ({ ...r, line: i + 2 }));
  const sloLines = (log: ReturnType<typeof logCapture>) => log.lines.filter(([, m]) => /queue_wait_slo/.test(m));

  it('spikes shorter than a 5-minute launch: one warning with the counts and the way out, and the run agrees', async () => {
    const log = logCapture();
    const r = await simulateSlo(spiky, { maxWorkers: 8, launchS: 300, log });
    expect(r.summary.queueWaitS.p99).toBeGreaterThan(1);
    const lines = sloLines(log);
    expect(lines).toHaveLength(1);
    const [level, msg] = lines[0]!;
    expect(level).toBe('warn');
    expect(msg).toMatch(
      /^p99 queue wait over queue_wait_slo: \d+ of \d+ requests in the last \d+ min waited longer than 1 s for a worker \(\d+ allowed at p99\); the load outran the workers up \(a start, or a rise or burst faster than a launch\): only workers kept up hold it \(min_workers; `flockserve plan`/,
    );
    const [, late, requests, allowed] = /(\d+) of (\d+) requests.*\((\d+) allowed/.exec(msg)!.map(Number);
    expect(late).toBeGreaterThan(allowed!);
    expect(allowed).toBe(Math.floor(requests! / 100));
  });

  it('with a request log, the warning names the plan to run on it', async () => {
    const log = logCapture();
    await simulateSlo(spiky, { maxWorkers: 8, launchS: 300, log, requestLog: '/var/log/flockserve/requests.db' });
    expect(sloLines(log).map(([, m]) => m)).toEqual([
      expect.stringMatching(
        /\(min_workers; `flockserve plan --trace \/var\/log\/flockserve\/requests\.db` names how many\)$/,
      ),
    ]);
  });

  it('held back by max_workers: the warning says so', async () => {
    const log = logCapture();
    await run(2, log);
    const lines = sloLines(log).filter(([level]) => level === 'warn');
    expect(lines).toHaveLength(1);
    expect(lines[0]![1]).toMatch(/; max_workers 2 holds the autoscaler back$/);
  });

  it('a cold start on a load that needs several workers misses it too, and is told the same', async () => {
    const log = logCapture();
    await run(8, log);
    expect(sloLines(log).map(([level, m]) => [level, /the load outran the workers up/.test(m)])).toEqual([
      ['warn', true],
    ]);
  });

  it('a load one worker holds: nothing said', async () => {
    const log = logCapture();
    const r = await simulateSlo(steady(2, 900), { maxWorkers: 8, launchS: 60, log });
    expect(r.summary.queueWaitS.p99).toBeLessThan(1);
    expect(sloLines(log)).toEqual([]);
  });
});

describe('slo autoscaler in the simulation: a young history, streamed answers', () => {
  it('warm at 3 on a steady load 2 hold: the streams’ first tokens show the load is not prefill-bound, and the third worker goes within 10 minutes', async () => {
    const r = await simulateSlo(steady(5, 1200), { maxWorkers: 6, launchS: 60, initialWorkers: 3 });
    const shedAt = r.scaleEvents.find((e) => e.to < e.from)?.tS;
    expect(shedAt).toBeLessThan(600);
    expect(r.timeline.at(-1)!.workers).toBe(2);
    expect(r.summary.queueWaitS.p99).toBeLessThan(1);
  });
});
