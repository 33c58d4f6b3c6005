import { settle } from './settle.js';
import { activeWorkers } from './snapshot.js';
import type { AutoscalerOptions, AutoscalerPolicy, ScaleDecision, ScaleSnapshot } from './types.js';

/**
 * FlockServe's thresholds, per worker, as the original scales (bench/results/autoscaling.md
 * places it against the other policies).
 *
 *   L = running mean of the queue length (time-weighted, queue_tracking_window)
 *   W = workers counted: ready + starting + provisioning + not_ready (all but draining)
 *   L/W > up                          → ⌈L/up⌉, the fewest workers with L/W' ≤ up (at least W+1)
 *   L/W < down and L/(W−1) ≤ up       → W − 1   (the fleet drains the least-loaded ready worker)
 *   otherwise                         → W       (no change)
 *   W = 0 counts as L/W = ∞ when there is any load: → max(1, ⌈L/up⌉)
 * then the common rules (settle.ts): scale-to-zero only after a whole idle window, no
 * scale-down within downscale_delay after a scale-up, [min_workers, max_workers].
 *
 * E.g. up = 7, down = 4, W = 2, L = 30: 30/2 = 15 > 7 → ⌈30/7⌉ = 5 workers (capped by max),
 * one step to the size that brings the load per worker under `up` (30/5 = 6).
 * E.g. W = 3, L = 9: 9/3 = 3 < 4 and 9/2 = 4.5 ≤ 7 → 2. The second test keeps the
 * remaining workers under `up` after removing one, so a scale-down never triggers a
 * scale-up next round (W = 2, L = 7.5: 3.75 < 4 but 7.5/1 > 7 → stay at 2).
 * With W = 1 this is FlockServe's rule (mean > 7 → 2 workers); the thresholds being per
 * worker, 7 and 4 mean the same at any fleet size. Scale-down removes one worker per
 * decision; the controller's interval paces it.
 * Covered by test/unit/core/autoscaler/running-mean.test.ts.
 */
export class RunningMean implements AutoscalerPolicy {
  readonly name = 'running-mean';

  constructor(_opts: AutoscalerOptions = {}) {}

  decide(s: ScaleSnapshot, now: number): ScaleDecision {
    return settle(this.#raw(s), s, now);
  }

  #raw(s: ScaleSnapshot): ScaleDecision {
    const L = s.queueLengthMean;
    const W = activeWorkers(s);
    const { autoscaleUp: up, autoscaleDown: down } = s.config;
    const mean = L.toFixed(2);

    if (W === 0) {
      if (L > 0 || s.queueLength > 0) {
        // up = 0 gives ⌈L/0⌉ = Infinity (or NaN for L = 0): max_workers bounds it.
        const want = up > 0 ? Math.max(1, Math.ceil(L / up)) : Infinity;
        return { desired: want, reason: `scale from zero: queue mean ${mean}, ${s.queueLength} now` };
      }
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
      return {
        desired: W - 1,
        reason: `scale down: queue mean ${mean} / ${W} workers = ${perWorker.toFixed(2)} < autoscale_down ${down}`,
      };
    }

    return { desired: W, reason: `no change: queue mean ${mean} / ${W} workers = ${perWorker.toFixed(2)}` };
  }
}
