import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/core/clock.js';
import { BodyTimeouts } from '../../../src/http/body-timeouts.js';

// Timelines on a virtual clock: bodies whose bytes arrive at given times, with a 60 s timeout
// (sweeps every 15 s). Each case says when the body's last byte came and when it was cut;
// the promise is a cut between 60 and 75 s after the last byte (or after the watch began).

interface Body {
  bytesRead: number;
  complete: boolean;
}

function setup(timeoutMs = 60_000): {
  clock: VirtualClock;
  timeouts: BodyTimeouts<Body>;
  cut: Map<Body, number>;
} {
  const clock = new VirtualClock(0);
  const cut = new Map<Body, number>();
  const timeouts = new BodyTimeouts<Body>({
    clock,
    timeoutMs,
    bytesRead: (b) => b.bytesRead,
    complete: (b) => b.complete,
    onTimeout: (b) => cut.set(b, clock.now()),
  });
  return { clock, timeouts, cut };
}

/** Runs a body watched from 0 whose bytes arrive at `arrivals` (s) and, if given, completes at `completeAt`. */
function run(arrivals: number[], completeAt?: number, watchAt = 0): number | undefined {
  const { clock, timeouts, cut } = setup();
  const body: Body = { bytesRead: 100, complete: false };
  clock.setTimer(watchAt * 1000, () => timeouts.watch(body));
  for (const at of arrivals) clock.setTimer(at * 1000, () => (body.bytesRead += 1));
  if (completeAt !== undefined) clock.setTimer(completeAt * 1000, () => (body.complete = true));
  clock.advance(600_000);
  const at = cut.get(body);
  return at === undefined ? undefined : at / 1000;
}

describe('BodyTimeouts (60 s between reads, sweeps every 15 s)', () => {
  it.each([
    // [what, byte arrival times (s), cut at (s)]
    ['no byte after the watch began (at 0)', [], 75],
    ['one byte at 1 s: silent from then on', [1], 75],
    ['a byte just before a sweep (14.9 s)', [14.9], 75],
    ['a byte just after a sweep (15.1 s)', [15.1], 90],
    ['a byte every 50 s: never 60 s silent ... until they stop at 200 s', [50, 100, 150, 200], 270],
    ['bytes at 59 and 118 s: each gap under 60 s', [59, 118], 180],
  ] as const)('%s → cut at %s s', (_what, arrivals, cutAt) => {
    const at = run([...arrivals]);
    expect(at).toBe(cutAt);
    const last = Math.max(0, ...arrivals);
    // The promise, whatever the phase of the sweeps: 60 to 75 s after the last byte.
    expect(at! - last).toBeGreaterThanOrEqual(60);
    expect(at! - last).toBeLessThanOrEqual(75);
  });

  it('a watch that begins between sweeps still gets its full timeout (watch at 7 s, no byte: cut 60 to 75 s later)', () => {
    const { clock, timeouts, cut } = setup();
    const early: Body = { bytesRead: 0, complete: false };
    const late: Body = { bytesRead: 0, complete: false };
    timeouts.watch(early);
    clock.setTimer(7_000, () => timeouts.watch(late));
    clock.advance(600_000);
    expect(cut.get(early)).toBe(75_000);
    // The sweep at 15 s cannot tell whether a byte came since 7 s: late's count starts there
    // (0), and the silent sweeps at 30, 45, 60 and 75 s make 4: 68 s after its watch began.
    expect(cut.get(late)).toBe(75_000);
    // Begun just after a sweep, the same takes 75 s; just before one, 60.
    const { clock: c2, timeouts: t2, cut: cut2 } = setup();
    t2.watch({ bytesRead: 0, complete: false });
    const afterSweep: Body = { bytesRead: 0, complete: false };
    c2.setTimer(15_001, () => t2.watch(afterSweep));
    c2.advance(600_000);
    expect(cut2.get(afterSweep)! - 15_001).toBe(74_999);
  });

  it('a body that completes is never cut, and leaves the list at the next sweep', () => {
    expect(run([], 30)).toBeUndefined();
    const { clock, timeouts, cut } = setup();
    const body: Body = { bytesRead: 0, complete: false };
    timeouts.watch(body);
    body.complete = true;
    clock.advance(15_000);
    expect(timeouts.size).toBe(0);
    expect(cut.size).toBe(0);
  });

  it('stop() ends the watch: nothing is cut, and no timer is left once the list is empty', () => {
    const { clock, timeouts, cut } = setup();
    const body: Body = { bytesRead: 0, complete: false };
    const w = timeouts.watch(body);
    expect(clock.pendingTimers).toBe(1);
    timeouts.stop(w);
    timeouts.stop(w); // a second stop is a no-op
    clock.advance(600_000);
    expect(cut.size).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('one timer serves every body, however many are watched', () => {
    const { clock, timeouts, cut } = setup();
    const bodies = Array.from({ length: 1000 }, () => ({ bytesRead: 0, complete: false }));
    for (const b of bodies) timeouts.watch(b);
    expect(clock.pendingTimers).toBe(1);
    // Half keep sending every 10 s; the other half go silent.
    for (let s = 10; s <= 120; s += 10)
      clock.setTimer(s * 1000, () => bodies.forEach((b, i) => i % 2 === 0 && b.bytesRead++));
    clock.advance(100_000);
    expect(cut.size).toBe(500);
    expect([...cut.keys()].every((b) => bodies.indexOf(b) % 2 === 1)).toBe(true);
    expect(timeouts.size).toBe(500);
  });

  it('timeout 0 is off: nothing is watched and no timer is set', () => {
    const { clock, timeouts } = setup(0);
    expect(timeouts.watch({ bytesRead: 0, complete: false })).toBeUndefined();
    expect(clock.pendingTimers).toBe(0);
  });
});
