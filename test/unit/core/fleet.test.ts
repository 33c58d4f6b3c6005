import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/core/clock.js';
import { FencedError } from '../../../src/core/coordination.js';
import { Fleet, type FleetOptions } from '../../../src/core/fleet.js';
import { MemoryLaunchLedger, type LaunchIntent, type LaunchLedger } from '../../../src/core/launch-ledger.js';
import { WorkerPool } from '../../../src/core/pool.js';
import type { TaskSpec, WorkerState } from '../../../src/core/types.js';
import { FakeProber } from '../../fakes/prober.js';
import { FakeProvisioner, fakeUrl } from '../../fakes/provisioner.js';
import { flush, runTo as runClockTo } from '../../helpers/virtual-time.js';

const TASK: TaskSpec = { path: '/tmp/task.yaml', run: 'engine', envs: {}, ports: [8000], raw: {} };
/** The names, capacity and timings every fleet of this file runs with. */
const TIMINGS = {
  namePrefix: 'w',
  capacity: 4,
  probeIntervalMs: 1000,
  unhealthyTimeoutMs: 10_000,
  drainTimeoutMs: 5000,
  retryDelayMs: 5000,
} satisfies Partial<FleetOptions>;

// Timings of every test: launch takes 3 s, probes every 1 s, unhealthy after 10 s,
// drain for at most 5 s, first relaunch 5 s after a failed launch.
function setup(over: Partial<FleetOptions> = {}) {
  const clock = new VirtualClock();
  const pool = new WorkerPool(clock);
  const provisioner = new FakeProvisioner(clock);
  provisioner.launchDelayMs = 3000;
  const prober = new FakeProber();
  const readyAt: string[] = [];
  const history: string[] = [];
  const logs: string[] = [];
  pool.onChange((c) => {
    if (c.reason !== 'added') history.push(`${clock.now()} ${c.worker.name} ${c.previous}→${c.worker.state}`);
  });
  const fleet = new Fleet({
    pool,
    provisioner,
    prober,
    task: TASK,
    clock,
    ...TIMINGS,
    onReady: (w) => readyAt.push(`${clock.now()} ${w.name}`),
    log: (level, msg) => logs.push(`${level} ${msg}`),
    ...over,
  });
  /** Moves virtual time to `until` in 100 ms steps, settling promises after each. */
  const runTo = (until: number): Promise<void> => runClockTo(clock, until);
  const states = (): Record<string, WorkerState> => Object.fromEntries(pool.list().map((w) => [w.name, w.state]));
  return { clock, pool, provisioner, prober, fleet, readyAt, history, logs, runTo, states };
}

describe('Fleet: launch and readiness', () => {
  it('walks provisioning → starting → ready, probing every interval until 200', async () => {
    const f = setup();
    f.prober.set(fakeUrl('w-1'), false);
    f.fleet.scaleTo(1);
    const timeline: Array<[number, Record<string, WorkerState>, () => void]> = [
      [0, { 'w-1': 'provisioning' }, () => {}],
      [2900, { 'w-1': 'provisioning' }, () => {}],
      [3000, { 'w-1': 'starting' }, () => {}], // launched, first probe fails
      [5500, { 'w-1': 'starting' }, () => f.prober.set(fakeUrl('w-1'), true)],
      [6000, { 'w-1': 'ready' }, () => {}], // the 6 s probe passes
    ];
    for (const [at, want, then] of timeline) {
      await f.runTo(at);
      expect(f.states(), `at ${at} ms`).toEqual(want);
      then();
    }
    expect(f.readyAt).toEqual(['6000 w-1']);
    expect(f.pool.get('w-1')).toMatchObject({ url: fakeUrl('w-1'), detail: { fake: 'yes' }, capacity: 4 });
    // Probes at 3, 4, 5, 6 s.
    expect(f.prober.count(fakeUrl('w-1'))).toBe(4);
    expect(f.pool.candidates().map((w) => w.name)).toEqual(['w-1']);
  });

  it('names workers <prefix>-<n> with the smallest unused n', async () => {
    const f = setup();
    f.fleet.scaleTo(3);
    await f.runTo(4000);
    expect(Object.keys(f.states()).sort()).toEqual(['w-1', 'w-2', 'w-3']);
    await f.fleet.remove('w-2');
    expect(f.fleet.target).toBe(2);
    const w = f.fleet.launch();
    expect(w.name).toBe('w-2');
    expect(f.fleet.target).toBe(3);
    expect(() => f.fleet.launch('w-1')).toThrow(/already exists/);
  });

  it('a ready worker failing a probe goes not_ready, comes back on a pass, and takes no traffic meanwhile', async () => {
    const f = setup();
    f.fleet.scaleTo(1);
    await f.runTo(3000);
    expect(f.states()).toEqual({ 'w-1': 'ready' });
    f.prober.set(fakeUrl('w-1'), false);
    await f.runTo(4000);
    expect(f.states()).toEqual({ 'w-1': 'not_ready' });
    expect(f.pool.candidates()).toEqual([]);
    f.prober.set(fakeUrl('w-1'), true);
    await f.runTo(5000);
    expect(f.states()).toEqual({ 'w-1': 'ready' });
    expect(f.readyAt).toEqual(['3000 w-1', '5000 w-1']);
  });
});

describe('Fleet: replacement', () => {
  it('replaces a worker not_ready for the unhealthy timeout', async () => {
    const f = setup();
    f.fleet.scaleTo(1);
    await f.runTo(3000);
    f.prober.set(fakeUrl('w-1'), false);
    await f.runTo(4000); // not_ready since 4 s
    await f.runTo(13_900);
    expect(f.states()).toEqual({ 'w-1': 'not_ready' });
    await f.runTo(14_000); // 10 s not_ready: drained (nothing in flight), terminated, replaced
    expect(f.states()).toEqual({ 'w-2': 'provisioning' });
    expect(f.provisioner.alive).toEqual(['w-2']);
    await f.runTo(17_000);
    expect(f.states()).toEqual({ 'w-2': 'ready' });
    expect(f.fleet.stats).toMatchObject({ launched: 2, replaced: 1, terminated: 1 });
    expect(f.history.filter((h) => h.includes('w-1 '))).toEqual([
      '3000 w-1 provisioning→starting',
      '3000 w-1 starting→ready',
      '4000 w-1 ready→not_ready',
      '14000 w-1 not_ready→draining',
      '14000 w-1 draining→terminating',
      '14000 w-1 terminating→gone',
    ]);
  });

  it('replaces a worker that never becomes ready, even when its probes hang', async () => {
    const f = setup();
    f.prober.hang = true;
    f.fleet.scaleTo(1);
    await f.runTo(12_900);
    expect(f.states()).toEqual({ 'w-1': 'starting' });
    expect(f.prober.count(fakeUrl('w-1'))).toBe(1); // one hung probe, not one per tick
    await f.runTo(13_000);
    expect(f.states()).toEqual({ 'w-2': 'provisioning' });
    expect(f.fleet.stats.replaced).toBe(1);
  });

  it('replaces a worker reported lost', async () => {
    const f = setup();
    f.fleet.scaleTo(1);
    await f.runTo(3000);
    f.fleet.lost('w-1', 'process exited with code 1');
    await f.runTo(3100);
    expect(f.states()).toEqual({ 'w-2': 'provisioning' });
    expect(f.provisioner.count('terminate', 'w-1')).toBe(1);
  });
});

describe('Fleet: launch failures', () => {
  it('marks a failed launch failed, tears down its partial cluster, and retries with backoff', async () => {
    const f = setup();
    f.provisioner.launchScript.push(true, true); // the first two launches fail
    f.fleet.scaleTo(1);
    await f.runTo(3000);
    // Failed at 3 s; the INIT cluster the launch left behind is gone.
    expect(f.history).toEqual([
      '3000 w-1 provisioning→failed',
      '3000 w-1 failed→terminating',
      '3000 w-1 terminating→gone',
    ]);
    expect(f.provisioner.alive).toEqual([]);
    expect(f.fleet.stats.launchFailures).toBe(1);
    // Backoff 5 s, then 10 s: launches at 0, 8 s (fails at 11 s), 21 s.
    f.fleet.scaleTo(1); // an autoscaler tick does not skip the backoff
    await f.runTo(30_000);
    expect(f.provisioner.calls.filter((c) => c.op === 'launch').map((c) => c.at)).toEqual([0, 8000, 21_000]);
    expect(f.states()).toEqual({ 'w-1': 'ready' });
    expect(f.fleet.stats).toMatchObject({ launched: 3, launchFailures: 2, terminated: 2 });
  });

  it('a ready worker resets the backoff', async () => {
    const f = setup();
    f.provisioner.launchScript.push(true, false, true); // fail, ok, fail
    f.fleet.scaleTo(1);
    await f.runTo(11_000); // relaunch at 8 s, ready at 11 s
    expect(f.states()).toEqual({ 'w-1': 'ready' });
    f.fleet.scaleTo(2); // w-2 launches at 11 s, fails at 14 s: next try 5 s later, not 10 s
    await f.runTo(20_000);
    expect(f.provisioner.calls.filter((c) => c.op === 'launch').map((c) => c.at)).toEqual([0, 8000, 11_000, 19_000]);
  });

  it('retries a failed launch under the same name with backoff, then gives up and launches a new name', async () => {
    // 2 retries; launch 3 s, base delay 5 s, jitter factor 0.8 + 0.4 × 0.5 = 1 (exact delays).
    const f = setup({ maxLaunchRetries: 2, random: () => 0.5 });
    f.provisioner.launchScript.push(true, true, true); // w-1 fails three times; then launches succeed
    f.fleet.scaleTo(1);
    const timeline: Array<[number, Record<string, WorkerState>, string[]]> = [
      [2900, { 'w-1': 'provisioning' }, ['0 launch w-1']],
      [3000, { 'w-1': 'provisioning' }, ['3000 terminate w-1']], // torn down, retry in 5 s
      [8000, { 'w-1': 'provisioning' }, ['8000 launch w-1']],
      [11_000, { 'w-1': 'provisioning' }, ['11000 terminate w-1']], // retry in 10 s
      [21_000, { 'w-1': 'provisioning' }, ['21000 launch w-1']],
      // Third failure: given up, torn down, kept as `failed`; a new name after the 5 s fleet backoff.
      [24_000, { 'w-1': 'failed' }, ['24000 terminate w-1']],
      [29_000, { 'w-1': 'failed', 'w-2': 'provisioning' }, ['29000 launch w-2']],
      [32_000, { 'w-1': 'failed', 'w-2': 'ready' }, []],
    ];
    let seen = 0;
    for (const [at, want, calls] of timeline) {
      await f.runTo(at);
      expect(f.states(), `at ${at} ms`).toEqual(want);
      const next = f.provisioner.calls.slice(seen).filter((c) => c.op !== 'list');
      expect(
        next.map((c) => `${c.at} ${c.op} ${c.name}`),
        `at ${at} ms`,
      ).toEqual(calls);
      seen = f.provisioner.calls.length;
    }
    expect(f.provisioner.alive).toEqual(['w-2']);
    expect(f.pool.get('w-1')?.detail).toMatchObject({ attempt: '2', last_error: 'no capacity for w-1' });
    expect(f.fleet.stats).toMatchObject({ launched: 2, launchFailures: 3, launchGiveUps: 1 });
    expect(f.logs.some((l) => l.startsWith('error fleet: giving up on w-1 after 3 failed launch attempts'))).toBe(true);
  });

  it('a retried launch whose teardown fails: the cluster stays tracked for shutdown, and the next name waits the backoff', async () => {
    // Every launch fails and every teardown fails (1 attempt each): the fleet may not ask for a
    // new cluster every few seconds, and must not forget the ones it could not tear down.
    const f = setup({ maxLaunchRetries: 1, terminateAttempts: 1, random: () => 0.5 });
    f.provisioner.launchScript.push(...Array<boolean>(20).fill(true));
    f.provisioner.failTerminates = 1000;
    f.fleet.scaleTo(1);
    await f.runTo(60_000);
    const launches = f.provisioner.calls.filter((c) => c.op === 'launch').map((c) => `${c.at} ${c.name}`);
    // w-1 fails at 3 s and is not torn down; w-2 after the 5 s backoff, w-3 after 10 s, w-4 after 20 s.
    expect(launches).toEqual(['0 w-1', '8000 w-2', '21000 w-3', '44000 w-4']);
    expect(f.fleet.unterminated()).toEqual(['w-1', 'w-2', 'w-3', 'w-4']);
    // Each is torn down again every minute; a cluster given up on counts once, however often.
    await f.runTo(130_000);
    const tries = f.provisioner.calls.filter((c) => c.op === 'terminate' && c.name === 'w-1').map((c) => c.at);
    expect(tries).toEqual([3000, 63_000, 123_000]);
    expect(f.fleet.stats.teardownGiveUps).toBe(f.fleet.unterminated().length);
    f.provisioner.failTerminates = 0;
    await f.fleet.shutdown();
    expect(f.fleet.unterminated()).toEqual([]);
    expect(f.provisioner.alive).toEqual([]);
  });

  it('jitter scales each backoff by 0.8..1.2', async () => {
    for (const [r, wantRelaunchAt] of [
      [0, 3000 + 4000], // 5 s × 0.8
      [0.75, 3000 + 5500], // 5 s × 1.1
    ] as const) {
      const f = setup({ maxLaunchRetries: 1, random: () => r });
      f.provisioner.launchScript.push(true);
      f.fleet.scaleTo(1);
      await f.runTo(10_000);
      expect(f.provisioner.calls.filter((c) => c.op === 'launch').map((c) => c.at)).toEqual([0, wantRelaunchAt]);
    }
  });

  it('a cluster that will not go away is reported as unterminated until a later teardown works', async () => {
    const f = setup({ terminateAttempts: 2 });
    f.fleet.scaleTo(1);
    await f.runTo(3000);
    f.provisioner.failTerminates = 2;
    void f.fleet.remove('w-1');
    await f.runTo(10_000);
    expect(f.states()).toEqual({ 'w-1': 'failed' });
    expect(f.fleet.unterminated()).toEqual(['w-1']);
    expect(f.fleet.stats).toMatchObject({ terminateFailures: 2, teardownGiveUps: 1 });
    expect(f.logs.some((l) => l.startsWith('error fleet: could not terminate w-1 after 2 attempts'))).toBe(true);
    await f.fleet.shutdown(); // tries again, and this time the cluster goes
    expect(f.fleet.unterminated()).toEqual([]);
    expect(f.provisioner.alive).toEqual([]);
  });

  it('retries a failing terminate and counts it', async () => {
    const f = setup();
    f.fleet.scaleTo(1);
    await f.runTo(3000);
    f.provisioner.failTerminates = 1;
    const removed = f.fleet.remove('w-1');
    await f.runTo(4000);
    expect(f.states()).toEqual({ 'w-1': 'failed' });
    await f.runTo(8000); // retried 5 s after the first attempt
    await expect(removed).resolves.toBe('w-1');
    expect(f.states()).toEqual({});
    expect(f.provisioner.calls.filter((c) => c.op === 'terminate').map((c) => c.at)).toEqual([3000, 8000]);
    expect(f.fleet.stats).toMatchObject({ terminateFailures: 1, terminated: 1 });
  });
});

describe('Fleet: scale-down and drain', () => {
  async function twoReady() {
    const f = setup();
    f.fleet.scaleTo(2);
    await f.runTo(3000);
    expect(f.states()).toEqual({ 'w-1': 'ready', 'w-2': 'ready' });
    return f;
  }

  it('drains the worker with the fewest in flight and terminates it when they finish', async () => {
    const f = await twoReady();
    const [w1, w2] = [f.pool.get('w-1')!, f.pool.get('w-2')!];
    f.pool.acquire(w1);
    f.pool.acquire(w1);
    f.pool.acquire(w2);
    f.fleet.scaleTo(1);
    expect(f.states()).toEqual({ 'w-1': 'ready', 'w-2': 'draining' });
    expect(f.pool.candidates().map((w) => w.name)).toEqual(['w-1']);
    await f.runTo(4500);
    expect(f.states()).toEqual({ 'w-1': 'ready', 'w-2': 'draining' });
    f.pool.release(w2);
    f.fleet.notifyRelease();
    await flush();
    expect(f.states()).toEqual({ 'w-1': 'ready' });
    expect(f.provisioner.alive).toEqual(['w-1']);
  });

  it('without a release notification, the drain poll notices within one probe interval', async () => {
    const f = await twoReady();
    const w2 = f.pool.get('w-2')!;
    f.pool.acquire(w2);
    f.pool.acquire(f.pool.get('w-1')!);
    f.pool.acquire(f.pool.get('w-1')!);
    f.fleet.scaleTo(1);
    await f.runTo(3500);
    f.pool.release(w2);
    await f.runTo(3900);
    expect(f.states()['w-2']).toBe('draining');
    await f.runTo(4000);
    expect(f.states()['w-2']).toBeUndefined();
  });

  it('terminates at the drain timeout when requests never finish', async () => {
    const f = await twoReady();
    f.pool.acquire(f.pool.get('w-1')!);
    f.pool.acquire(f.pool.get('w-1')!);
    f.pool.acquire(f.pool.get('w-2')!);
    f.fleet.scaleTo(1);
    await f.runTo(7900);
    expect(f.states()['w-2']).toBe('draining');
    await f.runTo(8000);
    expect(f.states()).toEqual({ 'w-1': 'ready' });
    expect(f.logs.some((l) => l.startsWith('warn') && l.includes('still had 1 in flight'))).toBe(true);
  });

  it('prefers non-ready workers as victims, and cancels a launch still provisioning', async () => {
    const table: Array<{ label: string; prepare: (f: ReturnType<typeof setup>) => Promise<void>; victim: string }> = [
      {
        label: 'not_ready beats ready',
        prepare: async (f) => {
          f.prober.set(fakeUrl('w-2'), false);
          await f.runTo(3000);
        },
        victim: 'w-2',
      },
      {
        label: 'fewest in flight among ready',
        prepare: async (f) => {
          await f.runTo(3000);
          f.pool.acquire(f.pool.get('w-2')!);
        },
        victim: 'w-1',
      },
      {
        label: 'provisioning beats ready',
        prepare: async (f) => {
          await f.runTo(3000);
          f.fleet.launch(); // w-3, provisioning; target 3
          f.fleet.scaleTo(3);
        },
        victim: 'w-3',
      },
    ];
    for (const { label, prepare, victim } of table) {
      const f = setup();
      f.fleet.scaleTo(2);
      await prepare(f);
      f.fleet.scaleTo(f.fleet.target - 1);
      await f.runTo(f.clock.now() + 100);
      expect(Object.keys(f.states()), label).not.toContain(victim);
      expect(f.fleet.live().length, label).toBe(f.fleet.target);
    }
  });

  it('a launch cancelled while provisioning is not counted as a failure and its cluster is torn down', async () => {
    const f = setup();
    f.fleet.scaleTo(2);
    await f.runTo(1000);
    f.fleet.scaleTo(1);
    await f.runTo(1100);
    expect(f.states()).toEqual({ 'w-1': 'provisioning' });
    expect(f.provisioner.alive).toEqual(['w-1']);
    expect(f.fleet.stats.launchFailures).toBe(0);
    expect(f.history).toContain('1000 w-2 provisioning→terminating');
  });
});

describe('Fleet: shutdown', () => {
  it('drains and terminates every worker, in whatever state', async () => {
    const f = setup();
    f.fleet.scaleTo(2);
    await f.runTo(3000); // w-1, w-2 ready
    f.pool.acquire(f.pool.get('w-1')!);
    f.fleet.launch(); // w-3 provisioning
    let done = false;
    const shut = f.fleet.shutdown().then(() => {
      done = true;
    });
    await f.runTo(3100);
    expect(f.states()).toEqual({ 'w-1': 'draining' });
    expect(done).toBe(false);
    await f.runTo(8000); // the 5 s drain timeout of w-1
    await shut;
    expect(f.states()).toEqual({});
    expect(f.provisioner.alive).toEqual([]);
    expect(() => f.fleet.launch()).toThrow(/shutting down/);
    expect(f.clock.pendingTimers).toBe(0);
  });

  it('with keepWorkers leaves running workers up but tears down launches in progress', async () => {
    const f = setup();
    f.fleet.scaleTo(1);
    await f.runTo(3000);
    f.fleet.launch(); // w-2 provisioning
    await f.fleet.shutdown({ keepWorkers: true });
    expect(f.provisioner.alive).toEqual(['w-1']);
    expect(f.states()).toEqual({ 'w-1': 'draining' });
    await f.runTo(20_000);
    expect(f.provisioner.count('terminate', 'w-1')).toBe(0);
  });
});

describe('Fleet: adopt', () => {
  it('adopts UP clusters with endpoints, tears down the rest, leaves foreign names alone', async () => {
    const f = setup();
    f.provisioner.seed('w-1', 'UP');
    f.provisioner.seed('w-2', 'INIT');
    f.provisioner.seed('w-3', 'STOPPED');
    f.provisioner.seed('w-4', 'UP', false);
    f.provisioner.seed('w-other', 'UP');
    const result = await f.fleet.adopt();
    expect(result).toEqual({
      adopted: ['w-1'],
      terminated: ['w-2', 'w-3', 'w-4'],
      ignored: ['w-other'],
      reinitialized: [],
      inherited: [],
    });
    await f.runTo(100);
    expect(f.states()).toEqual({ 'w-1': 'ready' });
    expect(f.provisioner.alive).toEqual(['w-1', 'w-other']);
    // Adoption raises the target to what it kept.
    expect(f.fleet.target).toBe(1);
    f.fleet.scaleTo(2);
    await f.runTo(3100);
    expect(f.states()).toEqual({ 'w-1': 'ready', 'w-2': 'ready' });
  });

  it('an unusable cluster that will not go away (a crashed gateway’s launch holds it) is torn down again each minute, and once more at shutdown', async () => {
    const f = setup({ terminateAttempts: 1 });
    f.provisioner.seed('w-1', 'INIT');
    f.provisioner.failTerminates = 2; // the launch holds the cluster's lock for 2 minutes
    await f.fleet.adopt();
    f.fleet.scaleTo(1);
    await f.runTo(119_900);
    expect(f.provisioner.alive).toEqual(['w-1', 'w-2']);
    expect(f.fleet.unterminated()).toEqual(['w-1']);
    await f.runTo(120_000); // the third try: the lock is free
    expect(f.provisioner.alive).toEqual(['w-2']);
    expect(f.fleet.unterminated()).toEqual([]);
    const tries = f.provisioner.calls.filter((c) => c.op === 'terminate' && c.name === 'w-1').map((c) => c.at);
    expect(tries).toEqual([0, 60_000, 120_000]);
    // Its name was not reused while it stood.
    expect(f.states()).toEqual({ 'w-2': 'ready' });

    const g = setup({ terminateAttempts: 1 });
    g.provisioner.seed('w-1', 'INIT');
    g.provisioner.failTerminates = 1;
    await g.fleet.adopt();
    await g.runTo(10_000); // waiting to try again
    await g.fleet.shutdown(); // does not wait out the minute: one last try now, and it goes
    expect(g.clock.now()).toBe(10_000);
    expect(g.provisioner.alive).toEqual([]);
  });

  it('a cluster whose worker is listed only as failed runs after all: adopted if up, else torn down once', async () => {
    const f = setup();
    // Given up on by an earlier leader (as the mirrored fleet lists them), yet their clusters are listed.
    for (const name of ['w-4', 'w-5', 'w-6']) {
      f.pool.add(name, 4, 'provisioning');
      f.pool.setState(
        name,
        'failed',
        'launch failed: the previous leader’s launch never reached the provisioner’s list',
      );
    }
    f.provisioner.seed('w-4', 'UP');
    f.provisioner.seed('w-5', 'INIT');
    f.fleet.own();
    const result = await f.fleet.adopt();
    expect(result).toMatchObject({ adopted: ['w-4'], terminated: ['w-5'], inherited: [] });
    await f.runTo(2000);
    expect(f.states()).toEqual({ 'w-4': 'ready', 'w-6': 'failed' }); // w-6: no cluster, a record only
    expect(f.provisioner.alive).toEqual(['w-4']);
    expect(f.provisioner.count('terminate', 'w-5')).toBe(1);
    expect(f.provisioner.count('terminate', 'w-4')).toBe(0);
  });

  it('with reinit cancels the jobs of UP clusters and launches the task on them again', async () => {
    const f = setup();
    f.provisioner.seed('w-1', 'UP');
    f.provisioner.seed('w-2', 'STOPPED');
    const result = await f.fleet.adopt({ reinit: true });
    expect(result).toMatchObject({ adopted: [], reinitialized: ['w-1'], terminated: ['w-2'] });
    expect(f.states()).toEqual({ 'w-1': 'provisioning' });
    await f.runTo(3000);
    expect(f.states()).toEqual({ 'w-1': 'ready' });
    expect(f.provisioner.calls.map((c) => `${c.at} ${c.op} ${c.name}`)).toEqual([
      '0 list w',
      '0 cancelJobs w-1',
      '0 terminate w-2',
      '0 launch w-1', // after the cancel
    ]);
    expect(f.fleet.target).toBe(1);
  });

  it('an adopted worker that never answers is replaced like any other', async () => {
    const f = setup();
    f.provisioner.seed('w-5', 'UP');
    f.prober.set(fakeUrl('w-5'), false);
    await f.fleet.adopt();
    f.fleet.scaleTo(1);
    await f.runTo(10_000);
    expect(f.states()).toEqual({ 'w-1': 'provisioning' });
    expect(f.provisioner.alive).toEqual(['w-1']);
  });
});

describe('Fleet: manual control', () => {
  it('remove() without a name picks like scale-down and lowers the target; bad input is refused', async () => {
    const f = setup();
    f.fleet.scaleTo(2);
    await f.runTo(3000);
    f.pool.acquire(f.pool.get('w-1')!);
    await expect(f.fleet.remove()).resolves.toBe('w-2');
    expect(f.fleet.target).toBe(1);
    await f.runTo(10_000);
    expect(f.states()).toEqual({ 'w-1': 'ready' }); // not relaunched
    expect(() => f.fleet.scaleTo(-1)).toThrow(/≥ 0/);
    expect(() => f.fleet.scaleTo(1.5)).toThrow(/whole number/);
    await expect(f.fleet.remove('w-9')).rejects.toThrow(/unknown worker w-9/);
    await expect(f.fleet.drain('w-9')).rejects.toThrow(/unknown worker w-9/);
  });

  // [what happened, how, the reason of w-2's ready → draining and in the log]
  const drains: [string, (f: ReturnType<typeof setup>) => unknown, string][] = [
    ['the target fell', (f) => f.fleet.scaleTo(1), 'scale-down'],
    ['an operator removed it', (f) => f.fleet.remove('w-2'), 'removed'],
    ['an operator drained it', (f) => f.fleet.drain('w-2'), 'drained'],
    ['the gateway shut down', (f) => f.fleet.shutdown(), 'shutdown'],
    [
      'the gateway shut down keeping workers',
      (f) => f.fleet.shutdown({ keepWorkers: true }),
      'shutdown (keeping workers)',
    ],
  ];
  it.each(drains)('a drain says why: %s → (%s)', async (_what, act, reason) => {
    const f = setup();
    const changes: string[] = [];
    f.pool.onChange((c) => {
      if (c.worker.name === 'w-2' && c.worker.state === 'draining') changes.push(c.reason);
    });
    f.fleet.scaleTo(2);
    await f.runTo(3000);
    void act(f);
    expect(changes).toEqual([reason]);
    expect(f.logs).toContain(`info fleet: draining w-2 (${reason}; 0 in flight)`);
  });
});

describe('Fleet among several gateway replicas: taking over and standing down', () => {
  /** A follower's pool, as the previous leader's last fleet write left it. */
  function mirrored(f: ReturnType<typeof setup>): void {
    const add = (name: string, path: WorkerState[]): void => {
      const w = f.pool.add(name, 4, 'provisioning');
      w.url = fakeUrl(name);
      for (const s of path) f.pool.setState(name, s, 'as the leader reports');
    };
    add('w-1', ['starting', 'ready']);
    add('w-2', ['starting', 'ready', 'draining']);
    add('w-3', []);
    for (const name of ['w-1', 'w-2', 'w-3']) f.provisioner.seed(name, name === 'w-3' ? 'INIT' : 'UP');
  }

  it('own + adopt: serving workers stay as they are, a drain goes on, a launch of the old leader is awaited, not redone', async () => {
    const f = setup();
    mirrored(f);
    f.fleet.own();
    const adopted = await f.fleet.adopt();
    // w-2 had nothing in flight: its drain is over at once, and its teardown under way.
    expect(f.states()).toMatchObject({ 'w-1': 'ready', 'w-3': 'provisioning' });
    // w-3 was the previous leader's launch, its cluster still INIT: awaited, neither torn down nor launched again.
    expect(adopted).toMatchObject({ adopted: [], terminated: [], inherited: ['w-3'] });
    f.fleet.scaleTo(2);
    f.provisioner.seed('w-3', 'UP'); // the previous leader's `sky launch` finishes
    await f.runTo(8000);
    expect(f.provisioner.count('launch')).toBe(0);
    expect(f.provisioner.count('terminate')).toBe(1); // w-2, whose drain the previous leader began
    expect(f.provisioner.alive).toEqual(['w-1', 'w-3']);
    expect(f.states()).toEqual({ 'w-1': 'ready', 'w-3': 'ready' });
    // w-1 is probed by this fleet now.
    expect(f.prober.count(fakeUrl('w-1'))).toBeGreaterThan(0);
  });

  // [how the leaving replica shuts the fleet down, the teardowns of w-2 it makes, what runs after]
  const leavingTakeovers: [string, boolean, number, string[]][] = [
    ['keeping workers', true, 0, ['w-1', 'w-2']],
    ['tearing them down', false, 1, []],
  ];
  it.each(leavingTakeovers)(
    'a replica that leads on its way out leaves a draining worker to its shutdown, %s',
    async (_how, keepWorkers, teardowns, alive) => {
      // w-2 shows as draining: a scale-down under way, or a worker the last replica out kept.
      const f = setup();
      mirrored(f);
      f.provisioner.seed('w-3', 'UP');
      f.fleet.own({ leaving: true });
      await f.fleet.adopt();
      await f.runTo(8000);
      expect(f.provisioner.count('terminate', 'w-2')).toBe(0);
      await f.fleet.shutdown({ keepWorkers });
      await f.runTo(20_000);
      expect(f.provisioner.count('terminate', 'w-2')).toBe(teardowns);
      expect(f.provisioner.alive.filter((n) => n !== 'w-3')).toEqual(alive);
    },
  );

  it('a teardown the previous leader began: a cluster already gone is not torn down again nor its record awaited, and what serves stays meanwhile', async () => {
    // w-4's launch ended and the previous leader tore it down, but left before it cleared the
    // record; w-5's teardown it began and did not finish.
    const intents = new Map<string, LaunchIntent>([['w-4', { name: 'w-4', leader: 'old', term: 1 }]]);
    const store = new MemoryLaunchLedger(
      () => {},
      () => ({ leader: 'new', term: 2 }),
      intents,
    );
    // The store's read and the provisioner's list take time: the teardown's look-up ends between them and adopt()'s.
    const launches: LaunchLedger = {
      record: (name) => store.record(name),
      clear: (name) => store.clear(name),
      open: async () => {
        const open = await store.open();
        await new Promise<void>((resolve) => f.clock.setTimer(300, resolve));
        return open;
      },
    };
    const f = setup({ launches });
    f.provisioner.listDelayMs = 500;
    const w1 = f.pool.add('w-1', 4, 'provisioning');
    w1.url = fakeUrl('w-1');
    f.pool.setState('w-1', 'starting', 'as the leader reports');
    f.pool.setState('w-1', 'ready', 'as the leader reports');
    f.provisioner.seed('w-1', 'UP');
    for (const name of ['w-4', 'w-5']) {
      f.pool.add(name, 4, 'provisioning');
      f.pool.setState(name, 'terminating', 'as the leader reports');
    }
    f.provisioner.seed('w-5', 'INIT');
    f.fleet.own();
    const adopting = f.fleet.adopt();
    await f.runTo(1000);
    const adopted = await adopting;
    f.fleet.scaleTo(1);
    await f.runTo(80_000);
    expect(adopted).toMatchObject({ adopted: [], terminated: [], inherited: [] });
    expect(f.provisioner.count('terminate', 'w-4')).toBe(0);
    expect(f.provisioner.count('terminate', 'w-5')).toBe(1);
    expect(f.provisioner.count('launch')).toBe(0);
    expect(f.states()).toEqual({ 'w-1': 'ready' });
    expect(f.provisioner.alive).toEqual(['w-1']);
    expect([...intents.keys()]).toEqual([]);
    expect(f.logs).toContain('info fleet: w-4 is already torn down');
  });

  it('standDown: launches are aborted, nothing is torn down, late callbacks change nothing', async () => {
    const f = setup();
    f.fleet.scaleTo(2);
    await f.runTo(4000);
    expect(f.states()).toEqual({ 'w-1': 'ready', 'w-2': 'ready' });
    f.fleet.scaleTo(3); // w-3 launching
    f.pool.acquire(f.pool.get('w-2')!);
    void f.fleet.drain('w-2'); // w-2 draining, a request in flight
    const before = f.provisioner.calls.length;
    f.fleet.standDown();
    await f.runTo(20_000);
    expect(f.provisioner.calls.slice(before)).toEqual([]);
    // The pool stays as the fleet left it (the replica mirrors the new leader's fleet over it).
    expect(f.states()).toMatchObject({ 'w-1': 'ready', 'w-2': 'draining', 'w-3': 'provisioning' });
    expect(f.fleet.live()).toEqual([]);
    expect(f.fleet.target).toBe(0);
  });

  it('a fenced provisioner call is not made, and a fenced teardown is no leak', async () => {
    let leading = true;
    const f = setup({
      fence: (action) =>
        leading ? Promise.resolve() : Promise.reject(new FencedError(action, 'another replica leads now')),
    });
    f.fleet.scaleTo(1);
    await f.runTo(4000);
    leading = false;
    void f.fleet.drain('w-1');
    await f.runTo(30_000);
    expect(f.provisioner.count('terminate')).toBe(0);
    expect(f.fleet.unterminated()).toEqual([]);
    expect(f.fleet.stats).toMatchObject({ terminateFailures: 0, teardownGiveUps: 0 });
    expect(f.logs.some((l) => l.includes('not tearing down w-1: another replica leads now'))).toBe(true);
  });
});

describe('Fleet among several gateway replicas: a launch the previous leader left under way', () => {
  /**
   * Two leaders of one fleet, one after the other, on one clock, one provisioner (the clouds) and
   * one launch ledger (the store). The old leader runs 3 workers and starts a 4th at 10 s; its
   * launch takes 3 s. At `killAt` the old leader dies (SIGKILL): it makes no call from then on,
   * but its launch goes on (a `sky launch` outlives its gateway). The new leader's pool mirrors
   * what the old one last published, `published`, and it takes over at `takeOverAt`.
   */
  async function failover(opts: {
    killAt: number;
    takeOverAt: number;
    published: Record<string, WorkerState>;
    target: number;
    unlistedMs?: number;
    recordOnly?: boolean;
    /** The old leader's launch of w-4 never ends (the cloud never delivers). */
    hangs?: boolean;
  }) {
    const old = setup();
    const { clock, provisioner, prober } = old;
    provisioner.unlistedMs = opts.unlistedMs ?? 0;
    const intents = new Map<string, LaunchIntent>();
    let oldAlive = true;
    const ledger = (leader: string, leading: () => boolean): MemoryLaunchLedger =>
      new MemoryLaunchLedger(
        (action) => {
          if (!leading()) throw new FencedError(action, `${leader} does not lead`);
        },
        () => ({ leader, term: leader === 'old' ? 1 : 2 }),
        intents,
      );
    const oldFleet = new Fleet({
      pool: old.pool,
      provisioner,
      prober,
      task: TASK,
      clock,
      ...TIMINGS,
      fence: (action) => (oldAlive ? Promise.resolve() : Promise.reject(new FencedError(action, 'dead'))),
      launches: ledger('old', () => oldAlive),
      onLaunchAbandoned: (name) => abandoned.push(name),
    });
    const abandoned: string[] = [];
    oldFleet.scaleTo(3);
    await old.runTo(10_000);
    if (opts.recordOnly) {
      // It recorded the launch and died before `sky launch` ran.
      intents.set('w-4', { name: 'w-4', leader: 'old', term: 1 });
    } else {
      if (opts.hangs) provisioner.launchDelayMs = 1e9;
      oldFleet.scaleTo(4);
    }
    await old.runTo(opts.killAt);
    provisioner.launchDelayMs = 3000;
    oldAlive = false;

    const pool = new WorkerPool(clock);
    for (const [name, state] of Object.entries(opts.published)) {
      const w = pool.add(name, 4, 'provisioning');
      if (state === 'ready') {
        w.url = fakeUrl(name);
        pool.setState(name, 'starting', 'as the leader reports');
        pool.setState(name, 'ready', 'as the leader reports');
      }
    }
    const logs: string[] = [];
    const fleet = new Fleet({
      pool,
      provisioner,
      prober,
      task: TASK,
      clock,
      ...TIMINGS,
      launches: ledger('new', () => true),
      launchTimeoutMs: 120_000,
      log: (level, msg) => logs.push(`${clock.now()} ${level} ${msg}`),
    });
    await old.runTo(opts.takeOverAt);
    fleet.own();
    const adopted = await fleet.adopt();
    fleet.scaleTo(opts.target);
    const runTo = (until: number): Promise<void> => runClockTo(clock, until);
    const states = (): Record<string, WorkerState> => Object.fromEntries(pool.list().map((w) => [w.name, w.state]));
    /** Every launch and teardown the clouds saw, from the new leader's takeover on. */
    const since = provisioner.calls.length;
    const actions = (): string[] =>
      provisioner.calls
        .slice(since)
        .filter((c) => c.op !== 'list')
        .map((c) => `${c.at} ${c.op} ${c.name}`);
    return { clock, provisioner, fleet, oldFleet, abandoned, pool, adopted, intents, logs, runTo, states, actions };
  }

  const ready3 = { 'w-1': 'ready', 'w-2': 'ready', 'w-3': 'ready' } as const;

  // The old leader's launch of w-4 runs from 10 s to 13 s; the new leader takes over at 11 s.
  it.each([
    ['INIT at the takeover, not in the last fleet write', { unlistedMs: 0, published: ready3 }],
    ['not yet listed at the takeover, not in the last fleet write', { unlistedMs: 1500, published: ready3 }],
    [
      'INIT at the takeover, provisioning in the last fleet write',
      { unlistedMs: 0, published: { ...ready3, 'w-4': 'provisioning' as const } },
    ],
  ])(
    'the old leader killed mid-launch, its cluster %s: awaited and adopted, launched once, never torn down',
    async (_, o) => {
      const f = await failover({ killAt: 10_500, takeOverAt: 11_000, target: 4, ...o });
      const atTakeover = f.states();
      await f.runTo(30_000);
      expect(f.actions()).toEqual([]); // no launch in its place, no teardown
      expect(f.provisioner.count('launch', 'w-4')).toBe(1);
      expect(f.adopted).toMatchObject({ adopted: [], terminated: [], inherited: ['w-4'] });
      expect(atTakeover).toMatchObject({ 'w-4': 'provisioning' });
      expect(f.states()).toEqual({ ...ready3, 'w-4': 'ready' });
      expect(f.provisioner.alive).toEqual(['w-1', 'w-2', 'w-3', 'w-4']);
      expect([...f.intents.keys()]).toEqual([]); // up: its record is cleared
      await f.fleet.shutdown();
      expect(f.provisioner.alive).toEqual([]);
      expect(['w-1', 'w-2', 'w-3', 'w-4'].map((n) => f.provisioner.count('terminate', n))).toEqual([1, 1, 1, 1]);
    },
  );

  it('a scale-down of a launch under way waits for the launch to end, then tears its cluster down once', async () => {
    // The old leader's last write still said 3.
    const f = await failover({ killAt: 10_500, takeOverAt: 11_000, target: 3, published: ready3 });
    expect(f.states()).toMatchObject({ 'w-4': 'terminating' });
    await f.runTo(30_000);
    // The launch ended at 13 s; the next look at the list (every 5 s from the takeover) finds it up.
    expect(f.actions()).toEqual(['16000 terminate w-4']);
    expect(f.states()).toEqual(ready3);
    expect(f.provisioner.alive).toEqual(['w-1', 'w-2', 'w-3']);
    expect([...f.intents.keys()]).toEqual([]);
  });

  it('a launch recorded whose command never ran: awaited 60 s, then replaced under a new name; its name is not reused', async () => {
    const f = await failover({ killAt: 10_500, takeOverAt: 11_000, target: 4, published: ready3, recordOnly: true });
    expect(f.adopted).toMatchObject({ inherited: ['w-4'] });
    await f.runTo(76_000);
    // Unlisted at the first look at or past 60 s (71 s): failed; the unknown cluster's teardown is a no-op; w-5 in its place.
    expect(f.actions()).toEqual(['71000 terminate w-4', '71000 launch w-5']);
    expect(f.states()).toEqual({ ...ready3, 'w-4': 'failed', 'w-5': 'ready' });
    expect([...f.intents.keys()]).toEqual([]);
  });

  it('a launch still INIT at launch_timeout (120 s here) is given up: torn down once, replaced under a new name', async () => {
    const f = await failover({ killAt: 10_500, takeOverAt: 11_000, target: 4, published: ready3, hangs: true });
    await f.runTo(130_900);
    expect(f.states()).toMatchObject({ 'w-4': 'provisioning' });
    expect(f.actions()).toEqual([]);
    await f.runTo(135_000);
    expect(f.actions()).toEqual(['131000 terminate w-4', '131000 launch w-5']);
    expect(f.states()).toEqual({ ...ready3, 'w-4': 'failed', 'w-5': 'ready' });
    expect(f.logs.some((l) => l.includes('not up within launch_timeout (INIT)'))).toBe(true);
  });

  it('the old leader paused mid-launch (SIGSTOP), then woken: its launch aborted, it says so, and the new leader tears the cluster down at once', async () => {
    const f = await failover({ killAt: 10_500, takeOverAt: 11_000, target: 4, published: ready3 });
    await f.runTo(12_000);
    f.oldFleet.standDown(); // it wakes, finds its lease gone, and stands down: its launch of w-4 is aborted
    await f.runTo(12_100);
    expect(f.abandoned).toEqual(['w-4']);
    f.fleet.launchEnded('w-4'); // what the old leader's Replica submits, and the new leader's runs
    await f.runTo(20_000);
    // Not at launch_timeout: at once, and a new name in its place.
    expect(f.actions()).toEqual(['12100 terminate w-4', '12100 launch w-5']);
    expect(f.states()).toEqual({ ...ready3, 'w-4': 'failed', 'w-5': 'ready' });
    expect(f.provisioner.alive).toEqual(['w-1', 'w-2', 'w-3', 'w-5']);
  });

  it('standing down while awaiting a launch: no further call, the worker stays as the pool has it', async () => {
    const f = await failover({ killAt: 10_500, takeOverAt: 11_000, target: 4, published: ready3 });
    const before = f.provisioner.calls.length;
    f.fleet.standDown();
    await f.runTo(30_000);
    expect(f.provisioner.calls.slice(before)).toEqual([]);
    expect(f.states()).toMatchObject({ 'w-4': 'provisioning' });
  });
});
