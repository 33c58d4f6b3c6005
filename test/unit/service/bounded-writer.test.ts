import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { BoundedWriter } from '../../../src/service/bounded-writer.js';

/** A stream stand-in whose buffer holds `room` messages until drained, like grpc-js's writable side. */
class FakeCall extends EventEmitter {
  readonly sent: number[] = [];
  buffered = 0;
  constructor(readonly room: number) {
    super();
  }
  write(m: number): boolean {
    this.sent.push(m);
    this.buffered++;
    return this.buffered < this.room;
  }
  /** The client read everything: the buffer empties and 'drain' fires. */
  drain(): void {
    this.buffered = 0;
    this.emit('drain');
  }
}

describe('BoundedWriter', () => {
  it('timeline: writes through, queues while blocked, flushes on drain, gives up past the limit', () => {
    const call = new FakeCall(2);
    const overflows: number[] = [];
    const w = new BoundedWriter<number>(call, 3, (limit) => overflows.push(limit));
    // [step, action, sent so far, queued, overflowed]
    const timeline: [string, () => void, number[], number, boolean][] = [
      ['1 written', () => w.push(1), [1], 0, false],
      ['2 written, buffer now full', () => w.push(2), [1, 2], 0, false],
      ['3..5 queue (limit 3)', () => [3, 4, 5].forEach((m) => w.push(m)), [1, 2], 3, false],
      ['drain: 3 and 4 fill the buffer again', () => call.drain(), [1, 2, 3, 4], 1, false],
      ['6, 7 queue', () => [6, 7].forEach((m) => w.push(m)), [1, 2, 3, 4], 3, false],
      ['8 is one too many: overflow', () => w.push(8), [1, 2, 3, 4], 0, true],
      ['later messages are ignored', () => w.push(9), [1, 2, 3, 4], 0, true],
      ['a drain after overflow sends nothing', () => call.drain(), [1, 2, 3, 4], 0, true],
    ];
    for (const [step, act, sent, queued, overflowed] of timeline) {
      act();
      expect({ step, sent: call.sent, queued: w.queued, overflowed: w.overflowed }).toEqual({
        step,
        sent,
        queued,
        overflowed,
      });
    }
    expect(overflows).toEqual([3]);
  });

  it('a reader that keeps up never overflows however many messages pass', () => {
    const call = new FakeCall(16);
    let overflowed = false;
    const w = new BoundedWriter<number>(call, 4, () => (overflowed = true));
    for (let i = 0; i < 10_000; i++) {
      w.push(i);
      if (call.buffered >= 8) call.drain();
    }
    expect(call.sent).toHaveLength(10_000);
    expect(call.sent.at(-1)).toBe(9_999);
    expect(overflowed).toBe(false);
  });

  it('rejects a limit below 1', () => {
    expect(() => new BoundedWriter<number>(new FakeCall(1), 0, () => {})).toThrow(RangeError);
  });
});
