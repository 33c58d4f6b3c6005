/**
 * The one way tests wait for state owned by something they cannot step: real processes (a
 * worker turning ready, a PID vanishing), real sockets, a gateway running on the system clock.
 * It checks a condition every `everyMs` and fails with the name of what it waited for (and the
 * last value seen) once `timeoutMs` has passed, so a slow machine makes a test slower, never
 * wrong. Virtual-time logic never uses it: a VirtualClock is stepped instead.
 */

export interface WaitOptions {
  /** Give up after this long. Default 15 s. */
  readonly timeoutMs?: number;
  /** Time between checks. Default 20 ms. */
  readonly everyMs?: number;
}

/** What a wait is for, in its timeout error; a function is read only then (e.g. to show the pool). */
export type WaitLabel = string | (() => string);

const DEFAULTS = { timeoutMs: 15_000, everyMs: 20 };

/** Waits until `cond` holds. `options` may be the timeout in ms alone. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  what: WaitLabel,
  options: number | WaitOptions = {},
): Promise<void> {
  await waitForValue(cond, (ok) => ok, what, options);
}

/**
 * Waits until `probe()` gives a value that `ok` accepts, and returns that value (e.g. a stats
 * object to assert on). On timeout the error shows the last value probed.
 */
export async function waitForValue<T>(
  probe: () => T | Promise<T>,
  ok: (value: T) => boolean,
  what: WaitLabel,
  options: number | WaitOptions = {},
): Promise<T> {
  const { timeoutMs, everyMs } = { ...DEFAULTS, ...(typeof options === 'number' ? { timeoutMs: options } : options) };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    if (Date.now() > deadline) {
      const label = typeof what === 'string' ? what : what();
      const last = typeof value === 'boolean' ? '' : `; last value: ${describe(value)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}${last}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

function describe(value: unknown): string {
  try {
    const text = JSON.stringify(value);
    return text.length > 500 ? `${text.slice(0, 500)}…` : text;
  } catch {
    return String(value);
  }
}
