import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { alive, clusterPort, fakeSky, skyTask, type FakeSky } from '../helpers/fake-sky.js';
import { ROOT } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

interface Cli {
  readonly proc: ChildProcessByStdio<null, Readable, Readable>;
  readonly url: string;
  output(): string;
}

/** Starts `flockserve --provisioner skypilot` (the default) as a process with the fake sky on PATH. */
async function startCli(sky: FakeSky, task: string, extra: string[] = []): Promise<Cli> {
  const proc = spawn(
    process.execPath,
    [
      join(ROOT, 'dist/cli/flockserve.js'),
      '--skypilot_task',
      task,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--grpc_port',
      '0',
      '--min_workers',
      '2',
      '--max_workers',
      '2',
      '--worker_probe_interval',
      '0.05',
      '--drain_timeout',
      '2',
      '--status_log_interval',
      '0',
      '--metrics_id',
      '-1',
      '--log_dir',
      mkdtempSync(join(tmpdir(), 'sky-logs-')),
      ...extra,
    ],
    { env: { ...process.env, ...sky.env() }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  // A failed assertion must not leave the gateway (it refreshes and relaunches) or its engines running.
  onTestFinished(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    sky.killJobs();
  });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const listening = /listening on http:\/\/[^:]+:(\d+) \(HTTP\)/;
  await waitFor(() => listening.test(out) || proc.exitCode !== null, 'the listening line', 20_000);
  if (proc.exitCode !== null) throw new Error(`flockserve exited ${proc.exitCode}: ${out}`);
  const url = `http://127.0.0.1:${listening.exec(out)![1]}`;
  await waitFor(
    async () => ((await (await fetch(url)).json()) as { ready_worker_count: number }).ready_worker_count === 2,
    'two ready workers',
    20_000,
  );
  return { proc, url, output: () => out };
}

async function stop(cli: Cli, signal: NodeJS.Signals): Promise<number | null> {
  const exited = once(cli.proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  cli.proc.kill(signal);
  const [code] = await exited;
  return code;
}

const jobPgids = (sky: FakeSky): number[] => sky.clusters().flatMap((c) => c.jobs.map((j) => j.pgid));

describe('flockserve CLI with the skypilot provisioner (fake sky)', () => {
  it('after SIGKILL a restart adopts the running clusters without launching again; SIGTERM then tears everything down', async () => {
    const sky = fakeSky();
    const task = skyTask(await clusterPort());
    const first = await startCli(sky, task);
    const pgids = jobPgids(sky);
    expect(pgids).toHaveLength(2);
    expect(await stop(first, 'SIGKILL')).toBe(null);
    expect(sky.clusters().map((c) => `${c.name} ${c.status}`)).toEqual([
      'skypilot-worker-1 UP',
      'skypilot-worker-2 UP',
    ]);

    const before = sky.commands().length;
    const second = await startCli(sky, task);
    const restart = sky.commands().slice(before);
    expect(restart.filter((c) => c.startsWith('sky launch'))).toEqual([]); // no duplicate launch
    expect(restart.slice(0, 3)).toEqual(['sky --version', 'sky status --help', 'sky status']);
    expect(restart.filter((c) => c.startsWith('sky status --endpoint')).length).toBe(2);
    expect(jobPgids(sky)).toEqual(pgids); // the same engines serve
    expect(pgids.every(alive)).toBe(true);
    expect(second.output()).toContain('adopted running workers');

    expect(await stop(second, 'SIGTERM')).toBe(0);
    expect(sky.clusters()).toEqual([]);
    await waitFor(() => pgids.every((p) => !alive(p)), 'the engines to exit');
    expect(second.output()).toContain('tearing down 2 workers');
    expect(sky.commands().slice(-4).sort()).toEqual([
      'sky down -y skypilot-worker-1',
      'sky down -y skypilot-worker-2',
      'sky status skypilot-worker-1',
      'sky status skypilot-worker-2',
    ]);
  }, 90_000);

  it('--keep_workers_on_exit leaves the clusters up; --reinit cancels their jobs and relaunches the task on them', async () => {
    const sky = fakeSky();
    const task = skyTask(await clusterPort());
    const first = await startCli(sky, task, ['--keep_workers_on_exit']);
    const oldPgids = jobPgids(sky);
    expect(await stop(first, 'SIGTERM')).toBe(0);
    expect(first.output()).toContain('keep_workers_on_exit: leaving 2 workers running for the next start to adopt');
    expect(sky.clusters().map((c) => `${c.name} ${c.status}`)).toEqual([
      'skypilot-worker-1 UP',
      'skypilot-worker-2 UP',
    ]);
    expect(oldPgids.every(alive)).toBe(true);

    const before = sky.commands().length;
    const second = await startCli(sky, task, ['--reinit']);
    const restart = sky.commands().slice(before);
    for (const name of ['skypilot-worker-1', 'skypilot-worker-2']) {
      const cancel = restart.indexOf(`sky cancel -a -y ${name}`);
      const launch = restart.indexOf(`sky launch -c ${name} ${task} -y -d`);
      expect(cancel).toBeGreaterThanOrEqual(0);
      expect(launch).toBeGreaterThan(cancel);
    }
    await waitFor(() => oldPgids.every((p) => !alive(p)), 'the old jobs to be cancelled');
    const newPgids = jobPgids(sky);
    expect(newPgids).toHaveLength(2);
    expect(newPgids.filter((p) => oldPgids.includes(p))).toEqual([]);
    expect(
      sky
        .clusters()
        .map((c) => c.ip)
        .sort(),
    ).toEqual(['127.0.0.2', '127.0.0.3']); // same clusters

    expect(await stop(second, 'SIGTERM')).toBe(0);
    expect(sky.clusters()).toEqual([]);
  }, 90_000);
});
