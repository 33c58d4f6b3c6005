import { settle } from './settle.js';
import { activeWorkers } from './snapshot.js';
import type { AutoscalerOptions, AutoscalerPolicy, ScaleDecision, ScaleSnapshot } from './types.js';

/**
 * The original FlockServe's rule, kept literally as the baseline for comparisons
 * (flockserve/autoscaler.py, RunningMeanLoadAutoscaler.autoscale). The thresholds apply to
 * the TOTAL queue mean, whatever the fleet size, and it moves one worker per check:
 *
 *   n = workers counted (ready + starting + provisioning + not_ready), r = ready ones
 *   n < min_workers                      → n + 1
 *   n > max_workers                      → n − 1
 *   r ≠ n  (a launch is under way)       → n      (no action while any worker is not ready)
 *   L > autoscale_up and n < max         → n + 1
 *   L < autoscale_down and r > min       → n − 1
 *   otherwise                            → n
 * then the common rules (settle.ts), which the original did not have: downscale_delay,
 * scale-to-zero only after an idle window, and a clamp (so min/max moves in one step).
 *
 * E.g. up = 7, n = r = 3, L = 20 → 4 even though 20/3 ≈ 6.7 per worker is under 7: a
 * total-queue threshold keeps adding workers while the queue stays above 7 in all.
 * E.g. a burst of L = 200 with n = r = 1 → 2, and nothing more until worker 2 is ready.
 */
export class FlockServeClassic implements AutoscalerPolicy {
  readonly name = 'flockserve-classic';

  constructor(_opts: AutoscalerOptions = {}) {}

  decide(s: ScaleSnapshot, now: number): ScaleDecision {
    return settle(this.#raw(s), s, now);
  }

  #raw(s: ScaleSnapshot): ScaleDecision {
    const n = activeWorkers(s);
    const r = s.workers.ready;
    const L = s.queueLengthMean;
    const { autoscaleUp: up, autoscaleDown: down } = s.config;
    const mean = L.toFixed(2);
    if (n < s.minWorkers) return { desired: n + 1, reason: `scale up: ${n} workers < min_workers ${s.minWorkers}` };
    if (n > s.maxWorkers) return { desired: n - 1, reason: `scale down: ${n} workers > max_workers ${s.maxWorkers}` };
    if (n === 0) {
      // Not in the original (it had no scale-to-zero); settle() brings a loaded empty fleet to 1.
      return { desired: 0, reason: `no change: no workers, queue mean ${mean}` };
    }
    if (r !== n) return { desired: n, reason: `no change: ${n - r} of ${n} workers not ready (scaling under way)` };
    if (L > up && n < s.maxWorkers)
      return { desired: n + 1, reason: `scale up: queue mean ${mean} > autoscale_up ${up}` };
    if (L < down && r > s.minWorkers)
      return { desired: n - 1, reason: `scale down: queue mean ${mean} < autoscale_down ${down}` };
    return { desired: n, reason: `no change: queue mean ${mean}` };
  }
}
