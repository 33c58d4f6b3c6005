import type { Clock, TimerHandle } from '../clock.js';
import { activeWorkers } from './snapshot.js';
import type { AutoscalerPolicy, ScaleDecision, ScaleSnapshot } from './types.js';

export interface AutoscalerControllerOptions {
  readonly clock: Clock;
  readonly policy: AutoscalerPolicy;
  /** Time between evaluations (`autoscale_interval`). */
  readonly intervalMs: number;
  /** The state to decide on, read fresh at each evaluation. */
  readonly snapshot: () => ScaleSnapshot;
  /** Makes the fleet `desired` workers; called only when that differs from the current count. */
  readonly apply: (desired: number, decision: ScaleDecision) => void;
  /** Every decision, "no change" included (for logs and metrics). */
  readonly onDecision?: (decision: ScaleDecision) => void;
  /** A throw from snapshot/policy/apply; the controller keeps ticking. */
  readonly onError?: (err: unknown) => void;
}

/**
 * Runs the policy every `intervalMs` on the clock and applies changes.
 *
 * It remembers when it last applied a scale-up and puts that into the snapshot as
 * `lastScaleUpAt` (the later of its own and the snapshot's, so scale-ups made elsewhere,
 * e.g. scale-from-zero on demand, also hold off scale-down).
 */
export class AutoscalerController {
  readonly #opts: AutoscalerControllerOptions;
  #timer: TimerHandle | undefined;
  #lastScaleUpAt: number | undefined;

  constructor(opts: AutoscalerControllerOptions) {
    if (!(opts.intervalMs > 0)) throw new RangeError(`interval must be > 0 ms, got ${opts.intervalMs}`);
    this.#opts = opts;
  }

  get running(): boolean {
    return this.#timer !== undefined;
  }

  /** First evaluation one interval from now; calling it twice does nothing. */
  start(): void {
    if (this.#timer) return;
    this.#schedule();
  }

  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  /** Decides (and applies) now; returns the decision. Throws what snapshot/policy/apply throw. */
  evaluateNow(): ScaleDecision {
    const { clock, policy, apply, onDecision } = this.#opts;
    const now = clock.now();
    const snap = this.#withLastScaleUp(this.#opts.snapshot());
    const decision = policy.decide(snap, now);
    onDecision?.(decision);
    const current = activeWorkers(snap);
    if (decision.desired !== current) {
      if (decision.desired > current) this.#lastScaleUpAt = now;
      apply(decision.desired, decision);
    }
    return decision;
  }

  #schedule(): void {
    this.#timer = this.#opts.clock.setTimer(this.#opts.intervalMs, () => {
      try {
        this.evaluateNow();
      } catch (err) {
        this.#opts.onError?.(err);
      }
      // stop() from inside apply/onDecision cancels the next tick.
      if (this.#timer) this.#schedule();
    });
  }

  #withLastScaleUp(snap: ScaleSnapshot): ScaleSnapshot {
    const mine = this.#lastScaleUpAt;
    if (mine === undefined) return snap;
    const theirs = snap.lastScaleUpAt;
    return theirs !== undefined && theirs >= mine ? snap : { ...snap, lastScaleUpAt: mine };
  }
}
