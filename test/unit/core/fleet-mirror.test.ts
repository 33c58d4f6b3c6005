import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/core/clock.js';
import type { SharedWorker } from '../../../src/core/coordination.js';
import { mirrorWorkers, sharedWorkerView, shareWorkers } from '../../../src/core/fleet-mirror.js';
import { transitionPath, WorkerPool } from '../../../src/core/pool.js';
import type { WorkerState } from '../../../src/core/types.js';

const shared = (name: string, state: WorkerState, url?: string): SharedWorker => ({
  name,
  state,
  url,
  capacity: 4,
  detail: { cluster: name },
});

/** A pool whose state changes are recorded as "name:from→to". */
function watched(): { pool: WorkerPool; moves: string[] } {
  const pool = new WorkerPool(new VirtualClock());
  const moves: string[] = [];
  pool.onChange(({ worker, previous, reason }) =>
    moves.push(reason === 'added' ? `${worker.name}:+${worker.state}` : `${worker.name}:${previous}→${worker.state}`),
  );
  return { pool, moves };
}

describe('transitionPath', () => {
  it.each<[WorkerState, WorkerState, WorkerState[] | undefined]>([
    ['provisioning', 'provisioning', []],
    ['provisioning', 'ready', ['starting', 'ready']],
    ['starting', 'draining', ['draining']],
    ['ready', 'gone', ['terminating', 'gone']],
    ['not_ready', 'ready', ['ready']],
    ['failed', 'gone', ['gone']],
    ['draining', 'ready', undefined],
    ['gone', 'ready', undefined],
  ])('%s → %s: %j', (from, to, want) => {
    expect(transitionPath(from, to)).toEqual(want);
  });
});

describe('mirrorWorkers: a follower replays the leader’s fleet', () => {
  it('timeline: launched, ready, one drained and gone, a name reused', () => {
    const { pool, moves } = watched();
    const step = (workers: SharedWorker[]): string[] => {
      moves.length = 0;
      mirrorWorkers(pool, workers);
      return [...moves];
    };
    expect(step([shared('w-1', 'provisioning')])).toEqual(['w-1:+provisioning']);
    expect(step([shared('w-1', 'ready', 'http://a:1'), shared('w-2', 'ready', 'http://b:1')])).toEqual([
      'w-1:provisioning→starting',
      'w-1:starting→ready',
      'w-2:+provisioning',
      'w-2:provisioning→starting',
      'w-2:starting→ready',
    ]);
    expect(pool.get('w-1')?.url).toBe('http://a:1');
    expect(pool.serving().map((w) => w.name)).toEqual(['w-1', 'w-2']);
    // The leader drained w-2 and it is gone before this replica heard: it leaves all the same.
    expect(step([shared('w-1', 'ready', 'http://a:1')])).toEqual(['w-2:ready→terminating', 'w-2:terminating→gone']);
    // w-1 drains; then the name comes back as a new worker, which draining cannot reach.
    step([shared('w-1', 'draining', 'http://a:1')]);
    expect(step([shared('w-1', 'starting', 'http://c:1')])).toEqual([
      'w-1:draining→terminating',
      'w-1:terminating→gone',
      'w-1:+provisioning',
      'w-1:provisioning→starting',
    ]);
    expect(pool.get('w-1')?.url).toBe('http://c:1');
  });

  it('keeps this replica’s own load and ejection on a worker that stays', () => {
    const { pool } = watched();
    mirrorWorkers(pool, [shared('w-1', 'ready', 'http://a:1'), shared('w-2', 'ready', 'http://b:1')]);
    const w1 = pool.get('w-1')!;
    pool.acquire(w1);
    pool.setEjected('w-2', true);
    mirrorWorkers(pool, [shared('w-1', 'ready', 'http://a:1'), shared('w-2', 'ready', 'http://b:1')]);
    expect(pool.get('w-1')).toBe(w1);
    expect(w1.inFlight).toBe(1);
    expect(pool.get('w-2')?.ejected).toBe(true);
  });

  it('round-trips: what a leader shares, a follower shows', () => {
    const leader = watched().pool;
    leader.add('w-1', 4, 'provisioning');
    leader.setState('w-1', 'starting', 'launched');
    leader.get('w-1')!.url = 'http://a:1';
    leader.add('w-2', 4, 'ready');
    const follower = watched().pool;
    mirrorWorkers(follower, shareWorkers(leader));
    expect(shareWorkers(follower)).toEqual(shareWorkers(leader));
  });
});

describe('sharedWorkerView: the worker a follower answers a node-control command with', () => {
  it('the leader’s state over the follower’s own worker: its requests in flight and its age stay', () => {
    const clock = new VirtualClock();
    const { pool } = watched();
    mirrorWorkers(pool, [shared('w-1', 'ready', 'http://a:1')]);
    const here = pool.get('w-1')!;
    pool.acquire(here);
    pool.acquire(here);
    clock.advance(5_000);
    const view = sharedWorkerView(shared('w-1', 'draining', 'http://a:1'), clock.now(), here);
    expect(view).toMatchObject({ name: 'w-1', state: 'draining', inFlight: 2, createdAt: here.createdAt });
    expect(view.stateSince).toBe(5_000);
    // The follower's pool is not changed by the answer: the next fleet write moves it.
    expect(here.state).toBe('ready');
  });

  it('a worker the follower has not heard of yet: the leader’s report alone', () => {
    const view = sharedWorkerView(shared('w-9', 'provisioning'), 7_000);
    expect(view).toMatchObject({ name: 'w-9', state: 'provisioning', inFlight: 0, createdAt: 7_000 });
  });
});
