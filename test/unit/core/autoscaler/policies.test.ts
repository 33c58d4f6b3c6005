import { describe, expect, it } from 'vitest';
import { FlockServeClassic } from '../../../../src/core/autoscaler/flockserve-classic.js';
import { AUTOSCALER_NAMES, createAutoscaler } from '../../../../src/core/autoscaler/registry.js';
import { settle } from '../../../../src/core/autoscaler/settle.js';
import { TargetTracking } from '../../../../src/core/autoscaler/target-tracking.js';
import { scaleSnapshot, type SnapshotInput } from '../../../fakes/scale-snapshot.js';

const S = 1000;
const NOW = 1000 * S;

interface Case extends SnapshotInput {
  label: string;
  want: number;
  reason: RegExp;
}

// autoscale_up 7, autoscale_down 4 on the TOTAL queue mean; min 1, max 10; delay 300 s.
const classic: Case[] = [
  { label: 'total mean above up → +1 only', mean: 30, workers: { ready: 2 }, want: 3, reason: /scale up/ },
  {
    label: 'per-worker load is ignored: 20 over 3 workers (6.7 each) still adds one',
    mean: 20,
    workers: { ready: 3 },
    want: 4,
    reason: /scale up/,
  },
  { label: 'between down and up → no change', mean: 5, workers: { ready: 3 }, want: 3, reason: /no change/ },
  { label: 'below down → −1', mean: 3, workers: { ready: 3 }, want: 2, reason: /scale down/ },
  { label: 'below down at min → stays', mean: 0, workers: { ready: 1 }, want: 1, reason: /no change/ },
  {
    label: 'no action while a worker is provisioning, however high the load',
    mean: 500,
    workers: { ready: 1, provisioning: 1 },
    want: 2,
    reason: /1 of 2 workers not ready/,
  },
  {
    label: 'no action while a worker is starting, even below down',
    mean: 0,
    workers: { ready: 2, starting: 1 },
    want: 3,
    reason: /not ready/,
  },
  { label: 'at max with load → stays', mean: 50, workers: { ready: 4 }, max: 4, want: 4, reason: /no change/ },
  { label: 'below min → +1, then the clamp', mean: 0, workers: { ready: 1 }, min: 3, want: 3, reason: /min_workers/ },
  { label: 'above max → down to max', mean: 0, workers: { ready: 6 }, max: 4, want: 4, reason: /max_workers/ },
  {
    label: 'scale-down delay holds the −1',
    mean: 0,
    workers: { ready: 3 },
    lastScaleUpAt: NOW - 10 * S,
    want: 3,
    reason: /scale-down delay, 290 s left/,
  },
  { label: 'empty fleet with load, min 0 → 1', mean: 0, queue: 1, workers: {}, min: 0, want: 1, reason: /kept 1/ },
  { label: 'empty fleet, idle, min 0 → 0', mean: 0, queue: 0, workers: {}, min: 0, want: 0, reason: /no change/ },
  {
    label: 'last worker below down but not idle, min 0 → kept',
    mean: 2,
    workers: { ready: 1 },
    min: 0,
    want: 1,
    reason: /not idle/,
  },
  { label: 'last worker idle, min 0 → 0', mean: 0, queue: 0, workers: { ready: 1 }, min: 0, want: 0, reason: /down/ },
];

// target_queue_per_worker 5, panic above 2 × 5 × W in the panic window.
const target: Case[] = [
  {
    label: '⌈12/5⌉ = 3',
    mean: 12,
    panic: 5,
    workers: { ready: 1 },
    want: 3,
    reason: /scale up: ⌈queue mean 12.00 \/ target 5⌉ = 3/,
  },
  { label: 'exactly on target → no change', mean: 10, workers: { ready: 2 }, want: 2, reason: /no change/ },
  { label: 'down several at once: ⌈6/5⌉ = 2', mean: 6, workers: { ready: 5 }, want: 2, reason: /scale down/ },
  {
    label: 'provisioning workers count: ⌈12/5⌉ = 3 with 1 ready + 2 provisioning',
    mean: 12,
    workers: { ready: 1, provisioning: 2 },
    want: 3,
    reason: /no change/,
  },
  { label: 'capped by max', mean: 200, workers: { ready: 2 }, max: 6, want: 6, reason: /max_workers 6/ },
  { label: 'never below min', mean: 0, workers: { ready: 3 }, min: 2, want: 2, reason: /min_workers 2/ },
  {
    label: 'cooldown after a scale-up holds the scale-down',
    mean: 6,
    workers: { ready: 5 },
    lastScaleUpAt: NOW - 100 * S,
    want: 5,
    reason: /scale-down delay, 200 s left/,
  },
  {
    label: 'panic: 6 s mean 45 > 2×5×2 → ⌈45/5⌉ = 9 while the stable mean says 1',
    mean: 4,
    panic: 45,
    workers: { ready: 2 },
    want: 9,
    reason: /panic: 45.00 .* = 9, stable ⌈4.00\/5⌉ = 1/,
  },
  {
    label: 'panic threshold is strict: 20 = 2×5×2 is not a panic',
    mean: 4,
    panic: 20,
    workers: { ready: 2 },
    want: 1,
    reason: /scale down/,
  },
  {
    label: 'no scale-down while panicking (panic mean needs fewer than the stable one would drop to)',
    mean: 1,
    panic: 11,
    workers: { ready: 1, starting: 0 },
    want: 3,
    reason: /panic/,
  },
  {
    label: 'panicking keeps W even when ⌈P/T⌉ < W (P = 21 > 2×5×2, ⌈21/5⌉ = 5 ≥ 2)',
    mean: 0,
    panic: 21,
    workers: { ready: 2 },
    want: 5,
    reason: /panic/,
  },
  {
    label: 'panic capped by max',
    mean: 0,
    panic: 1000,
    workers: { ready: 1 },
    max: 4,
    want: 4,
    reason: /max_workers 4/,
  },
  { label: 'from zero with load', mean: 3, workers: {}, min: 0, want: 1, reason: /scale up/ },
  { label: 'idle at zero stays', mean: 0, queue: 0, workers: {}, min: 0, want: 0, reason: /no change/ },
];

describe('FlockServeClassic', () => {
  it.each(classic)('$label', (c) => {
    const d = new FlockServeClassic().decide(scaleSnapshot(c), NOW);
    expect(d.desired).toBe(c.want);
    expect(d.reason).toMatch(c.reason);
  });
});

describe('TargetTracking', () => {
  it.each(target)('$label', (c) => {
    const d = new TargetTracking({ targetQueuePerWorker: 5 }).decide(scaleSnapshot(c), NOW);
    expect(d.desired).toBe(c.want);
    expect(d.reason).toMatch(c.reason);
  });

  it('urgent() answers only in panic and only with a scale-up', () => {
    const p = new TargetTracking({ targetQueuePerWorker: 5 });
    expect(p.urgent(scaleSnapshot({ mean: 50, panic: 19, workers: { ready: 2 } }), NOW)).toBeUndefined();
    expect(p.urgent(scaleSnapshot({ mean: 0, panic: 45, workers: { ready: 2 } }), NOW)?.desired).toBe(9);
    // In panic but already at max: nothing to do at once.
    expect(p.urgent(scaleSnapshot({ mean: 0, panic: 45, workers: { ready: 4 }, max: 4 }), NOW)).toBeUndefined();
  });

  it('rejects a target that is not a positive number', () => {
    expect(() => new TargetTracking({ targetQueuePerWorker: 0 })).toThrow(/target_queue_per_worker/);
    expect(() => new TargetTracking({ targetQueuePerWorker: '5' })).toThrow(/target_queue_per_worker/);
  });
});

describe('settle (the rules common to every policy)', () => {
  const raw = (desired: number) => ({ desired, reason: 'policy' });
  const rows: [string, number, SnapshotInput, number, RegExp][] = [
    ['passes a decision inside the rules unchanged', 3, { mean: 5, workers: { ready: 2 } }, 3, /^policy$/],
    ['0 with load → 1', 0, { mean: 0.01, queue: 0, workers: { ready: 1 }, min: 0 }, 1, /not idle/],
    ['0 with a request now → 1', 0, { mean: 0, queue: 1, workers: { ready: 1 }, min: 0 }, 1, /not idle/],
    ['0 when idle → 0', 0, { mean: 0, queue: 0, workers: { ready: 1 }, min: 0 }, 0, /^policy$/],
    ['down within the delay → W', 1, { mean: 0, workers: { ready: 4 }, lastScaleUpAt: NOW - 1 }, 4, /delay/],
    [
      'down at the delay’s end → allowed',
      1,
      { mean: 0, workers: { ready: 4 }, lastScaleUpAt: NOW - 300 * S },
      1,
      /^policy$/,
    ],
    ['the delay never blocks a scale-up', 6, { mean: 0, workers: { ready: 4 }, lastScaleUpAt: NOW - 1 }, 6, /^policy$/],
    [
      'max wins over the delay',
      1,
      { mean: 0, workers: { ready: 8 }, max: 5, lastScaleUpAt: NOW - 1 },
      5,
      /max_workers 5/,
    ],
    ['Infinity is clamped to max', Infinity, { mean: 9, workers: {}, max: 7 }, 7, /max_workers 7/],
  ];
  it.each(rows)('%s', (_label, want, input, got, reason) => {
    const d = settle(raw(want), scaleSnapshot(input), NOW);
    expect(d.desired).toBe(got);
    expect(d.reason).toMatch(reason);
  });
});

describe('every registered policy', () => {
  it('stays within [min, max] and returns whole numbers over a sweep of loads, fleets and panics', () => {
    for (const name of AUTOSCALER_NAMES) {
      const policy = createAutoscaler(name, { targetQueuePerWorker: 5 });
      for (const min of [0, 1, 3])
        for (const max of [3, 8])
          for (let ready = 0; ready <= 10; ready += 2)
            for (const provisioning of [0, 2])
              for (const mean of [0, 0.5, 7, 21, 1000])
                for (const panic of [0, mean * 10])
                  for (const lastScaleUpAt of [undefined, NOW - 1]) {
                    const s = scaleSnapshot({ mean, panic, workers: { ready, provisioning }, min, max, lastScaleUpAt });
                    const { desired } = policy.decide(s, NOW);
                    expect(Number.isInteger(desired), `${name} ${JSON.stringify(s)}`).toBe(true);
                    expect(desired).toBeGreaterThanOrEqual(min);
                    expect(desired).toBeLessThanOrEqual(max);
                  }
    }
  });
});
