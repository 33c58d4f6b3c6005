import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/core/clock.js';
import type { SharedFleet, SharedWorker } from '../../../src/core/coordination.js';
import { LoadTracker } from '../../../src/core/load-tracker.js';
import { WorkerPool } from '../../../src/core/pool.js';
import type { Worker } from '../../../src/core/types.js';
import { GlobalQueue, Replica, type ReplicaFleet } from '../../../src/core/replica.js';
import { DrivenCoordinator } from '../../fakes/coordinator.js';
import { FakeProber } from '../../fakes/prober.js';
import { runTo } from '../../helpers/virtual-time.js';

/** Lets promises settle (no time passes on the virtual clock). */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

const worker = (name: string, state: SharedWorker['state'] = 'ready'): SharedWorker => ({
  name,
  state,
  url: `http://${name}:8000`,
  capacity: 4,
  detail: {},
});

const fleet = (workers: SharedWorker[], target = workers.length): Omit<SharedFleet, 'leader' | 'term'> => ({
  target,
  minWorkers: 1,
  maxWorkers: 5,
  workers,
});

/** A fleet whose takeover the test lets finish when it wants, recording what the replica asked. */
class HeldFleet implements ReplicaFleet {
  target = 0;
  readonly calls: string[] = [];
  #release: (() => void) | undefined;
  hold = false;

  /** Takeovers that fail (the provisioner's list would not come), the next ones first. */
  failures = 0;

  takeOver(shared: SharedFleet | undefined, reinit: boolean, leaving: boolean): Promise<void> {
    this.calls.push(
      `takeOver(${shared ? `target ${shared.target}` : 'fresh'}${reinit ? ', reinit' : ''}${leaving ? ', leaving' : ''})`,
    );
    if (this.failures > 0) {
      this.failures--;
      return Promise.reject(new Error('`sky status` timed out'));
    }
    this.target = shared?.target ?? 0;
    if (!this.hold) return Promise.resolve();
    return new Promise((resolve) => (this.#release = resolve));
  }

  release(): void {
    this.#release?.();
  }

  standDown(): void {
    this.calls.push('standDown');
  }

  launchEnded(name: string): void {
    this.calls.push(`launchEnded(${name})`);
  }
}

function setup(opts: { reinit?: boolean } = {}) {
  const clock = new VirtualClock();
  const pool = new WorkerPool(clock);
  const tracker = new LoadTracker(clock, 60_000);
  const queue = new GlobalQueue(tracker);
  const coordinator = new DrivenCoordinator();
  const f = new HeldFleet();
  const autoscaler = { running: false, demands: 0, start() {}, stop() {}, demand() {} };
  autoscaler.start = () => void (autoscaler.running = true);
  autoscaler.stop = () => void (autoscaler.running = false);
  autoscaler.demand = () => void autoscaler.demands++;
  const scale = { min: 1, max: 2 };
  let wakes = 0;
  let waiting = 0;
  const probed: [string, boolean][] = [];
  const prober = new FakeProber();
  const replica = new Replica({
    coordinator,
    pool,
    fleet: f,
    autoscaler,
    scale,
    queue,
    waiting: () => waiting,
    wake: () => void wakes++,
    clock,
    prober,
    onProbe: (w: Worker, ok: boolean) => probed.push([w.name, ok]),
    probeIntervalMs: 500,
    reinit: opts.reinit,
  });
  return {
    clock,
    pool,
    tracker,
    queue,
    coordinator,
    fleet: f,
    autoscaler,
    scale,
    replica,
    prober,
    probed,
    wakes: () => wakes,
    setWaiting: (n: number) => (waiting = n),
  };
}

describe('Replica following', () => {
  it('mirrors the leader’s fleet and bounds, wakes waiting requests, and never scales', async () => {
    const t = setup();
    await t.replica.start();
    t.coordinator.share(fleet([worker('w-1'), worker('w-2', 'starting')], 2));
    expect(t.pool.serving().map((w) => w.name)).toEqual(['w-1']);
    expect(t.pool.get('w-2')?.state).toBe('starting');
    expect(t.scale).toEqual({ min: 1, max: 5 });
    expect(t.wakes()).toBe(1);
    expect(t.autoscaler.running).toBe(false);
    expect(t.fleet.calls).toEqual([]);
    expect(t.coordinator.writes).toEqual([]);
  });

  it('counts the other replicas’ load: per worker in the balancer’s load, in total in the queue length', async () => {
    const t = setup();
    await t.replica.start();
    t.coordinator.share(fleet([worker('w-1'), worker('w-2')]));
    t.queue.set(2);
    t.coordinator.others([
      { replica: 'b', queueLength: 5, inFlight: { 'w-1': 3, 'w-2': 1 }, waiting: 1 },
      { replica: 'c', queueLength: 1, inFlight: { 'w-1': 1 } },
    ]);
    expect(t.pool.get('w-1')?.remoteInFlight).toBe(4);
    expect(t.pool.get('w-2')?.remoteInFlight).toBe(1);
    expect(t.tracker.current()).toBe(2 + 5 + 1);
    // A request waiting at b counts for the leader's autoscaler as one waiting here does.
    expect(t.queue.remoteWaiting).toBe(1);
    // w-1 holds 4 of its 4 slots through the others: the least loaded with room is w-2.
    expect(t.pool.loads.has(t.pool.get('w-1')!)).toBe(false);
    expect(t.pool.loads.leastLoaded(() => 0)?.name).toBe('w-2');
    // Replica b is gone (its lease ran out): its share goes.
    t.coordinator.others([{ replica: 'c', queueLength: 1, inFlight: { 'w-1': 1 } }]);
    expect(t.pool.get('w-1')?.remoteInFlight).toBe(1);
    expect(t.pool.get('w-2')?.remoteInFlight).toBe(0);
    expect(t.tracker.current()).toBe(2 + 1);
    expect(t.queue.remoteWaiting).toBe(0);
  });

  it('publishes its own load every second: its queue length, waiting and in flight per worker', async () => {
    const t = setup();
    await t.replica.start();
    t.coordinator.share(fleet([worker('w-1'), worker('w-2')]));
    t.pool.acquire(t.pool.get('w-2')!);
    t.queue.set(3);
    t.setWaiting(2);
    t.clock.advance(1000);
    expect(t.coordinator.loads).toEqual([{ queueLength: 3, inFlight: { 'w-2': 1 }, waiting: 2 }]);
    t.clock.advance(1000);
    expect(t.coordinator.loads).toHaveLength(2);
  });

  it('asks the leader to scale from zero, once while the question is open', async () => {
    const t = setup();
    await t.replica.start();
    t.replica.demand();
    t.replica.demand();
    expect(t.coordinator.submitted).toEqual([{ op: 'demand' }]);
    await settle();
    t.replica.demand();
    expect(t.coordinator.submitted).toEqual([{ op: 'demand' }, { op: 'demand' }]);
    expect(t.autoscaler.demands).toBe(0);
  });

  it('tells the leader of a launch it aborted as it stood down, again each second while none leads', async () => {
    const t = setup();
    await t.replica.start();
    t.coordinator.submitResult = { ok: false, code: 'no_leader', message: 'No replica leads.' };
    t.replica.launchAbandoned('w-4');
    await runTo(t.clock, 2000);
    expect(t.coordinator.submitted).toEqual([
      { op: 'launch-ended', name: 'w-4' },
      { op: 'launch-ended', name: 'w-4' },
      { op: 'launch-ended', name: 'w-4' },
    ]);
    t.coordinator.submitResult = { ok: true };
    await runTo(t.clock, 10_000);
    expect(t.coordinator.submitted).toHaveLength(4);
  });

  it('probes the workers it ejected itself, to readmit them; readiness is the leader’s', async () => {
    const t = setup();
    await t.replica.start();
    t.coordinator.share(fleet([worker('w-1'), worker('w-2')]));
    t.pool.setEjected('w-2', true);
    t.clock.advance(500);
    await settle();
    expect(t.prober.probes).toEqual(['http://w-2:8000']);
    expect(t.probed).toEqual([['w-2', true]]);
  });
});

describe('Replica leading', () => {
  it('takes the fleet over from the last shared one, then scales and publishes every change, once per turn', async () => {
    const t = setup();
    await t.replica.start();
    t.coordinator.share(fleet([worker('w-1'), worker('w-2')], 2));
    t.coordinator.lead(7);
    await settle();
    expect(t.fleet.calls).toEqual(['takeOver(target 2)']);
    expect(t.autoscaler.running).toBe(true);
    expect(t.coordinator.writes).toEqual([fleet([worker('w-1'), worker('w-2')], 2)]);
    // Two changes in one turn: one write.
    t.pool.setState('w-2', 'not_ready', 'probe failed');
    t.pool.setState('w-1', 'draining', 'scale-down');
    t.clock.advance(0);
    await settle();
    expect(t.coordinator.writes).toHaveLength(2);
    expect(t.coordinator.writes[1]!.workers.map((w) => w.state)).toEqual(['draining', 'not_ready']);
    // Nothing changed: nothing written at the next tick.
    t.clock.advance(1000);
    await settle();
    expect(t.coordinator.writes).toHaveLength(2);
  });

  it('relaunches on running workers (--reinit) only when it starts a fresh fleet', async () => {
    const fresh = setup({ reinit: true });
    await fresh.replica.start();
    fresh.coordinator.lead(1);
    await settle();
    expect(fresh.fleet.calls).toEqual(['takeOver(fresh, reinit)']);

    const failover = setup({ reinit: true });
    await failover.replica.start();
    failover.coordinator.share(fleet([worker('w-1')]));
    failover.coordinator.lead(2);
    await settle();
    expect(failover.fleet.calls).toEqual(['takeOver(target 1)']);
  });

  it('a takeover that fails is tried again, backing off, and the autoscaler starts once one works', async () => {
    const t = setup({ reinit: true });
    t.fleet.failures = 2;
    await t.replica.start();
    t.coordinator.lead(1);
    await settle();
    expect(t.fleet.calls).toEqual(['takeOver(fresh, reinit)']);
    expect(t.autoscaler.running).toBe(false);
    // What awaits the takeover (start, node control, leave) is not held until the provisioner answers.
    await t.replica.takenOver();
    await runTo(t.clock, 4900);
    expect(t.fleet.calls).toHaveLength(1);
    await runTo(t.clock, 5000); // 5 s after the first failure
    expect(t.fleet.calls).toHaveLength(2);
    await runTo(t.clock, 14_900);
    expect(t.fleet.calls).toHaveLength(2);
    await runTo(t.clock, 15_000); // 10 s after the second: this one works, as the first would have
    expect(t.fleet.calls).toEqual(Array<string>(3).fill('takeOver(fresh, reinit)'));
    expect(t.autoscaler.running).toBe(true);
  });

  it('a failed takeover is not tried again once the replica leaves: it leaves at once, the last one out', async () => {
    const t = setup();
    t.fleet.failures = 5;
    await t.replica.start();
    t.coordinator.lead(1);
    await settle();
    await expect(t.replica.leave()).resolves.toBe('last');
    await runTo(t.clock, 60_000);
    expect(t.fleet.calls).toEqual(['takeOver(fresh)']);
  });

  it('a failed takeover is not tried again once the replica no longer leads', async () => {
    const t = setup();
    t.fleet.failures = 1;
    await t.replica.start();
    t.coordinator.lead(1);
    await settle();
    t.coordinator.lose();
    await runTo(t.clock, 60_000);
    expect(t.fleet.calls).toEqual(['takeOver(fresh)', 'standDown']);
    expect(t.autoscaler.running).toBe(false);
  });

  it('runs a follower’s node control once the takeover is over, not during it (the takeover’s target would undo it)', async () => {
    const t = setup();
    await t.replica.start();
    t.coordinator.share(fleet([worker('w-1')]));
    const ran: string[] = [];
    t.replica.handleCommands(async (cmd) => {
      ran.push(`${cmd.op} after ${t.fleet.calls.join(', ')}`);
      return { ok: true };
    });
    t.fleet.hold = true;
    t.coordinator.lead(3);
    const answer = t.replica.command({ op: 'add' });
    await settle();
    expect(ran).toEqual([]);
    t.fleet.release();
    expect(await answer).toEqual({ ok: true });
    expect(ran).toEqual(['add after takeOver(target 1)']);
  });

  it('loses the lead during the takeover: it never scales, stands down, and shows the shared fleet again', async () => {
    const t = setup();
    await t.replica.start();
    t.coordinator.share(fleet([worker('w-1')]));
    t.fleet.hold = true;
    t.coordinator.lead(3);
    // While taking over it changed the pool; then the lead is gone.
    t.pool.setState('w-1', 'not_ready', 'probe failed');
    t.coordinator.lose();
    t.fleet.release();
    await settle();
    expect(t.autoscaler.running).toBe(false);
    expect(t.fleet.calls).toEqual(['takeOver(target 1)', 'standDown']);
    expect(t.pool.get('w-1')?.state).toBe('ready');
  });

  it('writes again a fleet write etcd left unanswered; a refused one it drops', async () => {
    const t = setup();
    await t.replica.start();
    t.coordinator.share(fleet([worker('w-1')]));
    t.coordinator.unanswered = 2;
    t.coordinator.lead(4);
    await settle();
    expect(t.coordinator.writes).toEqual([]);
    t.clock.advance(250);
    await settle();
    t.clock.advance(250);
    await settle();
    expect(t.coordinator.writes).toHaveLength(1);
    // Refused (no longer the leader): no retry.
    t.coordinator.leading = false;
    t.pool.setState('w-1', 'not_ready', 'probe failed');
    t.clock.advance(5000);
    await settle();
    expect(t.coordinator.writes).toHaveLength(1);
  });

  it('runs followers’ node control through the handler, and scale-from-zero itself', async () => {
    const t = setup();
    await t.replica.start();
    t.coordinator.lead(1);
    await settle();
    expect(await t.replica.command({ op: 'add' })).toMatchObject({ ok: false, code: 'shutting_down' });
    t.replica.handleCommands(async (cmd) => ({
      ok: true,
      bounds: { minWorkers: cmd.op === 'scale' ? 3 : 0, maxWorkers: 4 },
    }));
    expect(await t.replica.command({ op: 'scale', min: 3 })).toEqual({
      ok: true,
      bounds: { minWorkers: 3, maxWorkers: 4 },
    });
    expect(await t.replica.command({ op: 'demand' })).toEqual({ ok: true });
    // A launch the previous leader aborted: the fleet stops waiting for it.
    expect(await t.replica.command({ op: 'launch-ended', name: 'w-4' })).toEqual({ ok: true });
    expect(t.fleet.calls).toContain('launchEnded(w-4)');
    t.replica.demand();
    expect(t.autoscaler.demands).toBe(2);
    expect(t.coordinator.submitted).toEqual([]);
  });

  it('leaving: handed over, it stands down and keeps the workers; the last one keeps the lead to tear down', async () => {
    const handed = setup();
    await handed.replica.start();
    handed.coordinator.lead(1);
    await settle();
    handed.coordinator.leaveOutcome = 'handed-over';
    expect(await handed.replica.leave()).toBe('handed-over');
    expect(handed.replica.leading).toBe(false);
    expect(handed.fleet.calls).toEqual(['takeOver(fresh)', 'standDown']);

    const last = setup();
    await last.replica.start();
    last.coordinator.lead(1);
    await settle();
    expect(await last.replica.leave()).toBe('last');
    expect(last.replica.leading).toBe(true);
    expect(last.autoscaler.running).toBe(false);
    expect(last.fleet.calls).toEqual(['takeOver(fresh)']);
  });
  it('leaving, it wins the election to decide who keeps the fleet: it takes the fleet over leaving, so nothing launches, and starts no autoscaler', async () => {
    const t = setup();
    await t.replica.start();
    t.coordinator.share(fleet([worker('w-1')], 2));
    t.coordinator.leadOnLeave = 3;
    expect(await t.replica.leave()).toBe('last');
    expect(t.replica.leading).toBe(true);
    expect(t.fleet.calls).toEqual(['takeOver(target 2, leaving)']);
    expect(t.autoscaler.running).toBe(false);
  });
});

describe('Replica, the last one out', () => {
  /** A leader of one worker that found nobody to hand the fleet to. */
  async function lastOneOut() {
    const t = setup();
    await t.replica.start();
    t.coordinator.share(fleet([worker('w-1')]));
    t.coordinator.lead(2);
    await settle();
    expect(await t.replica.leave()).toBe('last');
    return t;
  }

  it('writes the fleet as it ended before the record goes: a replica that leads next would otherwise tear down a worker again', async () => {
    const t = await lastOneOut();
    // The teardown's last changes wait for their write at the end of the turn, and retire() comes first.
    t.pool.setState('w-1', 'terminating', 'terminate');
    t.pool.setState('w-1', 'gone', 'terminated');
    await t.replica.retire();
    expect(t.coordinator.retired).toBe(true);
    // The last write says w-1 is gone (or names it no more), not that it is still running.
    expect(t.coordinator.writes.at(-1)!.workers.filter((w) => w.name === 'w-1' && w.state !== 'gone')).toEqual([]);
  });

  it('retires the shared fleet after the shutdown and publishes nothing more', async () => {
    const t = await lastOneOut();
    const writes = t.coordinator.writes.length;
    // The fleet's shutdown drains and tears down: then the record goes, and the next start adopts.
    t.pool.setState('w-1', 'draining', 'shutdown');
    await t.replica.retire();
    t.pool.setState('w-1', 'terminating', 'terminate');
    t.clock.advance(2000);
    await settle();
    expect(t.coordinator.retired).toBe(true);
    expect(t.coordinator.lastFleet()).toBeUndefined();
    expect(t.coordinator.writes.length).toBeLessThanOrEqual(writes + 1);
    expect(t.coordinator.writes.slice(writes).every((w) => w.workers[0]?.state !== 'terminating')).toBe(true);
  });
});
