import type { Worker } from '../pool.js';
import type { ScaleSnapshot, WorkerCounts } from './types.js';

/** Counts workers by the states the autoscaler cares about. */
export function countWorkers(workers: Iterable<Pick<Worker, 'state'>>): WorkerCounts {
  let ready = 0;
  let starting = 0;
  let provisioning = 0;
  let notReady = 0;
  let draining = 0;
  for (const w of workers) {
    if (w.state === 'ready') ready++;
    else if (w.state === 'starting') starting++;
    else if (w.state === 'provisioning') provisioning++;
    else if (w.state === 'not_ready') notReady++;
    else if (w.state === 'draining') draining++;
  }
  return { ready, starting, provisioning, notReady, draining };
}

/**
 * Workers that count toward the target: all but draining (leaving) ones. Provisioning
 * workers count so that one burst does not launch a fleet while the first launch runs.
 */
export function activeWorkers(snapshot: Pick<ScaleSnapshot, 'workers'>): number {
  const w = snapshot.workers;
  return w.ready + w.starting + w.provisioning + w.notReady;
}
