import type { Clock, TimerHandle } from '../core/clock.js';

/** The longest delay setTimeout takes; asked for more, Node fires after 1 ms instead. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * The real clock, for the running gateway. Timers are unref'd: they never keep the process
 * alive. A delay past setTimeout's limit (about 24.8 days, e.g. a request_timeout of 30 days)
 * is served by a chain of timers, so it fires when asked rather than at once.
 */
/** Fixed for the process's life; read once, as its getter costs as much as performance.now(). */
const TIME_ORIGIN = performance.timeOrigin;

export const systemClock: Clock = {
  now: () => TIME_ORIGIN + performance.now(),
  setTimer(ms: number, fn: () => void): TimerHandle {
    let t: NodeJS.Timeout;
    const arm = (left: number): void => {
      t = left > MAX_TIMEOUT_MS ? setTimeout(arm, MAX_TIMEOUT_MS, left - MAX_TIMEOUT_MS) : setTimeout(fn, left);
      t.unref();
    };
    arm(ms);
    return { cancel: () => clearTimeout(t) };
  },
};
