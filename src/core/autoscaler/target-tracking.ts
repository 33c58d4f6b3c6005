import { settle } from './settle.js';
import { activeWorkers } from './snapshot.js';
import type { AutoscalerOptions, AutoscalerPolicy, ScaleDecision, ScaleSnapshot } from './types.js';

/**
 * Default of `target_queue_per_worker` (the options table reads it from here): 7, the same
 * per-worker load as autoscale_up's default, so switching policy keeps the fleet's size in
 * steady state. bench/results/autoscaling.md compares 5 and 7.
 */
export const DEFAULT_TARGET_QUEUE_PER_WORKER = 7;

/** Panic when the panic-window mean exceeds this many times the fleet's capacity (Knative: 200%). */
export const PANIC_THRESHOLD = 2;

/** How often the panic condition is checked between evaluations (Knative's tick, 2 s). */
export const PANIC_CHECK_MS = 2000;

/**
 * Target tracking with a Knative-style panic mode.
 *
 *   T = target_queue_per_worker, W = workers counted, L = running mean (queue_tracking_window),
 *   P = mean over the panic window (panic_window, 6 s)
 *   stable:   desired = ⌈L / T⌉                      (up or down, several at a time)
 *   panic:    P > 2 · T · max(W, 1)  →  desired = max(W, ⌈P / T⌉, ⌈L / T⌉)   (never down)
 * Panic is checked every 2 s, not only every autoscale_interval, so a burst scales up at once.
 * "Panicking" is the condition itself, no state: once P falls back, downscale_delay (counted
 * from the panic scale-up) keeps the workers, as Knative's stable window does.
 * Then the common rules (settle.ts).
 *
 * E.g. T = 5, W = 2 (capacity 10): a burst with P = 45 > 20 → ⌈45/5⌉ = 9 within 2 s, while
 * L, a 10-minute mean, has hardly moved. Without the burst, L = 12 → ⌈12/5⌉ = 3.
 */
export class TargetTracking implements AutoscalerPolicy {
  readonly name = 'target-tracking';
  readonly urgentIntervalMs = PANIC_CHECK_MS;
  readonly target: number;

  constructor(opts: AutoscalerOptions = {}) {
    const t = opts['targetQueuePerWorker'] ?? DEFAULT_TARGET_QUEUE_PER_WORKER;
    if (typeof t !== 'number' || !(t > 0) || !Number.isFinite(t)) {
      throw new RangeError(`target-tracking: target_queue_per_worker must be a number > 0, got ${String(t)}`);
    }
    this.target = t;
  }

  decide(s: ScaleSnapshot, now: number): ScaleDecision {
    return settle(this.#raw(s), s, now);
  }

  urgent(s: ScaleSnapshot, now: number): ScaleDecision | undefined {
    if (!this.#panicking(s)) return undefined;
    const d = this.decide(s, now);
    return d.desired > activeWorkers(s) ? d : undefined;
  }

  #panicking(s: ScaleSnapshot): boolean {
    return s.panicQueueLengthMean > PANIC_THRESHOLD * this.target * Math.max(activeWorkers(s), 1);
  }

  #raw(s: ScaleSnapshot): ScaleDecision {
    const T = this.target;
    const W = activeWorkers(s);
    const stable = Math.ceil(s.queueLengthMean / T);
    const L = s.queueLengthMean.toFixed(2);
    if (this.#panicking(s)) {
      const panic = Math.ceil(s.panicQueueLengthMean / T);
      const P = s.panicQueueLengthMean.toFixed(2);
      return {
        desired: Math.max(W, panic, stable),
        reason: `panic: ${P} in the panic window > ${PANIC_THRESHOLD} × ${T} × ${Math.max(W, 1)} workers; ⌈${P}/${T}⌉ = ${panic}, stable ⌈${L}/${T}⌉ = ${stable}`,
      };
    }
    const verb = stable > W ? 'scale up' : stable < W ? 'scale down' : 'no change';
    return { desired: stable, reason: `${verb}: ⌈queue mean ${L} / target ${T}⌉ = ${stable} (${W} now)` };
  }
}
