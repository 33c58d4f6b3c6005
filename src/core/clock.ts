/**
 * Time for everything in core. Nothing in core reads Date.now() or calls setTimeout
 * directly: it takes a Clock, so tests and the simulation run on virtual time.
 */
import { IndexedHeap, type HeapItem } from './heap.js';

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds; only differences matter. */
  now(): number;
  /** Calls fn once after ms milliseconds unless cancelled. */
  setTimer(ms: number, fn: () => void): TimerHandle;
}

/** A timer of a VirtualClock, and its own handle: one object per timer (the simulation sets millions). */
class Pending implements HeapItem, TimerHandle {
  heapPos = -1;
  constructor(
    readonly at: number,
    readonly seq: number,
    readonly fn: () => void,
    readonly heap: IndexedHeap<Pending>,
  ) {}

  cancel(): void {
    this.heap.remove(this);
  }
}

/** Timers fire by time, ties in the order they were set. */
const firesFirst = (a: Pending, b: Pending): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq);

/**
 * A clock that only moves when told. Timers fire in time order (ties in the order they
 * were set) while `advance` or `runUntil` moves time forward.
 */
export class VirtualClock implements Clock {
  #now: number;
  #seq = 0;
  // A binary heap keyed by (at, seq): O(log n) per timer and per cancel, so a one-hour trace simulates fast.
  readonly #timers = new IndexedHeap<Pending>(firesFirst);

  constructor(startMs = 0) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const p = new Pending(this.#now + Math.max(0, ms), this.#seq++, fn, this.#timers);
    this.#timers.push(p);
    return p;
  }

  /** Timers not yet fired or cancelled. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** When the next pending timer fires, or undefined when none is pending. */
  nextTimerAt(): number | undefined {
    return this.#timers.peek()?.at;
  }

  /** Moves time forward by ms, firing every timer due on the way (and those they set). */
  advance(ms: number): void {
    this.runUntil(this.#now + ms);
  }

  /** Moves time to `until`, firing due timers in order. */
  runUntil(until: number): void {
    for (let top = this.#timers.peek(); top && top.at <= until; top = this.#timers.peek()) this.#fire(top);
    this.#now = Math.max(this.#now, until);
  }

  /** Fires the next pending timer, moving time to it; false when none is left. */
  step(): boolean {
    const top = this.#timers.peek();
    if (!top) return false;
    this.#fire(top);
    return true;
  }

  #fire(p: Pending): void {
    this.#timers.remove(p);
    this.#now = Math.max(this.#now, p.at);
    p.fn();
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
