import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Clock, TimerHandle } from '../core/clock.js';

/**
 * One full garbage collection once the gateway has gone quiet after work.
 *
 * A burst of requests (a thousand streams, say) leaves old-generation garbage behind. V8
 * collects it when allocation needs the room, or when its memory reducer's watchdog fires:
 * Node gives V8 no idle-time notifications, so that is about 100 s after the last mark-compact,
 * and an idle gateway holds the burst's memory for minutes. Collecting once nothing has run
 * for a few seconds gives that memory back to the OS in milliseconds, at a moment when no
 * request waits for the pause. The JVM's G1 does the same with its periodic collection
 * (JEP 346), for servers whose load comes and goes.
 */
export interface IdleCollectionOptions {
  clock: Clock;
  /** Requests running now, and requests started since the gateway began. */
  activity: () => { inFlight: number; started: number };
  /** The heap in use, garbage included, in bytes. */
  heapUsed?: () => number;
  /** Runs a full collection. */
  collect?: () => void;
  /** How long nothing may have run before the collection, ms. */
  quietMs?: number;
  /** The least growth of the heap in use since the last collection that is worth one, bytes. */
  minGrowthBytes?: number;
  /** Told of each collection: the heap in use before and after, and how long it took. */
  onCollect?: (e: { beforeBytes: number; afterBytes: number; ms: number }) => void;
}

/** How often the activity is read: cheap (two counters), and fine enough for a quiet of seconds. */
const CHECK_MS = 1000;
const QUIET_MS = 5000;
/** Below this much new garbage a collection returns too little to be worth its pause. */
const MIN_GROWTH_BYTES = 16 * 2 ** 20;

export class IdleCollection {
  readonly #o: Required<Omit<IdleCollectionOptions, 'onCollect'>> & Pick<IdleCollectionOptions, 'onCollect'>;
  #timer: TimerHandle | undefined;
  /** `started` at the last check: a change means a request came and maybe went between checks. */
  #seen = 0;
  #quietSince = 0;
  /** Work has run since the last collection (or the start). */
  #worked = false;
  /** The heap in use that the last collection left (or at the start). */
  #baseline = 0;
  #collections = 0;

  constructor(options: IdleCollectionOptions) {
    this.#o = {
      heapUsed: () => getHeapStatistics().used_heap_size,
      quietMs: QUIET_MS,
      minGrowthBytes: MIN_GROWTH_BYTES,
      ...options,
      collect: options.collect ?? fullCollection(),
    };
  }

  /** Collections run so far. */
  get collections(): number {
    return this.#collections;
  }

  start(): void {
    if (this.#timer) return;
    this.#seen = this.#o.activity().started;
    this.#quietSince = this.#o.clock.now();
    this.#baseline = this.#o.heapUsed();
    this.#schedule();
  }

  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  #schedule(): void {
    this.#timer = this.#o.clock.setTimer(CHECK_MS, () => {
      this.#check();
      this.#schedule();
    });
  }

  #check(): void {
    const now = this.#o.clock.now();
    const { inFlight, started } = this.#o.activity();
    if (inFlight > 0 || started !== this.#seen) {
      this.#seen = started;
      this.#quietSince = now;
      this.#worked = true;
      return;
    }
    if (!this.#worked || now - this.#quietSince < this.#o.quietMs) return;
    // One look per quiet spell: a heap that has not grown enough now will not grow while quiet.
    this.#worked = false;
    const beforeBytes = this.#o.heapUsed();
    if (beforeBytes - this.#baseline < this.#o.minGrowthBytes) return;
    const t0 = performance.now();
    this.#o.collect();
    const ms = performance.now() - t0;
    this.#baseline = this.#o.heapUsed();
    this.#collections++;
    this.#o.onCollect?.({ beforeBytes, afterBytes: this.#baseline, ms });
  }
}

/**
 * V8's full collection as a function, without `--expose-gc` on the command line: the flag is
 * set only while a fresh context is made, so `gc` is that context's global and never the
 * gateway's own (a process started with `--expose-gc` already has one, and keeps it).
 */
export function fullCollection(): () => void {
  const existing = (globalThis as { gc?: unknown }).gc;
  if (typeof existing === 'function') return existing as () => void;
  setFlagsFromString('--expose-gc');
  try {
    return runInNewContext('gc') as () => void;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
