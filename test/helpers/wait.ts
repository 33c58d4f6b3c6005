/**
 * Waits for a condition on real processes (a worker turning ready, a PID vanishing).
 * Virtual-time logic never uses this: it is for state owned by other processes, which
 * has no event to subscribe to.
 */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
