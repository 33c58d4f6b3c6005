/**
 * Time for everything in core. Nothing in core reads Date.now() or calls setTimeout
 * directly: it takes a Clock, so tests and the simulation run on virtual time.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds; only differences matter. */
  now(): number;
  /** Calls fn once after ms milliseconds unless cancelled. */
  setTimer(ms: number, fn: () => void): TimerHandle;
}

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that only moves when told. Timers fire in time order (ties in the order they
 * were set) while `advance` or `runUntil` moves time forward.
 */
export class VirtualClock implements Clock {
  #now: number;
  #seq = 0;
  // A binary heap keyed by (at, seq): O(log n) per timer, so a one-hour trace simulates fast.
  readonly #heap: Pending[] = [];

  constructor(startMs = 0) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const p: Pending = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    this.#push(p);
    return {
      cancel: () => {
        p.cancelled = true;
      },
    };
  }

  /** Timers not yet fired or cancelled. */
  get pendingTimers(): number {
    return this.#heap.filter((p) => !p.cancelled).length;
  }

  /** When the next pending timer fires, or undefined when none is pending. */
  nextTimerAt(): number | undefined {
    for (;;) {
      const top = this.#heap[0];
      if (!top) return undefined;
      if (!top.cancelled) return top.at;
      this.#pop();
    }
  }

  /** Moves time forward by ms, firing every timer due on the way (and those they set). */
  advance(ms: number): void {
    this.runUntil(this.#now + ms);
  }

  /** Moves time to `until`, firing due timers in order. */
  runUntil(until: number): void {
    for (;;) {
      const top = this.#heap[0];
      if (!top || top.at > until) break;
      this.#pop();
      if (top.cancelled) continue;
      this.#now = Math.max(this.#now, top.at);
      top.fn();
    }
    this.#now = Math.max(this.#now, until);
  }

  /** Fires the next pending timer, moving time to it; false when none is left. */
  step(): boolean {
    for (;;) {
      const top = this.#heap[0];
      if (!top) return false;
      this.#pop();
      if (top.cancelled) continue;
      this.#now = Math.max(this.#now, top.at);
      top.fn();
      return true;
    }
  }

  #less(a: Pending, b: Pending): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  #push(p: Pending): void {
    const h = this.#heap;
    h.push(p);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.#less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.#less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}

/** A seeded random source (mulberry32) so tie-breaks and simulations are reproducible. */
export type Random = () => number;

export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
