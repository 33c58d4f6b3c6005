import { describe, expect, it } from 'vitest';
import { resolveOptions } from '../../../../src/config/resolve.js';
import type { GatewayLog } from '../../../../src/gateway/assemble.js';
import { simulate } from '../../../../src/sim/cluster/run.js';
import type { TraceRequest } from '../../../../src/sim/cluster/trace.js';
import { traceWorkload } from '../../../../src/sim/cluster/workload.js';

/** `rate` requests per second for `seconds`, evenly spaced: 500 prompt tokens, 200 out. */
function steady(rate: number, seconds: number): TraceRequest[] {
  return Array.from({ length: rate * seconds }, (_, i) => ({
    arrivalMs: (i * 1000) / rate,
    promptTokens: 500,
    outputTokens: 200,
    line: i + 2,
  }));
}

const HELD = /every ready worker is at worker_capacity \(2\)/;

async function heldNotices(workerCapacity: number, seconds: number): Promise<number> {
  const lines: string[] = [];
  const info = (_f: Record<string, unknown>, msg: string): void => void lines.push(msg);
  const log: GatewayLog = { debug: () => {}, info, warn: () => {}, error: () => {} };
  await simulate({
    workload: traceWorkload(steady(10, seconds), 1, 'steady 10 req/s'),
    config: resolveOptions({
      skypilotTask: '(simulated)',
      minWorkers: 1,
      maxWorkers: 1,
      workerCapacity,
    }),
    launchDelay: { distribution: 'fixed', meanMs: 0, cv: 0 },
    seed: 1,
    sampleIntervalMs: 10_000,
    log,
  });
  return lines.filter((l) => HELD.test(l)).length;
}

describe('requests held at worker_capacity are logged once a minute at most (virtual time)', () => {
  it.each([
    // One worker taking 2 at a time against 10 req/s of 200-token answers: held all along.
    { label: '2 min held', workerCapacity: 2, seconds: 120, lines: 2 },
    { label: '5 min held', workerCapacity: 2, seconds: 300, lines: 5 },
    // Capacity 1000: nothing waits, nothing said.
    { label: 'never held', workerCapacity: 1000, seconds: 120, lines: 0 },
  ])('$label: $lines lines', async ({ workerCapacity, seconds, lines }) => {
    expect(await heldNotices(workerCapacity, seconds)).toBe(lines);
  });
});
