import type { WorkerPool } from '../pool.js';
import type { BalancerPolicy } from './types.js';

/**
 * Keeps a policy's optional hooks in step with the pool: the ready set now and on every
 * change into or out of `ready`, and every in-flight change. Returns the unsubscriber.
 * Admission calls it; tests that drive a policy directly call it too.
 */
export function wireBalancer(pool: WorkerPool, balancer: BalancerPolicy): () => void {
  const offs: (() => void)[] = [];
  if (balancer.onMembershipChange) {
    const notify = balancer.onMembershipChange.bind(balancer);
    notify(pool.readyWorkers());
    offs.push(
      pool.onChange(({ worker, previous, reason }) => {
        const wasReady = previous === 'ready' && reason !== 'added';
        if ((worker.state === 'ready') !== wasReady) notify(pool.readyWorkers());
      }),
    );
  }
  if (balancer.onLoadChange) offs.push(pool.onLoadChange(balancer.onLoadChange.bind(balancer)));
  return () => {
    for (const off of offs) off();
  };
}
