import { activeWorkers } from './snapshot.js';
import type { AutoscalerOptions, AutoscalerPolicy, ScaleDecision, ScaleSnapshot } from './types.js';

/**
 * The default policy, FlockServe's: compare the running mean of the queue length per
 * worker with `autoscale_up` / `autoscale_down`.
 *
 *   L = running mean of the queue length, W = ready + starting + provisioning + not_ready
 *   W = 0 and (L > 0 or a request is queued now)        → 1          (scale from zero)
 *   L/W > up                                            → max(W+1, ⌈L/up⌉)
 *   L/W < down and L/(W−1) ≤ up and no scale-up within downscaleDelay → W − 1
 *   otherwise                                           → W          (no change)
 *   and the result is always clamped to [min_workers, max_workers].
 *
 * E.g. up = 7, down = 4, W = 2, L = 30: 30/2 = 15 > 7 → ⌈30/7⌉ = 5 workers (capped by max),
 * one step to the size that brings the load per worker under `up` (30/5 = 6).
 * E.g. W = 3, L = 9: 9/3 = 3 < 4 and 9/2 = 4.5 ≤ 7 → 2. The second test keeps the
 * remaining workers under `up` after removing one, so a scale-down never triggers a
 * scale-up next round (W = 2, L = 7.5: 3.75 < 4 but 7.5/1 > 7 → stay at 2).
 * Scale-down removes one worker per decision; the controller's interval paces it.
 * Covered by test/unit/core/autoscaler/running-mean.test.ts.
 */
export class RunningMean implements AutoscalerPolicy {
  readonly name = 'running-mean';

  constructor(_opts: AutoscalerOptions = {}) {}

  decide(s: ScaleSnapshot, now: number): ScaleDecision {
    const raw = this.#raw(s, now);
    const desired = Math.min(s.maxWorkers, Math.max(s.minWorkers, raw.desired));
    if (desired === raw.desired) return raw;
    const bound = desired === s.maxWorkers && raw.desired > s.maxWorkers ? 'max_workers' : 'min_workers';
    return { desired, reason: `${raw.reason}; clamped to ${bound} ${desired}` };
  }

  #raw(s: ScaleSnapshot, now: number): ScaleDecision {
    const L = s.queueLengthMean;
    const W = activeWorkers(s);
    const { autoscaleUp: up, autoscaleDown: down, downscaleDelayMs } = s.config;
    const mean = L.toFixed(2);

    if (W === 0) {
      if (L > 0 || s.queueLength > 0)
        return { desired: 1, reason: `scale from zero: queue mean ${mean}, ${s.queueLength} now` };
      return { desired: 0, reason: 'no change: no workers and no load' };
    }

    const perWorker = L / W;
    if (perWorker > up) {
      // up = 0 gives ⌈L/0⌉ = Infinity: then only max_workers bounds the step.
      const desired = Math.max(W + 1, Math.ceil(L / up));
      return {
        desired,
        reason: `scale up: queue mean ${mean} / ${W} workers = ${perWorker.toFixed(2)} > autoscale_up ${up}`,
      };
    }

    if (perWorker < down) {
      // With one worker left, removing it is only safe when there is no load at all.
      const afterRemoval = W > 1 ? L / (W - 1) : L === 0 ? 0 : Infinity;
      if (afterRemoval > up) {
        return {
          desired: W,
          reason: `no change: ${perWorker.toFixed(2)} < autoscale_down ${down} but ${W - 1} workers would carry ${afterRemoval.toFixed(2)} > autoscale_up ${up}`,
        };
      }
      if (s.lastScaleUpAt !== undefined && now - s.lastScaleUpAt < downscaleDelayMs) {
        const left = ((downscaleDelayMs - (now - s.lastScaleUpAt)) / 1000).toFixed(0);
        return { desired: W, reason: `no change: scale-down delay, ${left} s left since the last scale-up` };
      }
      return {
        desired: W - 1,
        reason: `scale down: queue mean ${mean} / ${W} workers = ${perWorker.toFixed(2)} < autoscale_down ${down}`,
      };
    }

    return { desired: W, reason: `no change: queue mean ${mean} / ${W} workers = ${perWorker.toFixed(2)}` };
  }
}
