import type { Clock } from './clock.js';
import { LoadIndex, load, type Candidates } from './load-index.js';
import { PrefillQueue } from './prefill-queue.js';
import type { Worker, WorkerState, WorkerStateChange } from './types.js';

export { load } from './load-index.js';

/**
 * Allowed state changes. Only `ready` workers take new requests.
 *
 *   provisioning → starting → ready ⇄ not_ready → draining → terminating → gone
 *   any live state → failed | terminating; failed → terminating
 */
const TRANSITIONS: Readonly<Record<WorkerState, readonly WorkerState[]>> = {
  provisioning: ['starting', 'failed', 'terminating'],
  starting: ['ready', 'not_ready', 'failed', 'draining', 'terminating'],
  ready: ['not_ready', 'draining', 'failed', 'terminating'],
  not_ready: ['ready', 'draining', 'failed', 'terminating'],
  draining: ['terminating', 'failed'],
  terminating: ['gone', 'failed'],
  failed: ['terminating', 'gone'],
  gone: [],
};

/** Whether `s` names a worker state (a value read from outside, e.g. etcd). */
export function isWorkerState(s: unknown): s is WorkerState {
  return typeof s === 'string' && Object.hasOwn(TRANSITIONS, s);
}

export function canTransition(from: WorkerState, to: WorkerState): boolean {
  return TRANSITIONS[from].includes(to);
}

/**
 * The shortest chain of allowed moves from `from` to `to` (`to` last; empty when equal), or
 * undefined when `to` cannot be reached (e.g. draining → ready). A follower replays the leader's
 * view with it, which may have skipped states in between: starting → draining becomes
 * [draining], provisioning → ready becomes [starting, ready], ready → gone [terminating, gone].
 */
export function transitionPath(from: WorkerState, to: WorkerState): WorkerState[] | undefined {
  const cameFrom = new Map<WorkerState, WorkerState>([[from, from]]);
  const queue: WorkerState[] = [from];
  for (let s = queue.shift(); s !== undefined; s = queue.shift()) {
    if (s === to) {
      const path: WorkerState[] = [];
      for (let at = to; at !== from; at = cameFrom.get(at)!) path.unshift(at);
      return path;
    }
    for (const next of TRANSITIONS[s]) {
      // Through `failed` only when it is where the worker goes: a retired worker is terminated, not failed.
      if (cameFrom.has(next) || (next === 'failed' && to !== 'failed')) continue;
      cameFrom.set(next, s);
      queue.push(next);
    }
  }
  return undefined;
}

export type PoolListener = (change: WorkerStateChange) => void;

/** Told after a worker's in-flight count changed (a slot taken or given back). */
export type LoadListener = (worker: Worker) => void;

/** The set of workers and their states; the single place their state changes. */
export class WorkerPool {
  readonly #workers = new Map<string, Worker>();
  readonly #listeners = new Set<PoolListener>();
  readonly #loadListeners = new Set<LoadListener>();
  readonly #index = new LoadIndex();
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  add(name: string, capacity: number, state: WorkerState = 'provisioning'): Worker {
    if (this.#workers.has(name)) throw new Error(`worker ${name} already exists`);
    const now = this.#clock.now();
    const w: Worker = {
      name,
      capacity,
      createdAt: now,
      state,
      url: undefined,
      inFlight: 0,
      remoteInFlight: 0,
      prefill: new PrefillQueue(this.#clock),
      totalRequests: 0,
      stateSince: now,
      lastProbeAt: undefined,
      detail: {},
      ejected: false,
    };
    this.#workers.set(name, w);
    if (state === 'ready') this.#index.add(w);
    this.#emit({ worker: w, previous: state, reason: 'added' });
    return w;
  }

  get(name: string): Worker | undefined {
    return this.#workers.get(name);
  }

  /** Every worker not yet gone, in insertion order. */
  list(): Worker[] {
    return [...this.#workers.values()];
  }

  inState(...states: WorkerState[]): Worker[] {
    return this.list().filter((w) => states.includes(w.state));
  }

  /** Whether any worker is in one of `states`: inState's question without building the list (asked per request). */
  anyIn(states: readonly WorkerState[]): boolean {
    for (const w of this.#workers.values()) if (states.includes(w.state)) return true;
    return false;
  }

  /** Moves a worker to `to`; illegal moves throw (they are bugs). Returns false if already there. */
  setState(name: string, to: WorkerState, reason: string): boolean {
    const w = this.#workers.get(name);
    if (!w) throw new Error(`unknown worker ${name}`);
    if (w.state === to) return false;
    if (!canTransition(w.state, to)) throw new Error(`worker ${name}: illegal transition ${w.state} → ${to}`);
    const previous = w.state;
    w.state = to;
    w.stateSince = this.#clock.now();
    // The load index holds the serving workers: ready and not ejected.
    if (previous === 'ready') this.#index.remove(w);
    if (to === 'ready' && !w.ejected) this.#index.add(w);
    if (to === 'gone') this.#workers.delete(name);
    this.#emit({ worker: w, previous, reason });
    return true;
  }

  /** Sets or clears the outlier-ejection flag; true when it changed. */
  setEjected(name: string, ejected: boolean): boolean {
    const w = this.#workers.get(name);
    if (!w || w.ejected === ejected) return false;
    w.ejected = ejected;
    if (w.state === 'ready') {
      if (ejected) this.#index.remove(w);
      else this.#index.add(w);
    }
    return true;
  }

  /** Ready workers that are not ejected, whatever their load: the workers that serve. */
  serving(): Worker[] {
    const out: Worker[] = [];
    for (const w of this.#workers.values()) if (w.state === 'ready' && !w.ejected) out.push(w);
    return out;
  }

  /** Sets the requests the other replicas have in flight on `name` (their published sum). */
  setRemoteInFlight(name: string, n: number): void {
    const w = this.#workers.get(name);
    if (!w || w.remoteInFlight === n) return;
    const delta = n - w.remoteInFlight;
    w.remoteInFlight = n;
    this.#index.update(w, delta);
    for (const l of this.#loadListeners) l(w);
  }

  /** Counts a request onto a worker. */
  acquire(w: Worker): void {
    w.inFlight++;
    w.totalRequests++;
    this.#index.update(w, 1);
    for (const l of this.#loadListeners) l(w);
  }

  release(w: Worker): void {
    if (w.inFlight === 0) return;
    w.inFlight--;
    this.#index.update(w, -1);
    for (const l of this.#loadListeners) l(w);
  }

  /** Serving workers (ready, not ejected) indexed by load: what a balancer chooses from, in O(1) per question. */
  get loads(): Candidates {
    return this.#index;
  }

  /** Serving workers (ready, not ejected; full ones included), for balancers' membership hooks. */
  readyWorkers(): Worker[] {
    return this.#index.workers();
  }

  /** Serving workers with a free slot as a list, in insertion order (O(n); `loads` is the fast path). */
  candidates(): Worker[] {
    const out: Worker[] = [];
    for (const w of this.#workers.values()) if (w.state === 'ready' && !w.ejected && load(w) < w.capacity) out.push(w);
    return out;
  }

  /** Requests in flight from this gateway across all workers. */
  inFlight(): number {
    let n = 0;
    for (const w of this.#workers.values()) n += w.inFlight;
    return n;
  }

  onChange(listener: PoolListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  onLoadChange(listener: LoadListener): () => void {
    this.#loadListeners.add(listener);
    return () => this.#loadListeners.delete(listener);
  }

  #emit(change: WorkerStateChange): void {
    for (const l of this.#listeners) l(change);
  }
}
