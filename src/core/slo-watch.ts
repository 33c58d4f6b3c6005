import type { SloStanding } from './autoscaler/history-readings.js';

/** What changed in the SLO's standing, for a log line: it began to miss, or holds again. */
export type SloChange = 'missed' | 'held-again';

/** The share of a p99's late budget the late requests must be back under to count as held again. */
const HELD_AGAIN_SHARE = 0.8;

/**
 * Follows the queue-wait SLO's standing over the history (sloStanding) from one reading to the
 * next, and says when it changes: the gateway logs a warning when the p99 begins to miss
 * queue_wait_slo and a note when it holds again. "Holds again" needs the late requests back
 * under HELD_AGAIN_SHARE of what a p99 allows: an hour that hovers at the budget would
 * otherwise say both every few readings.
 *
 *   late / allowed: 0.5, 1.2, 0.95, 0.7, 1.1 → undefined, missed, undefined, held-again, missed
 */
export class SloWatch {
  #missing = false;

  update(s: SloStanding): SloChange | undefined {
    if (!this.#missing && s.verdict === 'missed') {
      this.#missing = true;
      return 'missed';
    }
    if (this.#missing && s.verdict !== 'missed' && s.late <= HELD_AGAIN_SHARE * s.budget) {
      this.#missing = false;
      return 'held-again';
    }
    return undefined;
  }
}
