import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { VirtualClock } from '../../../src/core/clock.js';
import { SkyCli } from '../../../src/provisioners/skypilot/cli.js';
import { SkyPilotProvisioner, type SkyPilotProvisionerOptions } from '../../../src/provisioners/skypilot/skypilot.js';
import { loadTask } from '../../../src/provisioners/task.js';
import { alive, clusterPort, fakeSky, skyTask, type FakeSky } from '../../helpers/fake-sky.js';
import { waitFor } from '../../helpers/wait.js';

/** A provisioner driving the fake `sky` with the given fault switches, and its log lines. */
async function setup(faults: Record<string, string> = {}, over: Partial<SkyPilotProvisionerOptions> = {}) {
  const sky: FakeSky = fakeSky();
  onTestFinished(() => sky.killJobs()); // engines left by a test that failed half-way
  const port = await clusterPort();
  const taskPath = skyTask(port);
  const task = await loadTask(taskPath);
  const logs: string[] = [];
  const lost: string[] = [];
  const provisioner = new SkyPilotProvisioner({
    cli: new SkyCli({ env: sky.env(faults), killGraceMs: 300 }),
    logDir: mkdtempSync(join(tmpdir(), 'sky-logs-')),
    log: (level, msg) => logs.push(`${level} ${msg}`),
    onWorkerLost: (name, reason) => lost.push(`${name}: ${reason}`),
    commandTimeoutMs: 10_000,
    port, // what FlockServe passes: the task's port, for endpoints of clusters it did not launch
    ...over,
  });
  await provisioner.start();
  const launch = (name: string) => provisioner.launch(name, task, new AbortController().signal);
  return { sky, port, taskPath, task, provisioner, logs, lost, launch };
}

describe('SkyPilotProvisioner through the fake sky', () => {
  it('launches each cluster on its own address, lists it, and tears it down confirmed; the exact sky command lines', async () => {
    const s = await setup({}, { workerEnv: ['GREETING=hi'], autostopMinutes: 5 });
    expect(s.provisioner.capabilities).toEqual({ version: '0.10.3', statusJson: false });
    try {
      const [a, b] = await Promise.all([s.launch('w-1'), s.launch('w-2')]);
      expect(new Set([a.url, b.url])).toEqual(new Set([`http://127.0.0.2:${s.port}`, `http://127.0.0.3:${s.port}`]));
      for (const ep of [a, b]) {
        await waitFor(async () => (await fetch(`${ep.url}/health`).catch(() => undefined))?.status === 200, ep.url);
      }
      expect(await s.provisioner.list('w-')).toEqual([
        { name: 'w-1', status: 'UP', endpoint: { url: a.url, detail: { cluster: 'w-1' } } },
        { name: 'w-2', status: 'UP', endpoint: { url: b.url, detail: { cluster: 'w-2' } } },
      ]);
      const pgids = s.sky.clusters().flatMap((c) => c.jobs.map((j) => j.pgid));
      expect(pgids).toHaveLength(2);
      await Promise.all([s.provisioner.terminate('w-1'), s.provisioner.terminate('w-2')]);
      expect(s.sky.clusters()).toEqual([]);
      await waitFor(() => pgids.every((p) => !alive(p)), 'the engines to exit');
      await s.provisioner.terminate('w-1'); // idempotent: `sky down` on an unknown cluster exits 0

      const launch = (n: string) => `sky launch -c ${n} ${s.taskPath} -y -d --env GREETING=hi -i 5 --down`;
      const commands = s.sky.commands();
      expect(commands.slice(0, 2)).toEqual(['sky --version', 'sky status --help']);
      expect(commands.filter((c) => c.startsWith('sky launch')).sort()).toEqual([launch('w-1'), launch('w-2')]);
      expect(commands).toContain(`sky status --endpoint ${s.port} w-1`);
      const tail = commands.slice(-9);
      expect(tail.slice(0, 3)).toEqual([
        'sky status',
        `sky status --endpoint ${s.port} w-1`,
        `sky status --endpoint ${s.port} w-2`,
      ]);
      // The two teardowns ran at once: each a `sky down` confirmed by `sky status NAME`.
      expect(tail.slice(3, 7).sort()).toEqual([
        'sky down -y w-1',
        'sky down -y w-2',
        'sky status w-1',
        'sky status w-2',
      ]);
      expect(tail.slice(7)).toEqual(['sky down -y w-1', 'sky status w-1']);
      expect(s.logs.some((l) => /^info w-1 job submitted \d+s$/.test(l))).toBe(true);
    } finally {
      await s.provisioner.close();
    }
  });

  it('runs at most max_concurrent_launches `sky launch` at once; the rest wait their turn', async () => {
    const s = await setup({ FAKE_SKY_LAUNCH_DELAY_MS: '300' }, { maxConcurrentLaunches: 1 });
    try {
      await Promise.all([s.launch('w-1'), s.launch('w-2')]);
      expect(s.logs).toContain('info w-2 queued: 1 launches running (max_concurrent_launches)');
      // w-2's `sky launch` starts (its first progress line) only after w-1's has printed its last phase.
      const at = (re: RegExp): number => s.logs.findIndex((l) => re.test(l));
      expect(at(/^info w-1 job submitted/)).toBeGreaterThan(0);
      expect(at(/^info w-2 starting 0s$/)).toBeGreaterThan(at(/^info w-1 job submitted/));
      await Promise.all([s.provisioner.terminate('w-1'), s.provisioner.terminate('w-2')]);
    } finally {
      await s.provisioner.close();
    }
  });

  it('reads `sky status -o json` where the installed sky lists -o/--output', async () => {
    const s = await setup({ FAKE_SKY_JSON: '1', FAKE_SKY_VERSION: '0.11.0' });
    expect(s.provisioner.capabilities).toEqual({ version: '0.11.0', statusJson: true });
    try {
      await s.launch('w-1');
      expect(await s.provisioner.list('w-')).toMatchObject([{ name: 'w-1', status: 'UP' }]);
      await s.provisioner.terminate('w-1');
      expect(s.sky.commands()).toEqual(expect.arrayContaining(['sky status -o json', 'sky status -o json w-1']));
    } finally {
      await s.provisioner.close();
    }
  });

  it('detects a `sky down` that exits 0 but leaves the cluster, and succeeds when retried', async () => {
    const s = await setup({ FAKE_SKY_DOWN_LIES: '1' });
    try {
      await s.launch('w-1');
      await expect(s.provisioner.terminate('w-1')).rejects.toThrow(
        /`sky down -y w-1` exited 0 but w-1 is still listed as UP \(sky said: Reason: sky\.exceptions\.CloudError: fake sky: FAKE_SKY_DOWN_LIES/,
      );
      expect(s.sky.clusters().map((c) => c.name)).toEqual(['w-1']);
      await s.provisioner.terminate('w-1');
      expect(s.sky.clusters()).toEqual([]);
    } finally {
      await s.provisioner.close();
    }
  });

  it('as SkyPilot: a second launch of one name waits for the first and reuses its cluster; a down during a launch fails and leaves it', async () => {
    const s = await setup({ FAKE_SKY_LAUNCH_DELAY_MS: '6000', FAKE_SKY_LOCK_TIMEOUT_MS: '300' });
    try {
      const first = s.launch('w-1');
      await waitFor(() => s.sky.clusters().length === 1, 'the INIT cluster');
      // `sky down` during the launch: it waits for the cluster's lock, gives up, and the cluster stays.
      await expect(s.provisioner.terminate('w-1')).rejects.toThrow(
        /w-1 is still listed as INIT \(sky said: Reason: RuntimeError: Cluster "w-1" is locked by/,
      );
      const second = s.launch('w-1');
      const [a, b] = await Promise.all([first, second]);
      expect(b.url).toBe(a.url);
      // One cluster, the task run on it once per launch.
      expect(s.sky.clusters().map((c) => [c.name, c.status, c.jobs.length])).toEqual([['w-1', 'UP', 2]]);
      await s.provisioner.terminate('w-1');
      expect(s.sky.clusters()).toEqual([]);
    } finally {
      await s.provisioner.close();
    }
  });

  it('kills a hanging `sky status` at sky_command_timeout, process group and all', async () => {
    // 2 s: long enough for `sky --version` (the fake, a node process) to start on a busy machine.
    const s = await setup({ FAKE_SKY_STATUS_HANG: '1' }, { commandTimeoutMs: 2000 });
    try {
      const started = performance.now();
      await expect(s.provisioner.list('w-')).rejects.toThrow(/`sky status` timed out after 2 s and was killed/);
      expect(performance.now() - started).toBeLessThan(6000);
      expect(s.sky.hung()).toHaveLength(1);
      await waitFor(() => s.sky.hung().every((pid) => !alive(pid)), 'the hung sky to be gone');
    } finally {
      await s.provisioner.close();
    }
  });

  it('kills a hanging `sky launch` at launch_timeout and leaves its INIT cluster for teardown', async () => {
    // 3 s: long enough for the fake (a node process) to start, mark its cluster INIT and hang on a
    // busy machine; a launch killed before it started would leave nothing to check.
    const s = await setup({ FAKE_SKY_LAUNCH_HANG: 'w-1' }, { launchTimeoutMs: 3000 });
    try {
      await expect(s.launch('w-1')).rejects.toThrow(
        /launch of w-1 timed out after 3s \(launch_timeout\); its process group was killed/,
      );
      await waitFor(
        () => s.sky.hung().length === 1 && s.sky.hung().every((pid) => !alive(pid)),
        'the hung launch to be gone',
      );
      expect(s.sky.clusters()).toMatchObject([{ name: 'w-1', status: 'INIT' }]);
      await s.provisioner.terminate('w-1');
      expect(s.sky.clusters()).toEqual([]);
    } finally {
      await s.provisioner.close();
    }
  });

  it('reports a preempted cluster lost after a rate-limited `sky status --refresh`', async () => {
    // The refresh timer runs on virtual time: the test decides when an interval has passed.
    const clock = new VirtualClock();
    const s = await setup({ FAKE_SKY_PREEMPT: 'w-2' }, { refreshIntervalMs: 300, clock });
    const refreshes = (): string[] => s.sky.commands().filter((c) => c.startsWith('sky status --refresh'));
    /** The refresh timer is set again once a refresh has finished (the only timer left after the launches). */
    const refreshDone = (): Promise<void> => waitFor(() => clock.pendingTimers === 1, 'the refresh to finish');
    try {
      // The fake preempts w-2 at the first sky call that finds it UP with its job started.
      const [, b] = await Promise.all([s.launch('w-1'), s.launch('w-2')]);
      clock.advance(299);
      expect(refreshes()).toEqual([]);
      clock.advance(1);
      await waitFor(() => s.lost.length > 0, 'a lost report');
      expect(s.lost).toEqual(['w-2: its cluster is STOPPED (preempted, or stopped outside FlockServe)']);
      expect(refreshes()).toEqual(['sky status --refresh w-1 w-2']);
      await expect(fetch(`${b.url}/health`)).rejects.toThrow();

      // Only w-1 is watched now, at one refresh per interval.
      await refreshDone();
      clock.advance(299);
      expect(refreshes()).toHaveLength(1);
      clock.advance(1);
      await waitFor(() => refreshes().length === 2, 'the second refresh');
      await refreshDone();
      expect(refreshes()[1]).toBe('sky status --refresh w-1');
      expect(s.lost).toHaveLength(1);
    } finally {
      await s.provisioner.close();
    }
  });
});
