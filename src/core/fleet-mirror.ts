import type { SharedWorker } from './coordination.js';
import { transitionPath, type WorkerPool } from './pool.js';
import { PrefillQueue } from './prefill-queue.js';
import type { Worker } from './types.js';

/** One worker as the leader publishes it. */
export function shareWorker(w: Worker): SharedWorker {
  return { name: w.name, state: w.state, url: w.url, capacity: w.capacity, detail: { ...w.detail } };
}

/** The pool's workers as the leader publishes them: every one not gone, in pool order. */
export function shareWorkers(pool: WorkerPool): SharedWorker[] {
  return pool.list().map(shareWorker);
}

/**
 * A worker as the leader reported it, for a follower that passed node control to the leader
 * and answers its client with it (the follower's own pool catches up with the next fleet write).
 * What the follower's pool already knows of it (`local`: its requests in flight there, its age)
 * stays: a drain answered before the next fleet write shows the requests still to finish.
 */
export function sharedWorkerView(s: SharedWorker, now: number, local?: Worker): Worker {
  if (local)
    return {
      ...local,
      state: s.state,
      url: s.url,
      capacity: s.capacity,
      detail: { ...s.detail },
      stateSince: local.state === s.state ? local.stateSince : now,
    };
  return {
    name: s.name,
    capacity: s.capacity,
    createdAt: now,
    state: s.state,
    url: s.url,
    inFlight: 0,
    remoteInFlight: 0,
    prefill: new PrefillQueue({ now: () => now }),
    totalRequests: 0,
    stateSince: now,
    lastProbeAt: undefined,
    detail: { ...s.detail },
    ejected: false,
  };
}

/**
 * Makes a follower's pool show the leader's workers: new ones are added, each is moved to the
 * leader's state through allowed transitions (the leader may have passed through states the
 * follower never saw: provisioning → ready is replayed as starting, ready), and those the leader
 * no longer lists leave (terminating, gone). A worker whose state cannot be reached from its
 * local one (draining → ready: the name was reused) leaves and joins again. Requests in flight
 * from this replica keep their worker; its load and ejection are this replica's own and stay.
 */
export function mirrorWorkers(
  pool: WorkerPool,
  shared: readonly SharedWorker[],
  reason = 'as the leader reports',
): void {
  const listed = new Set(shared.map((w) => w.name));
  for (const w of pool.list()) if (!listed.has(w.name)) retire(pool, w.name, reason);
  for (const s of shared) {
    let w = pool.get(s.name);
    let path = w ? transitionPath(w.state, s.state) : undefined;
    if (w && (path === undefined || w.capacity !== s.capacity)) {
      retire(pool, s.name, reason);
      w = undefined;
    }
    if (!w) {
      w = pool.add(s.name, s.capacity, 'provisioning');
      path = transitionPath('provisioning', s.state) ?? [];
    }
    w.url = s.url;
    w.detail = { ...s.detail };
    for (const state of path ?? []) pool.setState(s.name, state, reason);
  }
}

/** Takes a worker out of a follower's pool: terminating, then gone. */
function retire(pool: WorkerPool, name: string, reason: string): void {
  const w = pool.get(name);
  if (!w) return;
  for (const state of transitionPath(w.state, 'gone') ?? []) pool.setState(name, state, reason);
}
