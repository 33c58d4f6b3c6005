import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Fleet } from '../../../src/core/fleet.js';
import { WorkerPool } from '../../../src/core/pool.js';
import { LocalProvisioner } from '../../../src/provisioners/local.js';
import { loadTask } from '../../../src/provisioners/task.js';
import { systemClock } from '../../../src/runtime/system-clock.js';
import { HttpProber } from '../../../src/upstream/prober.js';
import { waitFor } from '../../helpers/wait.js';

describe('Fleet over LocalProvisioner (real processes, real clock)', () => {
  it('brings two tiny workers to ready, replaces one that crashes, and leaves no process after shutdown', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fs-fleet-'));
    writeFileSync(join(dir, 'task.yaml'), `run: node ${resolve('test/fixtures/tiny-worker.mjs')}\n`);
    const task = await loadTask(join(dir, 'task.yaml'));
    const pool = new WorkerPool(systemClock);
    // The provisioner reports crashes to the fleet, which is built after it.
    const ref: { fleet?: Fleet } = {};
    const provisioner = new LocalProvisioner({
      logDir: join(dir, 'logs'),
      killGraceMs: 1000,
      onExit: (name, code) => ref.fleet?.lost(name, `exit ${code}`),
    });
    const fleet = new Fleet({
      pool,
      provisioner,
      prober: new HttpProber({ path: '/health', timeoutMs: 500 }),
      task,
      clock: systemClock,
      namePrefix: 'tiny',
      capacity: 2,
      probeIntervalMs: 100,
      unhealthyTimeoutMs: 10_000,
      drainTimeoutMs: 1000,
      retryDelayMs: 200,
    });
    const showing = (what: string) => (): string => `${what}; pool: ${JSON.stringify(pool.list())}`;
    ref.fleet = fleet;
    try {
      fleet.scaleTo(2);
      await waitFor(() => pool.inState('ready').length === 2, showing('two ready workers'));
      const pids = pool.list().map((w) => Number(w.detail['pid']));

      // Crash tiny-1: the provisioner reports the exit, the fleet launches a replacement.
      process.kill(pids[0]!, 'SIGKILL');
      await waitFor(
        () => pool.inState('ready').length === 2 && !pids.includes(Number(pool.get('tiny-1')?.detail['pid'])),
        showing('a replacement for tiny-1'),
      );
      expect(fleet.stats.replaced).toBe(1);

      const all = [...pids, ...pool.list().map((w) => Number(w.detail['pid']))];
      await fleet.shutdown();
      expect(pool.list()).toEqual([]);
      for (const pid of all) expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
    } finally {
      await provisioner.close();
    }
  });
});
