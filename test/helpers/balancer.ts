import { Admission, type AdmissionOptions } from '../../src/core/admission.js';
import { LeastConnection } from '../../src/core/balancer/least-connection.js';
import { VirtualClock, seededRandom } from '../../src/core/clock.js';
import { LoadTracker } from '../../src/core/load-tracker.js';
import type { BalancerPolicy } from '../../src/core/balancer/types.js';
import { wireBalancer } from '../../src/core/balancer/wire.js';
import { WorkerPool } from '../../src/core/pool.js';
import type { Worker, WorkerState } from '../../src/core/types.js';

/** [name, in flight, capacity, state (default ready)] */
export type WorkerSpec = readonly [string, number, number, WorkerState?];

export interface PolicyBench {
  readonly pool: WorkerPool;
  readonly clock: VirtualClock;
  readonly workers: Worker[];
  byName(name: string): Worker;
}

/**
 * A pool of workers in the given states and loads, wired to `policy` as Admission wires it
 * (membership and load hooks), so a test can call policy.pick(pool.loads, ctx) directly.
 */
export function policyBench(
  policy: BalancerPolicy,
  spec: readonly WorkerSpec[],
  clock = new VirtualClock(),
): PolicyBench {
  const pool = new WorkerPool(clock);
  wireBalancer(pool, policy);
  const workers = spec.map(([name, inFlight, capacity, state]) => {
    const early = state === 'provisioning' || state === 'starting';
    const w = pool.add(name, capacity, early ? state : 'starting');
    w.url = `http://127.0.0.1:1/${name}`;
    if (early) return w;
    pool.setState(name, 'ready', 'test');
    for (let i = 0; i < inFlight; i++) pool.acquire(w);
    if (state && state !== 'ready') pool.setState(name, state, 'test');
    return w;
  });
  return {
    pool,
    clock,
    workers,
    byName: (name) => {
      const w = pool.get(name);
      if (!w) throw new Error(`no worker ${name}`);
      return w;
    },
  };
}

/** χ² statistic of observed counts against a uniform expectation. */
export function chiSquareUniform(counts: readonly number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  const expected = total / counts.length;
  return counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
}

/** P(χ² > x) = 0.001 with 4 degrees of freedom (5 categories). */
export const CHI2_4DF_0_001 = 18.47;

/**
 * An Admission over `pool` for tests about something else: least-connection, a 60 s load
 * tracker, seeded random and a queue of 10, unless `o` says otherwise.
 */
export function testAdmission(pool: WorkerPool, clock: VirtualClock, o: Partial<AdmissionOptions> = {}): Admission {
  return new Admission({
    pool,
    balancer: new LeastConnection(),
    clock,
    tracker: new LoadTracker(clock, 60_000),
    random: seededRandom(1),
    maxQueueLength: 10,
    ...o,
  });
}
