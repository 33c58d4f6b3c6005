import type { Clock } from '../core/clock.js';
import type { WorkerStateChange } from '../core/types.js';
import type { WatchEventsResponse } from '../gen/flockserve/v1/node_control.js';
import { STATE, workerToProto } from './workers.js';

export type EventListener = (event: WatchEventsResponse) => void;

/** One autoscaler evaluation as WatchEvents reports it (every decision, "no change" included). */
export interface DecisionEvent {
  readonly policy: string;
  readonly currentWorkers: number;
  readonly desiredWorkers: number;
  readonly queueLengthRunningMean: number;
  readonly reason: string;
}

/**
 * Fans control-plane events out to WatchEvents subscribers. Each event is turned into its
 * proto message when it happens, so a subscriber that reads it later still sees the worker
 * as it was at that moment (the pool's Worker objects change in place).
 */
export class EventHub {
  readonly #listeners = new Set<EventListener>();
  readonly #clock: Clock;
  readonly #wallNow: () => number;

  constructor(clock: Clock, wallNow: () => number = Date.now) {
    this.#clock = clock;
    this.#wallNow = wallNow;
  }

  get subscribers(): number {
    return this.#listeners.size;
  }

  /** Returns the unsubscribe function (safe to call more than once). */
  subscribe(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  workerChanged(change: WorkerStateChange): void {
    if (this.#listeners.size === 0) return;
    const now = this.#wallNow();
    this.#publish({
      unixMs: now,
      event: {
        $case: 'workerStateChanged',
        value: {
          worker: workerToProto(change.worker, this.#clock, now),
          previousState: STATE[change.previous],
          reason: change.reason,
        },
      },
    });
  }

  decision(d: DecisionEvent): void {
    if (this.#listeners.size === 0) return;
    this.#publish({ unixMs: this.#wallNow(), event: { $case: 'autoscalerDecision', value: { ...d } } });
  }

  #publish(event: WatchEventsResponse): void {
    // A copy: a listener may unsubscribe (itself or another) while we iterate.
    for (const l of [...this.#listeners]) l(event);
  }
}
