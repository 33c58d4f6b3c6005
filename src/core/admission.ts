import type { Clock, Random, TimerHandle } from './clock.js';
import type { CancelSignal } from './cancellation.js';
import { GatewayError } from './errors.js';
import { LinkedList, type Linked } from './linked-list.js';
import { load, type WorkerPool } from './pool.js';
import type { Worker } from './types.js';
import type { BalancerPolicy, PickContext } from './balancer/types.js';
import { wireBalancer } from './balancer/wire.js';

/** A slot on one worker, held while a request runs. `release` is idempotent. */
export interface Lease {
  readonly worker: Worker;
  /** How long the request waited in the gateway queue for this slot (0 when one was free). */
  readonly waitedMs: number;
  /**
   * The answer's first byte came back: the worker has prefilled the prompt, and its bytes leave
   * the worker's prefill queue. Idempotent; `release` does it too, for a request that ends
   * (fails, is retried, is cancelled) before its first byte.
   */
  prefilled(): void;
  /**
   * A streamed answer's first token came back: `prefilled`, with the prefill's time measuring the
   * worker's pace (src/core/prefill-queue.ts), and the time since the slot was taken goes into the
   * history (how long a prompt's prefill keeps a worker busy). Idempotent.
   */
  firstToken(): void;
  release(): void;
}

export interface AdmissionOptions {
  readonly pool: WorkerPool;
  readonly balancer: BalancerPolicy;
  readonly clock: Clock;
  /**
   * Told the queue length (in flight + waiting here) on every change, with the clock's time of
   * the change: the load tracker, or the replicas' sum.
   */
  readonly tracker: { set(queueLength: number, now: number): void };
  /**
   * Also told every change, with the requests waiting apart, how long each request that waited
   * did, and each streamed answer's time to its first token (the autoscaler's short-bucket history).
   */
  readonly history?: {
    record(queueLength: number, waiting: number, now: number): void;
    waited(ms: number, now: number): void;
    /** A request turned away at a full wait queue. */
    refused(now: number): void;
    firstToken(ms: number, now: number): void;
  };
  readonly random: Random;
  /** Requests that may wait for a slot; one more gets 'queue_full' (429). 0 means none wait. */
  readonly maxQueueLength: number;
  /**
   * Called when a request arrives and no worker is ready, starting, provisioning or
   * not_ready: the scale-from-zero hook (the fleet launches a worker at once). It is
   * called for each such arrival; the fleet ignores calls while a launch is under way.
   */
  readonly onDemand?: () => void;
  /** Retry-After sent with 'queue_timeout'; defaults to the error catalogue's. */
  readonly retryAfterSeconds?: number;
  /**
   * How long a request that arrives while no worker is ready may wait, instead of its own
   * timeout (`cold_start_timeout`): a launch from zero takes minutes, a queue wait should not.
   * When a worker becomes ready (`wake()`), such a waiter's deadline shrinks to
   * min(its cold-start deadline, now + its own timeout). Unset: every request uses its own.
   */
  readonly coldStartTimeoutMs?: number;
  /**
   * Called when a request starts waiting although workers are ready, because every one of them
   * is at its capacity (`worker_capacity`): told how many wait. The caller rate-limits its notice.
   */
  readonly onHeldAtCapacity?: (waiting: number) => void;
}

export interface AcquireOptions {
  readonly ctx: Omit<PickContext, 'random'>;
  /** How long the request may wait for a slot; <= 0 means it may not wait, Infinity forever. */
  readonly timeoutMs: number;
  readonly signal?: CancelSignal;
  /** Lower goes first among those waiting (vLLM's sense of `priority`); default 0. */
  readonly priority?: number;
}

interface Waiter extends Linked<Waiter> {
  readonly ctx: Omit<PickContext, 'random'>;
  readonly priority: number;
  readonly resolve: (lease: Lease) => void;
  readonly reject: (err: Error) => void;
  /** Clock ms when it started waiting (for the lease's waitedMs). */
  readonly since: number;
  /** The request's own timeout (queue_timeout). */
  readonly timeoutMs: number;
  /** Waiting under the cold-start timeout (no worker was ready when it arrived). */
  cold: boolean;
  /** Clock ms when its timer fires (Infinity: never). */
  deadline: number;
  timer: TimerHandle | undefined;
  unlisten: (() => void) | undefined;
}

/**
 * The candidates for a request that already failed on the workers in `exclude`: the others,
 * as long as some other worker serves at all (then the request waits for one of them to have
 * room, rather than going back to the one that failed). Only when every serving worker has
 * been tried do the excluded ones count again: with one worker, a retry goes back to it.
 *
 *   serving w1 w2, exclude {w1}, w2 full → [] (wait for w2)
 *   serving w1,    exclude {w1}          → [w1]
 */
export function eligible(pool: WorkerPool, exclude: ReadonlySet<string> | undefined): Worker[] {
  const candidates = pool.candidates();
  if (!exclude || exclude.size === 0) return candidates;
  if (!pool.serving().some((w) => !exclude.has(w.name))) return candidates;
  return candidates.filter((w) => !exclude.has(w.name));
}

/** A worker that takes the requests bound to it: one that serves. */
function takesBound(w: Worker): boolean {
  return w.state === 'ready' && !w.ejected;
}

/** The worker with the lowest load/capacity in `list`, ties uniformly at random (one pass, reservoir sampling). */
function leastLoadedOf(list: readonly Worker[], random: Random): Worker | undefined {
  let best: Worker | undefined;
  let ties = 0;
  for (const w of list) {
    // Compare load/capacity cross-multiplied, so 1/3 and 2/6 tie exactly.
    const cmp = best === undefined ? -1 : load(w) * best.capacity - load(best) * w.capacity;
    if (cmp < 0) {
      best = w;
      ties = 1;
    } else if (cmp === 0 && random() * ++ties < 1) {
      best = w;
    }
  }
  return best;
}

/** Worker states that will (or may again) take traffic without a new launch. */
const LIVE_STATES = ['ready', 'starting', 'provisioning', 'not_ready'] as const;

/** The lease's `prefilled` when its pick left the worker nothing to prefill: one function for all of them, none made per request. */
const NOTHING_TO_PREFILL = (): void => {};

/**
 * The bounded gateway queue between requests and worker slots.
 *
 * A request takes a slot at once when one is free and nobody is waiting before it;
 * otherwise it waits, in order of priority (lower first) and, within one priority, of
 * arrival. Slots are handed to waiters in that order whenever a lease is released or `wake()`
 * is called (the fleet calls it when a worker becomes ready). A request that finds the queue
 * full takes the place of the last waiter if that one is less urgent (a higher number), which
 * is then refused as the request would have been. The queue length reported to the tracker is in
 * flight + waiting, on every change.
 */
export class Admission {
  readonly #pool: WorkerPool;
  readonly #balancer: BalancerPolicy;
  readonly #clock: Clock;
  readonly #tracker: AdmissionOptions['tracker'];
  readonly #history: AdmissionOptions['history'];
  readonly #maxQueueLength: number;
  readonly #onDemand: (() => void) | undefined;
  readonly #retryAfterSeconds: number | undefined;
  readonly #coldStartTimeoutMs: number | undefined;
  readonly #onHeldAtCapacity: ((waiting: number) => void) | undefined;
  // FIFO, and a timed-out waiter leaves from the middle in O(1).
  readonly #waiters = new LinkedList<Waiter>();
  /** Reused for every pick, so dispatching a request allocates no context object. */
  readonly #pickCtx: {
    sessionKey: string | undefined;
    promptText: string | undefined;
    random: Random;
    prefill: number | undefined;
  };
  /** What the last pick left the chosen worker to prefill (PickContext.prefill), for its lease. */
  #pickPrefill = 0;
  #closedWith: Error | undefined;

  constructor(opts: AdmissionOptions) {
    this.#pool = opts.pool;
    this.#balancer = opts.balancer;
    this.#clock = opts.clock;
    this.#tracker = opts.tracker;
    this.#history = opts.history;
    this.#maxQueueLength = opts.maxQueueLength;
    this.#onDemand = opts.onDemand;
    this.#retryAfterSeconds = opts.retryAfterSeconds;
    this.#coldStartTimeoutMs = opts.coldStartTimeoutMs;
    this.#onHeldAtCapacity = opts.onHeldAtCapacity;
    this.#pickCtx = { sessionKey: undefined, promptText: undefined, random: opts.random, prefill: undefined };
    wireBalancer(opts.pool, opts.balancer);
  }

  /** Whether the balancer reads a request's prompt text (PickContext.promptText). */
  get readsPrompt(): boolean {
    return this.#balancer.readsPrompt === true;
  }

  /** Requests waiting for a slot. */
  get waiting(): number {
    return this.#waiters.size;
  }

  /**
   * Requests wait because every serving worker is at its capacity (not because none serves):
   * more workers, or a higher `worker_capacity`, would let them through.
   */
  get heldAtCapacity(): boolean {
    const loads = this.#pool.loads;
    return this.#waiters.size > 0 && loads.readyCount > 0 && loads.size === 0;
  }

  /**
   * Whether a request bound to worker `name` (PickContext.home) goes there: it serves (ready,
   * not ejected). Otherwise such a request is balanced as any other.
   */
  servesBound(name: string): boolean {
    const w = this.#pool.get(name);
    return w !== undefined && takesBound(w);
  }

  /**
   * A slot at once, when one is free and nobody waits before this request; else undefined, and
   * acquire() decides (it waits, or says why not). What acquire() would do at once, without
   * the promise: a request that gets its slot goes on in the same turn.
   */
  tryAcquire(opts: AcquireOptions): Lease | undefined {
    if (this.#closedWith || opts.signal?.aborted || this.#waiters.size > 0) return undefined;
    const worker = this.#pick(opts.ctx);
    return worker ? this.#lease(worker, 0) : undefined;
  }

  acquire(opts: AcquireOptions): Promise<Lease> {
    if (this.#closedWith) return Promise.reject(this.#closedWith);
    const { signal } = opts;
    if (signal?.aborted) return Promise.reject(this.#clientClosed(signal));

    if (this.#onDemand && !this.#pool.anyIn(LIVE_STATES)) this.#onDemand();

    if (this.#waiters.size === 0) {
      const worker = this.#pick(opts.ctx);
      if (worker) return Promise.resolve(this.#lease(worker, 0));
    }
    const priority = opts.priority ?? 0;
    if (this.#waiters.size >= this.#maxQueueLength) {
      const last = this.#waiters.last;
      // Nobody gives up a place to a request that may not wait for it.
      if (!last || last.priority <= priority || !(opts.timeoutMs > 0)) {
        this.#history?.refused(this.#clock.now());
        return Promise.reject(this.#queueFull());
      }
      this.#leave(last, this.#queueFull());
    }
    if (!(opts.timeoutMs > 0)) return Promise.reject(this.#timeout(opts.timeoutMs, false));
    const cold = this.#coldStartTimeoutMs !== undefined && this.#pool.inState('ready').length === 0;

    return new Promise<Lease>((resolve, reject) => {
      const waiter: Waiter = {
        ctx: opts.ctx,
        priority,
        resolve,
        reject,
        since: this.#clock.now(),
        timeoutMs: opts.timeoutMs,
        cold,
        deadline: Infinity,
        timer: undefined,
        unlisten: undefined,
        prev: undefined,
        next: undefined,
      };
      this.#arm(waiter, cold ? this.#coldStartTimeoutMs! : opts.timeoutMs);
      if (signal) {
        const onAbort = (): void => this.#leave(waiter, this.#clientClosed(signal));
        signal.addEventListener('abort', onAbort, { once: true });
        waiter.unlisten = () => signal.removeEventListener('abort', onAbort);
      }
      this.#enqueue(waiter);
      this.#report();
      // A slot may be free while others wait (e.g. a worker became ready without wake()).
      this.#dispatch();
      if (this.#onHeldAtCapacity && this.heldAtCapacity) this.#onHeldAtCapacity(this.#waiters.size);
    });
  }

  /**
   * Hands free slots to waiters; call when a worker becomes ready or gains room. Once a
   * worker is ready, requests waiting under the cold-start timeout go back to their own.
   */
  wake(): void {
    this.#dispatch();
    if (this.#coldStartTimeoutMs === undefined || this.#pool.inState('ready').length === 0) return;
    const now = this.#clock.now();
    for (const w of this.#waiters) {
      if (!w.cold) continue;
      w.cold = false;
      // E.g. cold start 600 s, queue timeout 60 s, ready after 200 s: it may wait until 260 s.
      if (now + w.timeoutMs < w.deadline) this.#arm(w, w.timeoutMs);
    }
  }

  /** After the last waiter of its priority or a more urgent one: at the end unless priorities differ. */
  #enqueue(waiter: Waiter): void {
    let after = this.#waiters.last;
    while (after && after.priority > waiter.priority) after = after.prev;
    this.#waiters.insertAfter(after, waiter);
  }

  #queueFull(): GatewayError {
    return new GatewayError('queue_full', {
      message: `The gateway queue is full (${this.#maxQueueLength} waiting); retry later.`,
    });
  }

  /** (Re)starts a waiter's timer: it leaves with 'queue_timeout' after `ms`. */
  #arm(waiter: Waiter, ms: number): void {
    waiter.timer?.cancel();
    waiter.timer = undefined;
    waiter.deadline = this.#clock.now() + ms;
    if (!Number.isFinite(ms)) return;
    waiter.timer = this.#clock.setTimer(ms, () => {
      waiter.timer = undefined;
      this.#leave(waiter, this.#timeout(ms, waiter.cold));
    });
  }

  /** Rejects every waiter and every later acquire with `err` (shutdown). */
  close(err: Error = new GatewayError('shutting_down')): void {
    this.#closedWith = err;
    const waiters = [...this.#waiters];
    for (const w of waiters) {
      this.#waiters.delete(w);
      this.#forget(w);
      w.reject(err);
    }
    this.#report();
  }

  #pick(ctx: Omit<PickContext, 'random'>): Worker | undefined {
    const candidates = this.#pool.loads;
    if (candidates.size === 0) return undefined;
    const pc = this.#pickCtx;
    // A retry (rare) goes to the least-loaded serving worker it has not failed on, past the policy,
    // which has not seen its prompt there: all of it is left to prefill.
    if (ctx.exclude && ctx.exclude.size > 0) {
      this.#pickPrefill = ctx.promptText?.length ?? 0;
      return leastLoadedOf(eligible(this.#pool, ctx.exclude), pc.random);
    }
    const home = ctx.home === undefined ? undefined : this.#pool.get(ctx.home);
    if (home && takesBound(home)) {
      // What it builds on is the home's already; what it adds is new there.
      this.#pickPrefill = ctx.promptText?.length ?? 0;
      return candidates.has(home) ? home : undefined;
    }
    pc.sessionKey = ctx.sessionKey;
    pc.promptText = ctx.promptText;
    pc.prefill = undefined;
    const worker = this.#balancer.pick(candidates, pc);
    pc.promptText = undefined; // do not keep a large prompt alive until the next pick
    this.#pickPrefill = pc.prefill ?? 0;
    // A policy returning a full or not-ready worker is a bug; never exceed a worker's capacity for it.
    return worker && candidates.has(worker) ? worker : candidates.leastLoaded(pc.random);
  }

  /** A slot on `worker`, carrying the prefill the pick just before it estimated. */
  #lease(worker: Worker, waitedMs: number): Lease {
    const prefill = this.#pickPrefill;
    this.#pickPrefill = 0;
    this.#pool.acquire(worker);
    const ticket = prefill > 0 ? worker.prefill.add(prefill) : undefined;
    const leasedAt = this.#report();
    let released = false;
    const prefilled = ticket ? () => worker.prefill.done(ticket, false) : NOTHING_TO_PREFILL;
    let firstTokenSeen = false;
    return {
      worker,
      waitedMs,
      prefilled,
      firstToken: () => {
        // A streamed first token times the prefill it ends.
        if (ticket) worker.prefill.done(ticket, true);
        if (firstTokenSeen || released) return;
        firstTokenSeen = true;
        const now = this.#clock.now();
        this.#history?.firstToken(now - leasedAt, now);
      },
      release: () => {
        if (released) return;
        released = true;
        prefilled();
        this.#pool.release(worker);
        this.#report();
        this.#dispatch();
      },
    };
  }

  #dispatch(): void {
    for (let waiter = this.#waiters.first; waiter;) {
      const worker = this.#pick(waiter.ctx);
      if (!worker) {
        // A request bound to its home worker waits for a slot there; those after it may go on.
        if (waiter.ctx.home === undefined || this.#pool.loads.size === 0) return;
        waiter = waiter.next;
        continue;
      }
      const next = waiter.next;
      this.#waiters.delete(waiter);
      this.#forget(waiter);
      const now = this.#clock.now();
      this.#history?.waited(now - waiter.since, now);
      waiter.resolve(this.#lease(worker, now - waiter.since));
      waiter = next;
    }
  }

  #leave(waiter: Waiter, err: GatewayError): void {
    if (!this.#waiters.delete(waiter)) return;
    this.#forget(waiter);
    const now = this.#report();
    this.#history?.waited(now - waiter.since, now);
    waiter.reject(err);
  }

  #forget(waiter: Waiter): void {
    waiter.timer?.cancel();
    waiter.timer = undefined;
    waiter.unlisten?.();
    waiter.unlisten = undefined;
  }

  /** Tells the tracker and the history the queue now; returns the clock's time it read. */
  #report(): number {
    const waiting = this.#waiters.size;
    const queue = this.#pool.inFlight() + waiting;
    // One reading of the clock for both: each change is reported twice per request.
    const now = this.#clock.now();
    this.#tracker.set(queue, now);
    this.#history?.record(queue, waiting, now);
    return now;
  }

  #timeout(timeoutMs: number, cold: boolean): GatewayError {
    const seconds = Math.max(0, timeoutMs) / 1000;
    return new GatewayError('queue_timeout', {
      message: cold
        ? `No worker became ready within ${seconds} s (cold start, cold_start_timeout); retry later.`
        : `No worker slot became free within ${seconds} s; retry later.`,
      ...(this.#retryAfterSeconds === undefined ? {} : { retryAfterSeconds: this.#retryAfterSeconds }),
    });
  }

  #clientClosed(signal: CancelSignal): GatewayError {
    return new GatewayError('client_closed', { cause: signal.reason });
  }
}
