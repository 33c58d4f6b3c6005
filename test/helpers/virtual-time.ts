import type { VirtualClock } from '../../src/core/clock.js';

/** Lets promise chains started by the last timers run to the end (no real time passes). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Moves virtual time to `until` in `stepMs` steps, settling promises after each, so that
 * async work a timer starts (a probe, a provisioner call) finishes at the time it would.
 */
export async function runTo(clock: VirtualClock, until: number, stepMs = 100): Promise<void> {
  await flush();
  while (clock.now() < until) {
    clock.runUntil(Math.min(until, clock.now() + stepMs));
    await flush();
  }
}
