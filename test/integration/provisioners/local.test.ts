import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TaskSpec } from '../../../src/core/types.js';
import { LocalProvisioner } from '../../../src/provisioners/local.js';
import { parseTask } from '../../../src/provisioners/task.js';
import { HttpProber } from '../../../src/upstream/prober.js';
import { waitFor } from '../../helpers/wait.js';

const WORKER = resolve('test/fixtures/tiny-worker.mjs');

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** A task YAML in a fresh folder; returns the parsed task and the folder. */
function task(yaml: string): { task: TaskSpec; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'fs-local-'));
  const path = join(dir, 'task.yaml');
  writeFileSync(path, yaml);
  return { task: parseTask(yaml, path), dir };
}

const open: LocalProvisioner[] = [];
function provisioner(dir: string, extra: ConstructorParameters<typeof LocalProvisioner>[0] = {}): LocalProvisioner {
  const p = new LocalProvisioner({ logDir: join(dir, 'logs'), killGraceMs: 1000, ...extra });
  open.push(p);
  return p;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});

describe('LocalProvisioner', () => {
  it('launches two workers on their own ports, probes them ready, and kills them on terminate', async () => {
    const { task: t, dir } = task(
      `setup: echo setting up; echo to-stderr >&2\nrun: node ${WORKER}\nenvs:\n  GREETING: hello\n`,
    );
    const p = provisioner(dir);
    const signal = new AbortController().signal;
    const [a, b] = await Promise.all([p.launch('w-1', t, signal), p.launch('w-2', t, signal)]);
    expect(a.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(a.url).not.toBe(b.url);
    const prober = new HttpProber({ path: '/health', timeoutMs: 1000 });
    await waitFor(
      async () => (await prober.probe(a.url, signal)) && (await prober.probe(b.url, signal)),
      'both workers answering their probe',
    );

    // The worker got the task's envs, its name, and the task folder as cwd.
    const body = (await (await fetch(`${a.url}/whoami`)).json()) as Record<string, unknown>;
    expect(body).toEqual({ name: 'w-1', greeting: 'hello', cwd: dir });
    expect((await p.list('w-')).map((c) => [c.name, c.status])).toEqual([
      ['w-1', 'UP'],
      ['w-2', 'UP'],
    ]);

    const pids = [Number(a.detail?.['pid']), Number(b.detail?.['pid'])];
    expect(pids.every(pidAlive)).toBe(true);
    await Promise.all([p.terminate('w-1'), p.terminate('w-2'), p.terminate('w-1')]);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
    expect(await prober.probe(a.url, signal)).toBe(false);
    expect(await p.list('w-')).toEqual([]);
    await p.terminate('unknown');

    // Output went to the worker's log file, setup and run both.
    const log = readFileSync(join(dir, 'logs', 'w-1.log'), 'utf8');
    expect(log).toContain('setting up');
    expect(log).toContain('to-stderr');
    expect(log).toMatch(/tiny worker w-1 on \d+/);
  });

  it('rejects when setup fails, with the tail of its stderr, and leaves nothing running', async () => {
    const { task: t, dir } = task(
      `setup: |\n  echo step one\n  echo "pip: no such package" >&2\n  exit 3\nrun: node ${WORKER}\n`,
    );
    const p = provisioner(dir);
    await expect(p.launch('w-1', t, new AbortController().signal)).rejects.toThrow(
      /setup of w-1 failed \(exit code 3\): pip: no such package/,
    );
    expect(await p.list('w-')).toEqual([]);
  });

  it('aborting a launch kills a slow setup and everything it started', async () => {
    const { task: t, dir } = task(`setup: sleep 30 & echo $! > child.pid; wait\nrun: node ${WORKER}\n`);
    // A grace longer than the wait below: the group must go on SIGTERM alone.
    const p = provisioner(dir, { killGraceMs: 20_000 });
    const ac = new AbortController();
    const launching = p.launch('w-1', t, ac.signal);
    await waitFor(
      () => existsSync(join(dir, 'child.pid')) && readFileSync(join(dir, 'child.pid'), 'utf8').trim() !== '',
      'the child to write its pid',
    );
    const sleepPid = Number(readFileSync(join(dir, 'child.pid'), 'utf8'));
    expect(pidAlive(sleepPid)).toBe(true);
    ac.abort();
    await expect(launching).rejects.toThrow(/abort/i);
    await waitFor(() => !pidAlive(sleepPid), 'the grandchild gone', 3000);
    expect(await p.list('w-')).toEqual([]);
  });

  it('SIGKILLs a worker that ignores SIGTERM after the grace period', async () => {
    const { task: t, dir } = task(`run: trap '' TERM; node ${WORKER} & wait; sleep 60\n`);
    const p = provisioner(dir, { killGraceMs: 300 });
    const ep = await p.launch('w-1', t, new AbortController().signal);
    const prober = new HttpProber({ timeoutMs: 500 });
    await waitFor(() => prober.probe(ep.url, new AbortController().signal), 'the worker answering its probe');
    const t0 = performance.now();
    await p.terminate('w-1');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
    expect(pidAlive(Number(ep.detail?.['pid']))).toBe(false);
    expect(await prober.probe(ep.url, new AbortController().signal)).toBe(false);
  });

  it('reports a worker that exits on its own and stops listing it', async () => {
    const { task: t, dir } = task('run: sleep 0.2; exit 7\n');
    const exits: Array<[string, number | null]> = [];
    const p = provisioner(dir, { onExit: (name, code) => exits.push([name, code]) });
    await p.launch('w-1', t, new AbortController().signal);
    await waitFor(() => exits.length > 0, 'the exit reported');
    expect(exits).toEqual([['w-1', 7]]);
    expect(await p.list('w-')).toEqual([]);
  });

  it.each([
    ['no run', 'setup: echo hi\n', /has no run command/],
    ['missing workdir', 'run: echo\nworkdir: ./nope\n', /workdir .* is not a directory/],
  ])('rejects a task with %s', async (_label, yaml, want) => {
    const { task: t, dir } = task(yaml);
    await expect(provisioner(dir).launch('w-1', t, new AbortController().signal)).rejects.toThrow(want);
  });

  it('warns once about cloud-only keys it ignores', async () => {
    const { task: t, dir } = task(`run: node ${WORKER}\nresources:\n  accelerators: A100:1\n`);
    const logs: string[] = [];
    const p = provisioner(dir, { log: (level, msg) => logs.push(`${level} ${msg}`) });
    const signal = new AbortController().signal;
    await p.launch('w-1', t, signal);
    await p.launch('w-2', t, signal);
    expect(logs.filter((l) => l.includes('ignores resources.accelerators'))).toHaveLength(1);
    await p.close();
    expect(await p.list('w-')).toEqual([]);
    await expect(p.launch('w-3', t, signal)).rejects.toThrow(/closed/);
  });
});
