import type { Clock, TimerHandle } from '../core/clock.js';

/** The real clock, for the running gateway. Timers are unref'd: they never keep the process alive. */
export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimer(ms: number, fn: () => void): TimerHandle {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};
