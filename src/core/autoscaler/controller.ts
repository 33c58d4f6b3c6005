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
  readonly apply: (desired: number, decision: ScaleDecision, snapshot: ScaleSnapshot) => void;
  /** Every decision, "no change" included, with the inputs it was made on (for logs). */
  readonly onDecision?: (decision: ScaleDecision, snapshot: ScaleSnapshot) => void;
  /** A throw from snapshot/policy/apply; the controller keeps ticking. */
  readonly onError?: (err: unknown) => void;
}

/** Decisions so far, by outcome (exported as metrics). */
export interface DecisionCounts {
  evaluations: number;
  scaleUps: number;
  scaleDowns: number;
  unchanged: number;
  /** Scale-ups from zero made at once for a waiting request (not counted in evaluations). */
  fromZero: number;
  /** Scale-ups made between evaluations by a policy's urgent check (panic). */
  urgent: number;
}

/**
 * Runs the policy every `intervalMs` on the clock and applies changes; also, for policies
 * that have one, the urgent check every `policy.urgentIntervalMs` (scale-ups only).
 *
 * It remembers when it last applied a scale-up and puts that into the snapshot as
 * `lastScaleUpAt` (the later of its own and the snapshot's), so every scale-up — evaluated,
 * urgent or from zero on demand — holds off scale-down for downscale_delay.
 */
export class AutoscalerController {
  readonly #opts: AutoscalerControllerOptions;
  #timer: TimerHandle | undefined;
  #urgentTimer: TimerHandle | undefined;
  #lastScaleUpAt: number | undefined;
  readonly #counts: DecisionCounts = {
    evaluations: 0,
    scaleUps: 0,
    scaleDowns: 0,
    unchanged: 0,
    fromZero: 0,
    urgent: 0,
  };

  constructor(opts: AutoscalerControllerOptions) {
    if (!(opts.intervalMs > 0)) throw new RangeError(`interval must be > 0 ms, got ${opts.intervalMs}`);
    const urgent = opts.policy.urgentIntervalMs;
    if (urgent !== undefined && !(urgent > 0)) throw new RangeError(`urgent interval must be > 0 ms, got ${urgent}`);
    this.#opts = opts;
  }

  get running(): boolean {
    return this.#timer !== undefined;
  }

  get counts(): Readonly<DecisionCounts> {
    return { ...this.#counts };
  }

  /** First evaluation one interval from now; calling it twice does nothing. */
  start(): void {
    if (this.#timer) return;
    this.#schedule();
    if (this.#opts.policy.urgent && this.#opts.policy.urgentIntervalMs !== undefined) this.#scheduleUrgent();
  }

  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#urgentTimer?.cancel();
    this.#urgentTimer = undefined;
  }

  /** Decides (and applies) now; returns the decision. Throws what snapshot/policy/apply throw. */
  evaluateNow(): ScaleDecision {
    const { clock, policy } = this.#opts;
    const snap = this.#withLastScaleUp(this.#opts.snapshot());
    const decision = policy.decide(snap, clock.now());
    this.#counts.evaluations++;
    this.#take(decision, snap);
    return decision;
  }

  /**
   * A request arrived and no worker is live: launch at once rather than at the next
   * evaluation. Goes to max(1, min_workers) within max_workers; does nothing while any
   * worker counts. Returns the decision taken, if any.
   */
  demand(): ScaleDecision | undefined {
    const snap = this.#withLastScaleUp(this.#opts.snapshot());
    if (activeWorkers(snap) > 0) return undefined;
    const desired = Math.min(snap.maxWorkers, Math.max(1, snap.minWorkers));
    if (desired < 1) return undefined;
    const decision = { desired, reason: 'scale from zero: a request arrived with no worker' };
    this.#counts.fromZero++;
    this.#take(decision, snap);
    return decision;
  }

  #take(decision: ScaleDecision, snap: ScaleSnapshot): void {
    this.#opts.onDecision?.(decision, snap);
    const current = activeWorkers(snap);
    if (decision.desired === current) {
      this.#counts.unchanged++;
      return;
    }
    if (decision.desired > current) {
      this.#lastScaleUpAt = this.#opts.clock.now();
      this.#counts.scaleUps++;
    } else this.#counts.scaleDowns++;
    this.#opts.apply(decision.desired, decision, snap);
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

  #scheduleUrgent(): void {
    const { policy, clock } = this.#opts;
    this.#urgentTimer = clock.setTimer(policy.urgentIntervalMs!, () => {
      try {
        const snap = this.#withLastScaleUp(this.#opts.snapshot());
        const decision = policy.urgent?.(snap, clock.now());
        if (decision && decision.desired > activeWorkers(snap)) {
          this.#counts.urgent++;
          this.#take(decision, snap);
        }
      } catch (err) {
        this.#opts.onError?.(err);
      }
      if (this.#urgentTimer) this.#scheduleUrgent();
    });
  }

  #withLastScaleUp(snap: ScaleSnapshot): ScaleSnapshot {
    const mine = this.#lastScaleUpAt;
    if (mine === undefined) return snap;
    const theirs = snap.lastScaleUpAt;
    return theirs !== undefined && theirs >= mine ? snap : { ...snap, lastScaleUpAt: mine };
  }
}
