import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/core/clock.js';
import { WorkerPool } from '../../../src/core/pool.js';
import { ProvisionerGate } from '../../../src/core/provisioner-gate.js';
import {
  Terminator,
  type Departure,
  type DepartureOutcome,
  type TerminatorOptions,
} from '../../../src/core/terminator.js';
import type { WorkerState } from '../../../src/core/types.js';
import { FakeProvisioner } from '../../fakes/provisioner.js';
import { flush, runTo } from '../../helpers/virtual-time.js';

// Drains last at most 5 s and are polled every 1 s; a failed terminate is retried after 5 s × attempts so far.
function setup(over: Partial<TerminatorOptions> = {}) {
  const clock = new VirtualClock();
  const pool = new WorkerPool(clock);
  const provisioner = new FakeProvisioner(clock);
  const logs: string[] = [];
  const history: string[] = [];
  pool.onChange((c) => {
    if (c.reason !== 'added') history.push(`${clock.now()} ${c.worker.name} ${c.previous}→${c.worker.state}`);
  });
  const terminator = new Terminator({
    pool,
    clock,
    provisioner: new ProvisionerGate(provisioner),
    drainTimeoutMs: 5000,
    drainPollMs: 1000,
    retryDelayMs: 5000,
    log: (level, msg) => logs.push(`${level} ${msg}`),
    ...over,
  });
  const outcomes: string[] = [];
  /** A departure whose launch has settled; outcomes are recorded with their time. */
  const departure = (name: string, more: Partial<Departure> = {}): Departure => ({
    launchSettled: () => Promise.resolve(),
    settled: (o: DepartureOutcome) => outcomes.push(`${clock.now()} ${name} ${o}`),
    ...more,
  });
  /** A worker `name` in `state`, with its cluster up in the fake provisioner. */
  const worker = (name: string, state: WorkerState) => {
    provisioner.seed(name, 'UP');
    const w = pool.add(name, 4, 'provisioning');
    if (state === 'ready' || state === 'not_ready') pool.setState(name, 'starting', 'launched');
    if (state !== 'provisioning') pool.setState(name, state, 'test');
    return w;
  };
  const terminates = (): number[] => provisioner.calls.filter((c) => c.op === 'terminate').map((c) => c.at);
  return {
    clock,
    pool,
    provisioner,
    terminator,
    logs,
    history,
    outcomes,
    departure,
    worker,
    terminates,
    runTo: (t: number) => runTo(clock, t),
  };
}

describe('Terminator: drain', () => {
  it('takes a worker out whatever its state: each path, in pool states', async () => {
    const table: Array<{ state: WorkerState; path: string[] }> = [
      { state: 'provisioning', path: ['provisioning→terminating', 'terminating→gone'] },
      { state: 'failed', path: ['failed→terminating', 'terminating→gone'] },
      { state: 'ready', path: ['ready→draining', 'draining→terminating', 'terminating→gone'] },
      { state: 'not_ready', path: ['not_ready→draining', 'draining→terminating', 'terminating→gone'] },
      { state: 'starting', path: ['starting→draining', 'draining→terminating', 'terminating→gone'] },
    ];
    for (const { state, path } of table) {
      const t = setup();
      const w = t.worker('w-1', state);
      t.history.length = 0;
      await t.terminator.drain(w, true, t.departure('w-1'), 'scale-down');
      expect(
        t.history.map((h) => h.split(' ')[2]),
        state,
      ).toEqual(path);
      expect(t.provisioner.alive, state).toEqual([]);
      expect(t.outcomes, state).toEqual(['0 w-1 terminated']);
      expect(t.terminator.stats, state).toEqual({ terminated: 1, terminateFailures: 0, teardownGiveUps: 0 });
    }
  });

  it('waits for the requests in flight: ends on the release notification, on the poll, or at the deadline', async () => {
    const table: Array<{ label: string; release: (t: ReturnType<typeof setup>) => void; goneAt: number }> = [
      {
        label: 'released and notified at 2.5 s',
        release: (t) => (t.pool.release(t.pool.get('w-1')!), t.terminator.notifyRelease()),
        goneAt: 2500,
      },
      {
        label: 'released at 2.5 s, nobody notifies: the 3 s poll',
        release: (t) => t.pool.release(t.pool.get('w-1')!),
        goneAt: 3000,
      },
      { label: 'never released: the 5 s deadline', release: () => {}, goneAt: 5000 },
    ];
    for (const { label, release, goneAt } of table) {
      const t = setup();
      const w = t.worker('w-1', 'ready');
      t.pool.acquire(w);
      void t.terminator.drain(w, true, t.departure('w-1'), 'scale-down');
      await t.runTo(2500);
      expect(w.state, label).toBe('draining');
      release(t);
      await flush();
      if (goneAt > 2500) {
        await t.runTo(goneAt - 100);
        expect(t.outcomes, label).toEqual([]);
      }
      await t.runTo(goneAt);
      expect(t.outcomes, label).toEqual([`${goneAt} w-1 terminated`]);
      expect(
        t.logs.some((l) => l.includes('still had 1 in flight')),
        label,
      ).toBe(goneAt === 5000);
      expect(t.clock.pendingTimers, label).toBe(0);
    }
  });

  it('without terminate, a drained worker is kept running', async () => {
    const t = setup();
    const w = t.worker('w-1', 'ready');
    await t.terminator.drain(w, false, t.departure('w-1'), 'shutdown (keeping workers)');
    expect(t.outcomes).toEqual(['0 w-1 kept']);
    expect(w.state).toBe('draining');
    expect(t.provisioner.alive).toEqual(['w-1']);
    expect(t.terminates()).toEqual([]);
  });

  it('the teardown waits for the launch to settle, so it never races it', async () => {
    const t = setup();
    const w = t.worker('w-1', 'provisioning');
    let settle = (): void => {};
    const launch = new Promise<void>((resolve) => (settle = resolve));
    const done = t.terminator.drain(w, true, t.departure('w-1', { launchSettled: () => launch }), 'scale-down');
    await t.runTo(3000);
    expect(w.state).toBe('terminating');
    expect(t.terminates()).toEqual([]);
    settle();
    await done;
    expect(t.terminates()).toEqual([3000]);
  });

  it('a teardown another replica began (mayBeGone): torn down only if its cluster is still listed, or the list fails', async () => {
    const t = setup();
    t.provisioner.failLists = 1;
    for (const name of ['w-1', 'w-2', 'w-3']) t.worker(name, 'terminating');
    t.provisioner.clusters.delete('w-1'); // the other replica's `sky down` ended
    t.provisioner.clusters.delete('w-3'); // so did this one's, but the list fails
    const departures = ['w-3', 'w-1', 'w-2'].map((name) =>
      t.terminator.drain(t.pool.get(name)!, true, t.departure(name, { mayBeGone: true }), 'taken over'),
    );
    await Promise.all(departures);
    expect(t.provisioner.calls.filter((c) => c.op === 'terminate').map((c) => c.name)).toEqual(['w-3', 'w-2']);
    expect(t.outcomes.sort()).toEqual(['0 w-1 terminated', '0 w-2 terminated', '0 w-3 terminated']);
    expect(t.pool.list()).toEqual([]);
    expect(t.logs).toContain('info fleet: w-1 is already torn down');
  });

  it('stood down while its terminate runs: the pool, mirroring the next leader now, is left as that leader has it', async () => {
    const t = setup();
    t.provisioner.terminateDelayMs = 2000;
    const w = t.worker('w-1', 'ready');
    const done = t.terminator.drain(w, true, t.departure('w-1'), 'shutdown');
    await t.runTo(1000);
    expect(w.state).toBe('terminating');
    // The lease ran out mid-call; the next leader's fleet says the worker is draining.
    t.terminator.standDown();
    t.pool.setState('w-1', 'gone', 'as the leader reports');
    t.pool.add('w-1', 4, 'provisioning');
    t.pool.setState('w-1', 'starting', 'as the leader reports');
    t.pool.setState('w-1', 'ready', 'as the leader reports');
    t.pool.setState('w-1', 'draining', 'as the leader reports');
    await t.runTo(3000);
    await done;
    expect(t.pool.get('w-1')?.state).toBe('draining');
    expect(t.outcomes).toEqual(['2000 w-1 terminated']);
  });
});

describe('Terminator: teardown retries', () => {
  it('retries a failing terminate after 5 s, then 10 s, and counts each failure', async () => {
    const t = setup();
    const w = t.worker('w-1', 'failed');
    t.history.length = 0;
    t.provisioner.failTerminates = 2;
    void t.terminator.teardown('w-1', t.departure('w-1'));
    await t.runTo(20_000);
    expect(t.terminates()).toEqual([0, 5000, 15_000]);
    expect(t.outcomes).toEqual(['15000 w-1 terminated']);
    expect(w.state).toBe('gone');
    expect(t.terminator.stats).toEqual({ terminated: 1, terminateFailures: 2, teardownGiveUps: 0 });
    expect(t.history).toEqual([
      '0 w-1 failed→terminating',
      '0 w-1 terminating→failed',
      '5000 w-1 failed→terminating',
      '5000 w-1 terminating→failed',
      '15000 w-1 failed→terminating',
      '15000 w-1 terminating→gone',
    ]);
  });

  it('gives up after terminateAttempts: the worker stays failed and the cluster is listed until a later teardown works', async () => {
    const t = setup({ terminateAttempts: 2 });
    const w = t.worker('w-1', 'ready');
    t.provisioner.failTerminates = 2;
    void t.terminator.drain(w, true, t.departure('w-1'), 'scale-down');
    await t.runTo(10_000);
    expect(t.terminates()).toEqual([0, 5000]);
    expect(t.outcomes).toEqual(['5000 w-1 unterminated']);
    expect(w.state).toBe('failed');
    expect(t.terminator.unterminated()).toEqual(['w-1']);
    expect(t.terminator.stats).toEqual({ terminated: 0, terminateFailures: 2, teardownGiveUps: 1 });
    expect(t.logs).toContain(
      'error fleet: could not terminate w-1 after 2 attempts; it may still be running (and billing): tear it down by hand',
    );
    await t.terminator.drain(w, true, t.departure('w-1'), 'scale-down');
    expect(t.terminator.unterminated()).toEqual([]);
    expect(t.provisioner.alive).toEqual([]);
  });

  it('keepFailed leaves the worker listed as failed once its cluster is gone', async () => {
    const t = setup();
    const w = t.worker('w-1', 'failed');
    await t.terminator.teardown('w-1', t.departure('w-1', { keepFailed: 'given up after 3 failed launches' }));
    expect(t.provisioner.alive).toEqual([]);
    expect(t.pool.get('w-1')).toBe(w);
    expect(t.history.at(-1)).toBe('0 w-1 terminating→failed');
    expect(t.outcomes).toEqual(['0 w-1 terminated']);
  });

  it('terminate() tears down a cluster that has no worker in the pool', async () => {
    const t = setup({ terminateAttempts: 2 });
    t.provisioner.seed('w-7', 'STOPPED');
    t.provisioner.failTerminates = 1;
    const gone = t.terminator.terminate('w-7');
    await t.runTo(5000);
    await expect(gone).resolves.toBe(true);
    expect(t.terminates()).toEqual([0, 5000]);
    expect(t.provisioner.alive).toEqual([]);
    t.provisioner.seed('w-8', 'INIT');
    t.provisioner.failTerminates = 2;
    const given = t.terminator.terminate('w-8');
    await t.runTo(15_000);
    await expect(given).resolves.toBe(false);
    expect(t.terminator.unterminated()).toEqual(['w-8']);
  });
});
