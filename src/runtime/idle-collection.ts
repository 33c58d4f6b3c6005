import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Clock, TimerHandle } from '../core/clock.js';

/** What IdleCollection reads and calls; by default the process's own memory and V8's collection. */
export interface IdleCollectionOptions {
  clock: Clock;
  /** Requests running now, and requests started since the gateway began. */
  activity: () => { inFlight: number; started: number };
  /** The process's resident memory, garbage included, in bytes. */
  residentBytes?: () => number;
  /** Runs a full collection. */
  collect?: () => void;
  /** How long nothing may have run before the first collection, ms. */
  quietMs?: number;
  /** The least growth of the resident memory since the last quiet spell's collections that is worth them, bytes. */
  minGrowthBytes?: number;
  /** Told at the end of a quiet spell's collections: the resident memory before and after, and their time. */
  onCollect?: (e: { beforeBytes: number; afterBytes: number; ms: number }) => void;
}

/** How often the activity is read: cheap (two counters), and fine enough for a quiet of seconds. */
const CHECK_MS = 1000;
const QUIET_MS = 5000;
/** V8's window for the allocation rate that decides whether a collection shrinks the heap. */
const ROUND_GAP_MS = 5000;
const ROUNDS = 3;
/**
 * Below this much growth the collections return too little to be worth their pauses. Resident
 * memory, not the heap in use: the garbage of streamed answers is mostly Buffers, whose bytes
 * are outside V8's heap and go back only when their small wrappers are collected.
 */
const MIN_GROWTH_BYTES = 32 * 2 ** 20;

/**
 * Full garbage collections once the gateway has gone quiet after work.
 *
 * A burst of requests (a thousand streams, say) leaves garbage and a grown heap behind. V8
 * gives it back when allocation needs the room, or when its memory reducer's watchdog fires:
 * Node gives V8 no idle-time notifications, so that is about 100 s after the last mark-compact,
 * and an idle gateway holds the burst's memory for minutes. Collecting once nothing has run
 * for a few seconds gives it back to the OS within seconds, at a moment when no request waits
 * for the pauses. The JVM's G1 does the same with its periodic collection (JEP 346), for
 * servers whose load comes and goes.
 *
 * One collection is not enough. V8 shrinks its heap (the young generation's idle half, old
 * pages) only at a collection that finds allocation low over its 5 s window, and unmaps what
 * it shrank at the next one. So a quiet spell gets three collections 5 s apart: with 200
 * stalled gRPC streams just drained, the first freed nothing of the RSS, the second 70 MiB,
 * the third 60 more, and a fourth nothing (bench/results/stalled-streams.md).
 */
export class IdleCollection {
  readonly #o: Required<Omit<IdleCollectionOptions, 'onCollect'>> & Pick<IdleCollectionOptions, 'onCollect'>;
  #timer: TimerHandle | undefined;
  /** `started` at the last check: a change means a request came and maybe went between checks. */
  #seen = 0;
  #quietSince = 0;
  /** Work has run since the last quiet spell's collections (or the start). */
  #worked = false;
  /** The resident memory that the last quiet spell's collections left (or at the start). */
  #baseline = 0;
  /**
   * The current quiet spell's steps still to run (its collections, then reading what they
   * left), when the next is due, and the RSS before them and their time so far.
   */
  #roundsLeft = 0;
  #nextRoundAt = 0;
  #spell = { beforeBytes: 0, ms: 0 };
  #collections = 0;

  constructor(options: IdleCollectionOptions) {
    // V8's collection is fetched at the first collection, not at start-up: the context it comes
    // from (about 0.7 MiB) is then made only by a gateway that has a burst to give back.
    let gc: (() => void) | undefined;
    this.#o = {
      residentBytes: () => process.memoryUsage.rss(),
      quietMs: QUIET_MS,
      minGrowthBytes: MIN_GROWTH_BYTES,
      ...options,
      collect: options.collect ?? (() => (gc ??= fullCollection())()),
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
    this.#baseline = this.#o.residentBytes();
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
      // Traffic is back: V8's own collections take over, and the spell's are called off.
      this.#seen = started;
      this.#quietSince = now;
      this.#worked = true;
      this.#roundsLeft = 0;
      return;
    }
    if (this.#roundsLeft > 0) {
      if (now >= this.#nextRoundAt) this.#round(now);
      return;
    }
    if (!this.#worked || now - this.#quietSince < this.#o.quietMs) return;
    // One look per quiet spell: memory that has not grown enough now will not grow while quiet.
    this.#worked = false;
    const beforeBytes = this.#o.residentBytes();
    if (beforeBytes - this.#baseline < this.#o.minGrowthBytes) return;
    this.#spell = { beforeBytes, ms: 0 };
    // The collections, then a last step that reads what they left, once V8 has unmapped it.
    this.#roundsLeft = ROUNDS + 1;
    this.#round(now);
  }

  #round(now: number): void {
    this.#nextRoundAt = now + ROUND_GAP_MS;
    if (--this.#roundsLeft > 0) {
      const t0 = performance.now();
      this.#o.collect();
      this.#spell.ms += performance.now() - t0;
      this.#collections++;
      return;
    }
    this.#baseline = this.#o.residentBytes();
    this.#o.onCollect?.({ ...this.#spell, afterBytes: this.#baseline });
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
