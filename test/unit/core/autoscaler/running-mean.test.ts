import { describe, expect, it } from 'vitest';
import { RunningMean } from '../../../../src/core/autoscaler/running-mean.js';
import { AUTOSCALERS, AUTOSCALER_NAMES, createAutoscaler } from '../../../../src/core/autoscaler/registry.js';
import { countWorkers } from '../../../../src/core/autoscaler/snapshot.js';
import type { ScaleSnapshot, WorkerCounts } from '../../../../src/core/autoscaler/types.js';
import { OPTIONS } from '../../../../src/config/options.js';

const S = 1000;
const NOW = 1000 * S;

interface Case {
  label: string;
  mean: number;
  queue?: number;
  workers: Partial<WorkerCounts>;
  min?: number;
  max?: number;
  lastScaleUpAt?: number;
  want: number;
  reason: RegExp;
}

// Defaults: autoscale_up 7, autoscale_down 4, downscale delay 300 s, min 1, max 10.
const table: Case[] = [
  // thresholds
  {
    label: 'per-worker load between down and up → no change',
    mean: 10,
    workers: { ready: 2 },
    want: 2,
    reason: /no change/,
  },
  { label: 'exactly at up is not above it', mean: 14, workers: { ready: 2 }, want: 2, reason: /no change/ },
  { label: 'above up → ⌈L/up⌉ (30/7 → 5)', mean: 30, workers: { ready: 2 }, want: 5, reason: /scale up/ },
  { label: 'just above up → at least W+1', mean: 14.1, workers: { ready: 2 }, want: 3, reason: /scale up/ },
  { label: 'below down and W−1 can carry it → W−1', mean: 9, workers: { ready: 3 }, want: 2, reason: /scale down/ },
  { label: 'exactly at down is not below it', mean: 12, workers: { ready: 3 }, want: 3, reason: /no change/ },
  {
    label: 'below down but W−1 would exceed up → no change',
    mean: 7.5,
    workers: { ready: 2 },
    want: 2,
    reason: /would carry 7\.50/,
  },
  { label: 'W−1 exactly at up may scale down', mean: 7, workers: { ready: 2 }, want: 1, reason: /scale down/ },
  // caps
  {
    label: 'scale up capped by max',
    mean: 500,
    workers: { ready: 2 },
    max: 4,
    want: 4,
    reason: /clamped to max_workers 4/,
  },
  {
    label: 'at max with high load → stays at max',
    mean: 500,
    workers: { ready: 4 },
    max: 4,
    want: 4,
    reason: /max_workers/,
  },
  {
    label: 'never below min: idle at min stays',
    mean: 0,
    workers: { ready: 2 },
    min: 2,
    want: 2,
    reason: /min_workers 2/,
  },
  {
    label: 'below min with no load → up to min',
    mean: 0,
    workers: { ready: 1 },
    min: 3,
    want: 3,
    reason: /min_workers 3/,
  },
  {
    label: 'above max (max lowered) → down to max',
    mean: 10,
    workers: { ready: 5 },
    max: 3,
    want: 3,
    reason: /max_workers 3/,
  },
  // provisioning, starting and not-ready workers count; draining ones do not
  {
    label: 'provisioning workers count toward W',
    mean: 30,
    workers: { ready: 1, provisioning: 4 },
    want: 5,
    reason: /no change/,
  },
  {
    label: 'starting and not_ready count too',
    mean: 20,
    workers: { ready: 1, starting: 1, notReady: 1 },
    want: 3,
    reason: /no change/,
  },
  {
    label: 'draining workers do not count',
    mean: 20,
    workers: { ready: 2, draining: 3 },
    want: 3,
    reason: /scale up/,
  },
  // cooldown
  {
    label: 'no scale-down within the delay after a scale-up',
    mean: 0,
    workers: { ready: 3 },
    lastScaleUpAt: NOW - 299 * S,
    want: 3,
    reason: /scale-down delay, 1 s left/,
  },
  {
    label: 'scale-down once the delay has passed',
    mean: 0,
    workers: { ready: 3 },
    lastScaleUpAt: NOW - 300 * S,
    want: 2,
    reason: /scale down/,
  },
  {
    label: 'the delay does not hold back a scale-up',
    mean: 40,
    workers: { ready: 3 },
    lastScaleUpAt: NOW - 1,
    want: 6,
    reason: /scale up/,
  },
  // zero
  { label: 'W=0 and load → 1', mean: 0.2, workers: {}, min: 0, want: 1, reason: /scale from zero/ },
  {
    label: 'W=0, mean 0 but a request queued now → 1',
    mean: 0,
    queue: 1,
    workers: {},
    min: 0,
    want: 1,
    reason: /zero/,
  },
  { label: 'W=0 and no load → 0', mean: 0, workers: {}, min: 0, want: 0, reason: /no change/ },
  {
    label: 'W=0 with a big load → ⌈L/up⌉ at once (100/7 → 15, capped at max 10)',
    mean: 100,
    workers: {},
    min: 0,
    want: 10,
    reason: /scale from zero.*max_workers 10/,
  },
  { label: 'W=0, mean 10 → ⌈10/7⌉ = 2', mean: 10, workers: {}, min: 0, want: 2, reason: /scale from zero/ },
  { label: 'last worker, idle, min 0 → 0', mean: 0, workers: { ready: 1 }, min: 0, want: 0, reason: /scale down/ },
  { label: 'last worker with some load stays', mean: 0.5, workers: { ready: 1 }, min: 0, want: 1, reason: /no change/ },
];

function snapshot(c: Case): ScaleSnapshot {
  return {
    queueLengthMean: c.mean,
    queueLength: c.queue ?? Math.round(c.mean),
    panicQueueLengthMean: c.mean,
    workers: { ready: 0, starting: 0, provisioning: 0, notReady: 0, draining: 0, ...c.workers },
    minWorkers: c.min ?? 1,
    maxWorkers: c.max ?? 10,
    ...(c.lastScaleUpAt === undefined ? {} : { lastScaleUpAt: c.lastScaleUpAt }),
    config: { autoscaleUp: 7, autoscaleDown: 4, downscaleDelayMs: 300 * S, workerCapacity: 30 },
  };
}

describe('RunningMean', () => {
  it.each(table)('$label', (c) => {
    const d = new RunningMean().decide(snapshot(c), NOW);
    expect(d.desired).toBe(c.want);
    expect(d.reason).toMatch(c.reason);
  });

  it('never leaves [min, max] over a sweep of loads and fleet sizes', () => {
    const policy = new RunningMean();
    for (const min of [0, 1, 3])
      for (const max of [3, 5, 8])
        for (let ready = 0; ready <= 10; ready++)
          for (const provisioning of [0, 2])
            for (const mean of [0, 0.5, 3, 7, 21, 1000]) {
              const s = snapshot({ label: '', mean, workers: { ready, provisioning }, min, max, want: 0, reason: /./ });
              const { desired } = policy.decide(s, NOW);
              expect(desired).toBeGreaterThanOrEqual(min);
              expect(desired).toBeLessThanOrEqual(max);
              expect(Number.isInteger(desired)).toBe(true);
            }
  });

  it('autoscale_up 0 scales up on any load, bounded by max', () => {
    const s = { ...snapshot({ label: '', mean: 1, workers: { ready: 1 }, max: 6, want: 0, reason: /./ }) };
    const d = new RunningMean().decide({ ...s, config: { ...s.config, autoscaleUp: 0 } }, NOW);
    expect(d.desired).toBe(6);
  });
});

describe('countWorkers', () => {
  it('counts by state and ignores terminating, failed and gone', () => {
    const states = [
      'ready',
      'ready',
      'starting',
      'provisioning',
      'not_ready',
      'draining',
      'terminating',
      'failed',
    ] as const;
    expect(countWorkers(states.map((state) => ({ state })))).toEqual({
      ready: 2,
      starting: 1,
      provisioning: 1,
      notReady: 1,
      draining: 1,
    });
  });
});

describe('autoscaler registry', () => {
  it('builds every registered policy under its own name', () => {
    for (const name of AUTOSCALER_NAMES) expect(createAutoscaler(name).name).toBe(name);
    expect(() => createAutoscaler('nope')).toThrow(/running-mean/);
  });

  it('is the source of the --autoscaler choices', () => {
    expect(OPTIONS.autoscaler.choices).toEqual(Object.keys(AUTOSCALERS));
    expect(OPTIONS.autoscaler.choices).toContain(OPTIONS.autoscaler.default);
  });
});
