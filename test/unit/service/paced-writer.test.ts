import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { PacedWriter } from '../../../src/service/paced-writer.js';

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
