import { describe, expect, it, vi } from 'vitest';
import { BodyStream, HIGH_WATER_MARK, type BodyControl } from '../../../src/upstream/body-stream.js';

/** The feeder's side (undici's, in the client): what it was told, in order. */
function controller(): BodyControl & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    abort: () => calls.push('abort'),
    pause: () => calls.push('pause'),
    resume: () => calls.push('resume'),
  };
}

/** The reader's side: what it was given, in order ('close' for the close callback). */
function reader(body: BodyStream): string[] {
  const seen: string[] = [];
  body.read({
    data: (c) => seen.push(c.toString()),
    end: () => seen.push('end'),
    error: (e) => seen.push(`error: ${e.message}`),
  });
  body.onClose((failure) => seen.push(failure ? `close: ${failure.message}` : 'close'));
  return seen;
}

const tick = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));

describe('BodyStream', () => {
  it('passes on no empty chunk (undici hands one on at its resume): flowing or held, the reader sees only bytes', () => {
    const c = controller();
    const body = new BodyStream(c);
    const seen = reader(body);
    body.push(Buffer.alloc(0));
    body.resume();
    body.push(Buffer.alloc(0));
    body.push(Buffer.from('a'));
    body.pause();
    body.push(Buffer.alloc(0));
    body.resume();
    body.push(Buffer.alloc(0));
    expect(seen).toEqual(['a']);
  });

  it('holds what comes before anyone reads (a body can arrive with its headers), then delivers it in order', () => {
    const c = controller();
    const body = new BodyStream(c);
    body.push(Buffer.from('a'));
    body.finish();
    const seen = reader(body);
    expect(seen).toEqual([]);
    body.resume();
    expect(seen).toEqual(['a', 'end']);
    // Under the high-water mark the worker socket was never paused, and complete it is not resumed.
    expect(c.calls).toEqual([]);
  });

  it('flows while read; a pause holds the next chunks, and the worker socket pauses once they reach the high-water mark', () => {
    const c = controller();
    const body = new BodyStream(c);
    const seen = reader(body);
    body.resume();
    body.push(Buffer.from('1'));
    body.pause();
    body.push(Buffer.from('2'));
    body.push(Buffer.alloc(HIGH_WATER_MARK - 2, '3'));
    expect(seen).toEqual(['1']);
    expect(c.calls).toEqual(['resume']);
    body.push(Buffer.from('4')); // HIGH_WATER_MARK bytes held
    expect(c.calls).toEqual(['resume', 'pause']);
    body.resume();
    // The held chunks went out merged (see the next test), the bytes in order.
    expect(seen).toEqual(['1', `2${'3'.repeat(HIGH_WATER_MARK - 2)}4`]);
    expect(c.calls).toEqual(['resume', 'pause', 'resume']);
    body.finish();
    expect(seen.at(-1)).toBe('end');
  });

  it('chunks held up to the high-water mark are merged into one buffer of their own: slices of big socket reads do not keep them alive', () => {
    const body = new BodyStream(controller());
    const got: Buffer[] = [];
    body.read({ data: (chunk) => got.push(chunk), end: () => {}, error: () => {} });
    // 100 events of 200 bytes, each a slice of its own 64 KiB read, as undici hands them on.
    const events = Array.from({ length: 100 }, (_, i) => Buffer.alloc(65_536, String(i % 10)).subarray(0, 200));
    for (const e of events.slice(0, 50)) body.push(e); // 10,000 bytes: under the mark, held as they are
    for (const e of events.slice(50)) body.push(e); // 20,000: merged when the mark was crossed
    body.resume();
    expect(Buffer.concat(got)).toEqual(Buffer.concat(events));
    const [merged, ...rest] = got;
    expect(merged!.buffer.byteLength).toBe(merged!.length);
    // Those pushed after the mark (the feeder had been told to pause) are held as they came.
    expect(merged!.length + rest.reduce((n, c) => n + c.length, 0)).toBe(20_000);
    expect(merged!.length).toBeGreaterThanOrEqual(HIGH_WATER_MARK);
  });

  it('halt() pauses the feeder at once, not at the high-water mark; resume() lets it go on; an ended body is not paused', () => {
    const c = controller();
    const body = new BodyStream(c);
    const seen = reader(body);
    body.resume();
    body.push(Buffer.from('1'));
    body.halt();
    expect(c.calls).toEqual(['resume', 'pause']);
    body.push(Buffer.from('2')); // what the feeder had under way is held
    expect(seen).toEqual(['1']);
    body.resume();
    expect(seen).toEqual(['1', '2']);
    expect(c.calls).toEqual(['resume', 'pause', 'resume']);
    body.finish();
    body.halt();
    expect(c.calls).toEqual(['resume', 'pause', 'resume']);
  });

  it('a reader that pauses inside its data handler stops the delivery of held chunks at once', () => {
    const body = new BodyStream(controller());
    const seen: string[] = [];
    body.read({
      data: (chunk) => {
        seen.push(chunk.toString());
        body.pause();
      },
      end: () => {},
      error: () => {},
    });
    body.push(Buffer.from('x'));
    body.push(Buffer.from('y'));
    body.resume();
    expect(seen).toEqual(['x']);
    body.resume();
    expect(seen).toEqual(['x', 'y']);
  });

  it('destroy before the end aborts the request and emits nothing more; after the end it aborts nothing', () => {
    const c = controller();
    const body = new BodyStream(c);
    const seen = reader(body);
    body.resume();
    body.push(Buffer.from('a'));
    body.destroy();
    body.push(Buffer.from('b'));
    body.finish();
    body.fail(new Error('late'));
    expect(seen).toEqual(['a']);
    expect(c.calls).toEqual(['resume', 'abort']);

    const done = controller();
    const whole = new BodyStream(done);
    reader(whole);
    whole.resume();
    whole.finish();
    whole.destroy();
    expect(done.calls).toEqual(['resume']);
  });

  it('a failure reaches the reader once, after the chunks held before it', () => {
    const body = new BodyStream(controller());
    const seen = reader(body);
    body.push(Buffer.from('held'));
    body.fail(new Error('socket reset'));
    body.fail(new Error('again'));
    body.push(Buffer.from('late'));
    expect(seen).toEqual([]);
    body.resume();
    expect(seen).toEqual(['held', 'error: socket reset']);
  });

  it("'end' goes out in the tick of finish() when flowing, 'close' on the next one, after end, error or destroy", async () => {
    const ended = new BodyStream(controller());
    const a = reader(ended);
    ended.resume();
    ended.push(Buffer.from('last'));
    ended.finish();
    expect(a).toEqual(['last', 'end']);
    await tick();
    expect(a).toEqual(['last', 'end', 'close']);

    const failed = new BodyStream(controller());
    const b = reader(failed);
    failed.fail(new Error('reset')); // nothing held: at once, paused or not
    expect(b).toEqual(['error: reset']);
    await tick();
    expect(b).toEqual(['error: reset', 'close: reset']);

    const dropped = new BodyStream(controller());
    const c = reader(dropped);
    dropped.destroy();
    dropped.destroy();
    await tick();
    expect(c).toEqual(['close']);
  });

  it("calls the close callback set before the body is over, on the next tick; a body without one (the worker's answer under the checked one) schedules nothing", async () => {
    const watched = new BodyStream(controller());
    const seen = reader(watched);
    const unwatched = new BodyStream(controller());
    unwatched.read({ data() {}, end() {}, error() {} });
    const nextTick = vi.spyOn(process, 'nextTick');
    try {
      unwatched.resume();
      unwatched.finish();
      expect(nextTick).not.toHaveBeenCalled();
      let late = false;
      unwatched.onClose(() => (late = true));
      watched.resume();
      watched.finish();
      expect(nextTick).toHaveBeenCalledTimes(1);
      expect(seen).toEqual(['end']);
      await tick();
      expect(seen).toEqual(['end', 'close']);
      expect(late).toBe(false);
    } finally {
      nextTick.mockRestore();
    }
  });

  it('reads as an async iterable, one chunk held at a time; leaving the loop early destroys it', async () => {
    const c = controller();
    const body = new BodyStream(c);
    body.push(Buffer.from('a'));
    body.push(Buffer.from('b'));
    const got: string[] = [];
    const reading = (async () => {
      for await (const chunk of body) got.push(chunk.toString());
    })();
    await tick();
    body.push(Buffer.from('c'));
    body.finish();
    await reading;
    expect(got).toEqual(['a', 'b', 'c']);

    const early = controller();
    const cut = new BodyStream(early);
    cut.push(Buffer.from('x'));
    cut.push(Buffer.from('y'));
    for await (const chunk of cut) if (chunk.toString() === 'x') break;
    expect(early.calls.at(-1)).toBe('abort');

    const failing = new BodyStream(controller());
    failing.push(Buffer.from('x'));
    failing.fail(new Error('reset'));
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const chunk of failing) seen.push(chunk.toString());
      })(),
    ).rejects.toThrow('reset');
    expect(seen).toEqual(['x']);
  });

  it('has one reader; resume() before read() is a bug, said at once', () => {
    const body = new BodyStream(controller());
    expect(() => body.resume()).toThrow(/resume\(\) before read\(\)/);
    reader(body);
    expect(() => reader(body)).toThrow(/one reader/);
  });

  it('discard() reads the rest to its end without aborting the request (its socket is reused)', async () => {
    const c = controller();
    const body = new BodyStream(c);
    let closed = false;
    body.onClose(() => (closed = true));
    body.push(Buffer.from('thrown away'));
    body.discard();
    body.push(Buffer.from('more'));
    body.finish();
    await tick();
    expect(closed).toBe(true);
    expect(c.calls).toEqual(['resume']);
  });
});
