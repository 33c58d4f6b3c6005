import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/core/clock.js';
import { PrefillQueue } from '../../../src/core/prefill-queue.js';

function queue(): { clock: VirtualClock; q: PrefillQueue } {
  const clock = new VirtualClock();
  return { clock, q: new PrefillQueue(clock) };
}

describe('PrefillQueue', () => {
  it('counts every prompt whole until a streamed first token has timed the pace', () => {
    const { clock, q } = queue();
    const a = q.add(1000);
    q.add(500);
    clock.advance(10_000);
    expect([q.bytes, q.left(), q.pace]).toEqual([1500, 1500, 0]);
    q.done(a, false); // a whole answer's first byte comes with its end: it says nothing of the pace
    expect([q.bytes, q.left(), q.pace]).toEqual([500, 500, 0]);
  });

  it("learns the pace from the oldest prompt's first token, and takes what it has done off the oldest, never more", () => {
    const { clock, q } = queue();
    const a = q.add(1000);
    clock.advance(100);
    q.done(a, true);
    expect(q.pace).toBe(10); // 1000 bytes in 100 ms
    q.add(500);
    q.add(800);
    clock.advance(20);
    expect(q.left()).toBe(1300 - 200);
    clock.advance(100);
    expect(q.left()).toBe(800); // the oldest is done at this pace, but its first token has not come: the next waits
    expect(q.bytes).toBe(1300);
  });

  it('times a prompt from when the one before it ended, not from when it was sent', () => {
    const { clock, q } = queue();
    const a = q.add(1000);
    const b = q.add(600);
    clock.advance(100);
    q.done(a, true); // pace 10
    clock.advance(30);
    expect(q.left()).toBe(600 - 300);
    clock.advance(30);
    q.done(b, true); // 600 bytes in the 60 ms since a's first token: 10 a ms, not 600 / 160
    expect(q.pace).toBe(10);
  });

  it('a prompt that ends out of order leaves the oldest where it was, and times nothing', () => {
    const { clock, q } = queue();
    const a = q.add(1000);
    clock.advance(100);
    q.done(a, true); // pace 10, from t = 100 the next oldest's prefill begins
    const b = q.add(2000);
    const c = q.add(300);
    clock.advance(50);
    q.done(c, true); // c ended first (failed, say): not the oldest, so no timing
    expect(q.pace).toBe(10);
    expect(q.left()).toBe(2000 - 500);
    q.done(c, true); // once per ticket
    expect([q.bytes, q.pace]).toEqual([2000, 10]);
    clock.advance(50);
    q.done(b, true);
    expect(q.pace).toBe((1000 * 0.99 + 2000) / (100 * 0.99 + 100));
    expect([q.bytes, q.left()]).toEqual([0, 0]);
  });

  it('an empty queue starts its next prompt when it is sent', () => {
    const { clock, q } = queue();
    const a = q.add(1000);
    clock.advance(100);
    q.done(a, true);
    clock.advance(5000); // idle
    const b = q.add(400);
    clock.advance(10);
    expect(q.left()).toBe(300);
    clock.advance(10);
    q.done(b, true);
    expect(q.pace).toBe((1000 * 0.99 + 400) / (100 * 0.99 + 20));
  });

  it('follows a worker whose pace changes, older timings fading', () => {
    const { clock, q } = queue();
    const time = (bytes: number, ms: number): void => {
      const t = q.add(bytes);
      clock.advance(ms);
      q.done(t, true);
    };
    time(1000, 100);
    for (let i = 0; i < 500; i++) time(1000, 50);
    expect(q.pace).toBeGreaterThan(19.9);
    expect(q.pace).toBeLessThan(20);
  });
});
