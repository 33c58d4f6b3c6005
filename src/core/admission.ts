import type { Clock, Random, TimerHandle } from './clock.js';
import { GatewayError } from './errors.js';
import type { LoadTracker } from './load-tracker.js';
import type { Worker, WorkerPool } from './pool.js';
import type { BalancerPolicy, PickContext } from './balancer/types.js';
import { wireBalancer } from './balancer/wire.js';

/** A slot on one worker, held while a request runs. `release` is idempotent. */
export interface Lease {
  readonly worker: Worker;
  release(): void;
}

export interface AdmissionOptions {
  readonly pool: WorkerPool;
  readonly balancer: BalancerPolicy;
  readonly clock: Clock;
  readonly tracker: LoadTracker;
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
}

export interface AcquireOptions {
  readonly ctx: Omit<PickContext, 'random'>;
  /** How long the request may wait for a slot; <= 0 means it may not wait, Infinity forever. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

interface Waiter {
  readonly ctx: Omit<PickContext, 'random'>;
  readonly resolve: (lease: Lease) => void;
  readonly reject: (err: Error) => void;
  timer: TimerHandle | undefined;
  unlisten: (() => void) | undefined;
}

/** Worker states that will (or may again) take traffic without a new launch. */
const LIVE_STATES = ['ready', 'starting', 'provisioning', 'not_ready'] as const;

/**
 * The bounded gateway queue between requests and worker slots.
 *
 * A request takes a slot at once when one is free and nobody is waiting before it;
 * otherwise it waits in FIFO order. Slots are handed to waiters, oldest first, whenever
 * a lease is released or `wake()` is called (the fleet calls it when a worker becomes
 * ready). The queue length reported to the tracker is in flight + waiting, on every change.
 */
export class Admission {
  readonly #pool: WorkerPool;
  readonly #balancer: BalancerPolicy;
  readonly #clock: Clock;
  readonly #tracker: LoadTracker;
  readonly #maxQueueLength: number;
  readonly #onDemand: (() => void) | undefined;
  readonly #retryAfterSeconds: number | undefined;
  // A Set keeps insertion order (FIFO) and removes a timed-out waiter from the middle in O(1).
  readonly #waiters = new Set<Waiter>();
  /** Reused for every pick, so dispatching a request allocates no context object. */
  readonly #pickCtx: { sessionKey: string | undefined; promptText: string | undefined; random: Random };
  #closedWith: Error | undefined;

  constructor(opts: AdmissionOptions) {
    this.#pool = opts.pool;
    this.#balancer = opts.balancer;
    this.#clock = opts.clock;
    this.#tracker = opts.tracker;
    this.#maxQueueLength = opts.maxQueueLength;
    this.#onDemand = opts.onDemand;
    this.#retryAfterSeconds = opts.retryAfterSeconds;
    this.#pickCtx = { sessionKey: undefined, promptText: undefined, random: opts.random };
    wireBalancer(opts.pool, opts.balancer);
  }

  /** Requests waiting for a slot. */
  get waiting(): number {
    return this.#waiters.size;
  }

  acquire(opts: AcquireOptions): Promise<Lease> {
    if (this.#closedWith) return Promise.reject(this.#closedWith);
    const { signal } = opts;
    if (signal?.aborted) return Promise.reject(this.#clientClosed(signal));

    if (this.#onDemand && this.#pool.inState(...LIVE_STATES).length === 0) this.#onDemand();

    if (this.#waiters.size === 0) {
      const worker = this.#pick(opts.ctx);
      if (worker) return Promise.resolve(this.#lease(worker));
    }
    if (this.#waiters.size >= this.#maxQueueLength) {
      return Promise.reject(
        new GatewayError('queue_full', {
          message: `The gateway queue is full (${this.#maxQueueLength} waiting); retry later.`,
        }),
      );
    }
    if (!(opts.timeoutMs > 0)) return Promise.reject(this.#timeout(opts.timeoutMs));

    return new Promise<Lease>((resolve, reject) => {
      const waiter: Waiter = { ctx: opts.ctx, resolve, reject, timer: undefined, unlisten: undefined };
      if (Number.isFinite(opts.timeoutMs)) {
        waiter.timer = this.#clock.setTimer(opts.timeoutMs, () => {
          waiter.timer = undefined;
          this.#leave(waiter, this.#timeout(opts.timeoutMs));
        });
      }
      if (signal) {
        const onAbort = (): void => this.#leave(waiter, this.#clientClosed(signal));
        signal.addEventListener('abort', onAbort, { once: true });
        waiter.unlisten = () => signal.removeEventListener('abort', onAbort);
      }
      this.#waiters.add(waiter);
      this.#report();
      // A slot may be free while others wait (e.g. a worker became ready without wake()).
      this.#dispatch();
    });
  }

  /** Hands free slots to waiters; call when a worker becomes ready or gains room. */
  wake(): void {
    this.#dispatch();
  }

  /** Rejects every waiter and every later acquire with `err` (shutdown). */
  close(err: Error = new GatewayError('shutting_down')): void {
    this.#closedWith = err;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) {
      this.#forget(w);
      w.reject(err);
    }
    this.#report();
  }

  #pick(ctx: Omit<PickContext, 'random'>): Worker | undefined {
    const candidates = this.#pool.loads;
    if (candidates.size === 0) return undefined;
    const pc = this.#pickCtx;
    pc.sessionKey = ctx.sessionKey;
    pc.promptText = ctx.promptText;
    const worker = this.#balancer.pick(candidates, pc);
    pc.promptText = undefined; // do not keep a large prompt alive until the next pick
    // A policy returning a full or not-ready worker is a bug; never exceed a worker's capacity for it.
    return worker && candidates.has(worker) ? worker : candidates.leastLoaded(pc.random);
  }

  #lease(worker: Worker): Lease {
    this.#pool.acquire(worker);
    this.#report();
    let released = false;
    return {
      worker,
      release: () => {
        if (released) return;
        released = true;
        this.#pool.release(worker);
        this.#report();
        this.#dispatch();
      },
    };
  }

  #dispatch(): void {
    for (const waiter of this.#waiters) {
      const worker = this.#pick(waiter.ctx);
      if (!worker) return;
      this.#waiters.delete(waiter);
      this.#forget(waiter);
      waiter.resolve(this.#lease(worker));
    }
  }

  #leave(waiter: Waiter, err: GatewayError): void {
    if (!this.#waiters.delete(waiter)) return;
    this.#forget(waiter);
    this.#report();
    waiter.reject(err);
  }

  #forget(waiter: Waiter): void {
    waiter.timer?.cancel();
    waiter.timer = undefined;
    waiter.unlisten?.();
    waiter.unlisten = undefined;
  }

  #report(): void {
    this.#tracker.set(this.#pool.inFlight() + this.#waiters.size);
  }

  #timeout(timeoutMs: number): GatewayError {
    return new GatewayError('queue_timeout', {
      message: `No worker slot became free within ${Math.max(0, timeoutMs) / 1000} s; retry later.`,
      ...(this.#retryAfterSeconds === undefined ? {} : { retryAfterSeconds: this.#retryAfterSeconds }),
    });
  }

  #clientClosed(signal: AbortSignal): GatewayError {
    return new GatewayError('client_closed', { cause: signal.reason });
  }
}
