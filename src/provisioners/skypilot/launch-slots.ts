/**
 * At most `max` launches run at once (option max_concurrent_launches); the rest wait in
 * FIFO order. A waiter whose signal aborts leaves the line without taking a slot.
 */
export class LaunchSlots {
  readonly max: number;
  #running = 0;
  readonly #waiting: Array<{ grant: () => void }> = [];

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new Error(`max concurrent launches must be ≥ 1, got ${max}`);
    this.max = max;
  }

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /** Resolves once a slot is held; rejects with the signal's reason if aborted first. */
  acquire(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.#running < this.max) {
      this.#running++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const entry = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          this.#running++;
          resolve();
        },
      };
      const onAbort = (): void => {
        const i = this.#waiting.indexOf(entry);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted while waiting for a launch slot'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(entry);
    });
  }

  release(): void {
    if (this.#running === 0) throw new Error('LaunchSlots.release without acquire');
    this.#running--;
    this.#waiting.shift()?.grant();
  }
}
