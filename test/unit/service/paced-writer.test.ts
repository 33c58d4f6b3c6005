import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/core/clock.js';
import { PacedWriter } from '../../../src/service/paced-writer.js';
import { SendTimeout } from '../../../src/service/send-timeout.js';

/** A grpc-js call as PacedWriter sees it: write() says full at 16 held, 'drain' once the client took them all. */
class Call extends EventEmitter {
  held = 0;
  #needDrain = false;
  write(): boolean {
    this.held++;
    if (this.held >= 16) this.#needDrain = true;
    return this.held < 16;
  }
  readAll(): void {
    this.held = 0;
    if (this.#needDrain) {
      this.#needDrain = false;
      this.emit('drain');
    }
  }
}

describe('PacedWriter', () => {
  it.each([
    // messages written: whether writable() says wait
    [15, false],
    [16, true],
  ])('%i messages held: waits %s', (written, waits) => {
    const call = new Call();
    const out = new PacedWriter(call, new AbortController().signal);
    for (let i = 0; i < written; i++) out.write(i);
    expect(out.writable() !== undefined).toBe(waits);
  });

  it("a wait ends at the call's drain, and the next one starts from an empty call", async () => {
    const call = new Call();
    const out = new PacedWriter(call, new AbortController().signal);
    for (let i = 0; i < 16; i++) out.write(i);
    const wait = out.writable()!;
    call.readAll();
    await wait;
    expect(out.writable()).toBeUndefined();
    for (let i = 0; i < 15; i++) out.write(i);
    expect(out.writable()).toBeUndefined();
    out.write(15);
    expect(out.writable()).toBeInstanceOf(Promise);
  });
});

describe('PacedWriter with client_send_timeout', () => {
  const full = (timeoutMs: number) => {
    const clock = new VirtualClock();
    const call = new Call();
    let cut = 0;
    const out = new PacedWriter(call, new AbortController().signal, new SendTimeout(clock, timeoutMs, () => cut++));
    for (let i = 0; i < 16; i++) out.write(i);
    return { clock, call, out, cuts: () => cut };
  };

  it('a client that takes nothing for the timeout: the wait fails with client_timeout naming the option, and is counted', async () => {
    const { clock, call, out, cuts } = full(1000);
    const wait = out.writable()!;
    const failed = wait.then(
      () => undefined,
      (err: unknown) => err,
    );
    clock.advance(999);
    expect(cuts()).toBe(0);
    clock.advance(1);
    expect(await failed).toMatchObject({
      code: 'client_timeout',
      message: expect.stringContaining('client_send_timeout'),
    });
    expect(cuts()).toBe(1);
    // Nothing is left listening on the call.
    expect(call.listenerCount('drain')).toBe(0);
  });

  it('a client that takes its answer within the timeout: the wait ends at the drain, and its timer with it', async () => {
    const { clock, call, out, cuts } = full(1000);
    const wait = out.writable()!;
    clock.advance(900);
    call.readAll();
    await wait;
    clock.advance(10_000);
    expect(cuts()).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('0 means no limit: a wait outlasts any time', () => {
    const { clock, out, cuts } = full(0);
    let settled = false;
    out.writable()!.then(
      () => (settled = true),
      () => (settled = true),
    );
    clock.advance(3_600_000);
    expect(cuts()).toBe(0);
    expect(settled).toBe(false);
    expect(clock.pendingTimers).toBe(0);
  });
});
