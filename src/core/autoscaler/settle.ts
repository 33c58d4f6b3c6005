import { activeWorkers } from './snapshot.js';
import type { ScaleDecision, ScaleSnapshot } from './types.js';

/**
 * The rules every policy's answer goes through, in this order (one place, so a policy only
 * says what it wants and cannot forget a guard):
 *
 *   1. scale-to-zero only when idle for the whole window: 0 while the running mean or the
 *      queue now is above 0 becomes 1 (and W = 0 with a request queued becomes 1);
 *   2. no scale-down within `downscale_delay` after a scale-up (keep W);
 *   3. clamp to [min_workers, max_workers] — bounds win over the delay, so lowering
 *      max_workers at run time takes effect at the next decision.
 *
 * E.g. W = 3, the policy says 1, last scale-up 100 s ago, delay 300 s → 3 ("200 s left").
 * E.g. W = 1, min 0, mean 0.01 (one request 9 minutes ago in a 10-minute window) → 1, not 0.
 */
export function settle(raw: ScaleDecision, s: ScaleSnapshot, now: number): ScaleDecision {
  const W = activeWorkers(s);
  let { desired, reason } = raw;
  const busy = s.queueLengthMean > 0 || s.queueLength > 0;

  if (desired === 0 && busy) {
    desired = 1;
    reason += `; kept 1: not idle for the whole window (mean ${s.queueLengthMean.toFixed(2)}, ${s.queueLength} now)`;
  }

  const { downscaleDelayMs } = s.config;
  if (desired < W && s.lastScaleUpAt !== undefined && now - s.lastScaleUpAt < downscaleDelayMs) {
    const left = ((downscaleDelayMs - (now - s.lastScaleUpAt)) / 1000).toFixed(0);
    desired = W;
    reason = `no change: scale-down delay, ${left} s left since the last scale-up (wanted: ${reason})`;
  }

  let wanted: number | undefined;
  if (desired > s.maxWorkers) {
    wanted = desired;
    desired = s.maxWorkers;
    reason += `; clamped to max_workers ${desired}`;
  } else if (desired < s.minWorkers) {
    desired = s.minWorkers;
    reason += `; clamped to min_workers ${desired}`;
  }
  if (desired === raw.desired && reason === raw.reason) return raw;
  return wanted === undefined ? { desired, reason } : { desired, reason, wanted };
}
