import { describe, expect, it, vi } from 'vitest';
import { AutoscalerController } from '../../../../src/core/autoscaler/controller.js';
import { RunningMean } from '../../../../src/core/autoscaler/running-mean.js';
import type { ScaleDecision, ScaleSnapshot } from '../../../../src/core/autoscaler/types.js';
import { VirtualClock } from '../../../../src/core/clock.js';
import { TargetTracking } from '../../../../src/core/autoscaler/target-tracking.js';
import { scaleSnapshot } from '../../../fakes/scale-snapshot.js';

const S = 1000;

/** A fake fleet: `apply` sets the count at once; the queue mean is set by the test. */
function fleet(clock: VirtualClock, opts: { workers?: number; delayS?: number } = {}) {
  const state = { workers: opts.workers ?? 1, mean: 0 };
  const applied: [number, number][] = []; // [time s, desired]
  const decisions: ScaleDecision[] = [];
  const snapshot = (): ScaleSnapshot => ({
    queueLengthMean: state.mean,
    queueLength: Math.round(state.mean),
    panicQueueLengthMean: state.mean,
    workers: { ready: state.workers, starting: 0, provisioning: 0, notReady: 0, draining: 0 },
    minWorkers: 1,
    maxWorkers: 8,
    config: { autoscaleUp: 7, autoscaleDown: 4, downscaleDelayMs: (opts.delayS ?? 300) * S, workerCapacity: 30 },
  });
  const controller = new AutoscalerController({
    clock,
    policy: new RunningMean(),
    intervalMs: 30 * S,
    snapshot,
    apply: (desired) => {
      applied.push([clock.now() / S, desired]);
      state.workers = desired;
    },
    onDecision: (d) => decisions.push(d),
  });
  return { state, applied, decisions, controller };
}

describe('AutoscalerController', () => {
  it('evaluates every interval, scales up, holds scale-down for the delay, then steps down one by one', () => {
    const clock = new VirtualClock();
    const { state, applied, decisions, controller } = fleet(clock);
    controller.start();

    clock.advance(29 * S);
    expect(decisions).toHaveLength(0); // first evaluation one interval after start

    state.mean = 30; // burst: 30/1 > 7 → ⌈30/7⌉ = 5
    clock.advance(1 * S); // t=30
    expect(applied).toEqual([[30, 5]]);

    state.mean = 0; // the burst ends at once
    clock.runUntil(329 * S); // evaluations at 60 … 300 s are inside the 300 s delay
    expect(applied).toEqual([[30, 5]]);
    expect(decisions.at(-1)?.reason).toMatch(/scale-down delay/);

    clock.runUntil(450 * S); // 330, 360, 390, 420, 450: one worker less each time, down to min 1
    expect(applied).toEqual([
      [30, 5],
      [330, 4],
      [360, 3],
      [390, 2],
      [420, 1],
    ]);
    expect(decisions).toHaveLength(15); // 30, 60, …, 450
  });

  it('does not call apply when the decision is no change', () => {
    const clock = new VirtualClock();
    const apply = vi.fn();
    const c = new AutoscalerController({
      clock,
      policy: new RunningMean(),
      intervalMs: 10 * S,
      snapshot: () => ({
        queueLengthMean: 5,
        queueLength: 5,
        panicQueueLengthMean: 5,
        workers: { ready: 1, starting: 0, provisioning: 0, notReady: 0, draining: 0 },
        minWorkers: 1,
        maxWorkers: 3,
        config: { autoscaleUp: 7, autoscaleDown: 4, downscaleDelayMs: 0, workerCapacity: 30 },
      }),
      apply,
    });
    expect(c.evaluateNow().desired).toBe(1);
    c.start();
    clock.advance(100 * S);
    expect(apply).not.toHaveBeenCalled();
  });

  it('stop() ends the ticks and start() twice schedules one timer', () => {
    const clock = new VirtualClock();
    const { decisions, controller } = fleet(clock);
    controller.start();
    controller.start();
    expect(clock.pendingTimers).toBe(1);
    clock.advance(60 * S);
    expect(decisions).toHaveLength(2);
    controller.stop();
    expect(controller.running).toBe(false);
    clock.advance(600 * S);
    expect(decisions).toHaveLength(2);
    expect(clock.pendingTimers).toBe(0);
  });

  it('keeps ticking after a throw and reports it', () => {
    const clock = new VirtualClock();
    const onError = vi.fn();
    let calls = 0;
    const c = new AutoscalerController({
      clock,
      policy: new RunningMean(),
      intervalMs: S,
      snapshot: () => {
        calls++;
        throw new Error('pool gone');
      },
      apply: () => {},
      onError,
    });
    c.start();
    clock.advance(3 * S);
    expect(calls).toBe(3);
    expect(onError).toHaveBeenCalledTimes(3);
  });

  it('uses the later of its own and the snapshot’s lastScaleUpAt', () => {
    const clock = new VirtualClock();
    const { state, applied, controller } = fleet(clock, { delayS: 100 });
    state.mean = 20; // 20/1 > 7 → 3
    controller.evaluateNow();
    state.mean = 0;
    clock.advance(99 * S);
    controller.evaluateNow();
    expect(applied).toEqual([[0, 3]]);
    clock.advance(1 * S);
    controller.evaluateNow();
    expect(applied).toEqual([
      [0, 3],
      [100, 2],
    ]);
  });

  it('demand(): from zero at once to max(1, min), counted as a scale-up that holds off scale-down', () => {
    const clock = new VirtualClock();
    const state = { workers: 0, mean: 0, queue: 0 };
    const applied: [number, number][] = [];
    const c = new AutoscalerController({
      clock,
      policy: new RunningMean(),
      intervalMs: 30 * S,
      snapshot: () =>
        scaleSnapshot({
          mean: state.mean,
          queue: state.queue,
          workers: { ready: state.workers },
          min: 0,
          max: 3,
          delayS: 60,
        }),
      apply: (desired) => {
        applied.push([clock.now() / S, desired]);
        state.workers = desired;
      },
    });
    c.start();
    clock.advance(5 * S);
    expect(c.demand()?.desired).toBe(1); // a request at 5 s: launched at once, not at 30 s
    expect(applied).toEqual([[5, 1]]);
    expect(c.demand()).toBeUndefined(); // a worker counts now: nothing more
    // Idle from here on (the mean stays 0): the delay (60 s from 5 s) holds the worker until 65 s.
    clock.runUntil(60 * S);
    expect(applied).toEqual([[5, 1]]);
    clock.runUntil(90 * S);
    expect(applied).toEqual([
      [5, 1],
      [90, 0],
    ]);
    expect(c.counts).toMatchObject({ fromZero: 1, scaleUps: 1, scaleDowns: 1 });
  });

  it('target-tracking panic: checked every 2 s between 30 s evaluations, scale-ups only', () => {
    const clock = new VirtualClock();
    const state = { workers: 2, mean: 8, panic: 8 };
    const applied: [number, number][] = [];
    const c = new AutoscalerController({
      clock,
      policy: new TargetTracking({ targetQueuePerWorker: 5 }),
      intervalMs: 30 * S,
      snapshot: () => scaleSnapshot({ mean: state.mean, panic: state.panic, workers: { ready: state.workers } }),
      apply: (desired) => {
        applied.push([clock.now() / S, desired]);
        state.workers = desired;
      },
    });
    c.start();
    clock.runUntil(9 * S);
    expect(applied).toEqual([]); // 8 in the panic window ≤ 2×5×2: calm
    state.panic = 45; // a burst at 9 s
    clock.runUntil(10 * S); // the 10 s check sees it: ⌈45/5⌉ = 9 at once
    expect(applied).toEqual([[10, 9]]);
    clock.runUntil(29 * S); // 45 ≤ 2×5×9: no longer a panic; nothing until the evaluation
    expect(applied).toEqual([[10, 9]]);
    state.panic = 0;
    state.mean = 0;
    clock.runUntil(30 * S); // stable ⌈0/5⌉ = 0 → 1 (min), but the scale-up at 10 s holds it
    expect(applied).toEqual([[10, 9]]);
    clock.runUntil(330 * S); // 10 + 300 s delay → the 330 s evaluation scales down
    expect(applied).toEqual([
      [10, 9],
      [330, 1],
    ]);
    expect(c.counts).toMatchObject({ urgent: 1, scaleUps: 1, scaleDowns: 1 });
    c.stop();
    expect(clock.pendingTimers).toBe(0);
  });
});
