import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../../src/core/clock.js';
import type { TaskSpec } from '../../../../src/core/types.js';
import type { SkyCli, SkyResult } from '../../../../src/provisioners/skypilot/cli.js';
import { SkyPilotProvisioner } from '../../../../src/provisioners/skypilot/skypilot.js';

const TASK: TaskSpec = { path: '/tmp/task.yaml', run: 'engine', envs: {}, ports: [8000], raw: {} };

const result = (args: readonly string[], stdout: string): SkyResult => ({
  command: ['sky', ...args].join(' '),
  exitCode: 0,
  stdout,
  stderr: '',
  timedOut: false,
  aborted: false,
  durationMs: 1,
});

const table = (rows: [string, string][]): string =>
  `Clusters\nNAME  INFRA  RESOURCES  STATUS  AUTOSTOP  LAUNCHED\n${rows.map(([n, s]) => `${n}   AWS    1x(L4:1)   ${s}      -         1 min ago`).join('\n')}\n`;

/**
 * A scripted `sky`: launches and teardowns answer at once; `sky status --refresh` answers when
 * the test says, with what the clouds showed when it was asked (SkyPilot reads them first).
 */
function scriptedSky() {
  const up = new Map<string, string>();
  const refreshes: { shown: [string, string][]; answer: () => void }[] = [];
  const faults = { statusFails: false };
  const cli = {
    command: 'sky',
    killAll: () => Promise.resolve(),
    run(args: readonly string[]): Promise<SkyResult> {
      const [verb, ...rest] = args;
      if (verb === '--version') return Promise.resolve(result(args, 'skypilot, version 0.10.3'));
      if (verb === 'launch') {
        up.set(rest[1]!, 'UP');
        return Promise.resolve(result(args, ''));
      }
      if (verb === 'down') {
        up.delete(rest[1]!);
        return Promise.resolve(result(args, ''));
      }
      if (rest[0] === '--help') return Promise.resolve(result(args, 'Usage: sky status [OPTIONS]'));
      if (rest[0] === '--endpoint') return Promise.resolve(result(args, `127.0.0.1:${rest[1]}`));
      if (faults.statusFails)
        return Promise.resolve({
          ...result(args, ''),
          exitCode: 1,
          stderr: 'ApiServerConnectionError: Could not connect to SkyPilot API server',
        });
      const asked = rest.filter((a) => !a.startsWith('-'));
      // No names: every cluster, as `sky status` lists them.
      const names = asked.length > 0 ? asked : [...up.keys()];
      const shown = names.filter((n) => up.has(n)).map((n): [string, string] => [n, up.get(n)!]);
      if (rest[0] !== '--refresh') return Promise.resolve(result(args, table(shown)));
      return new Promise((resolve) => refreshes.push({ shown, answer: () => resolve(result(args, table(shown))) }));
    },
  };
  return { cli: cli as unknown as SkyCli, up, refreshes, faults };
}

describe('SkyPilotProvisioner: a teardown whose confirmation fails', () => {
  it('says the teardown could not be confirmed, not that the cluster stayed', async () => {
    const sky = scriptedSky();
    const p = new SkyPilotProvisioner({ cli: sky.cli, logDir: mkdtempSync(join(tmpdir(), 'sky-logs-')) });
    await p.start();
    await p.launch('w-1', TASK, new AbortController().signal);
    sky.faults.statusFails = true;
    await expect(p.terminate('w-1')).rejects.toThrow(
      /^`sky down -y w-1` exited 0, but whether w-1 is gone could not be confirmed: .*ApiServerConnectionError/,
    );
    await p.close();
  });
});

describe('SkyPilotProvisioner: a refresh judges only the clusters it read', () => {
  it('a cluster torn down and launched again under its name while a refresh ran is not reported lost', async () => {
    const clock = new VirtualClock();
    const sky = scriptedSky();
    const lost: string[] = [];
    const p = new SkyPilotProvisioner({
      cli: sky.cli,
      clock,
      refreshIntervalMs: 1000,
      port: 8000, // what FlockServe passes: the task's port, for endpoints of clusters it lists
      logDir: mkdtempSync(join(tmpdir(), 'sky-logs-')),
      onWorkerLost: (name, reason) => lost.push(`${name}: ${reason}`),
    });
    await p.start();
    await p.launch('w-1', TASK, new AbortController().signal);
    clock.advance(1000);
    await new Promise((r) => setImmediate(r));
    expect(sky.refreshes).toHaveLength(1);
    // The clouds were read while w-1 was being launched again: INIT.
    sky.refreshes[0]!.shown.splice(0, 1, ['w-1', 'INIT']);
    await p.terminate('w-1');
    await p.launch('w-1', TASK, new AbortController().signal);
    sky.refreshes[0]!.answer();
    await new Promise((r) => setImmediate(r));
    expect(lost).toEqual([]);

    // The same refresh of the cluster it read does report it.
    clock.advance(1000);
    await new Promise((r) => setImmediate(r));
    expect(sky.refreshes).toHaveLength(2);
    sky.refreshes[1]!.shown.splice(0, 1, ['w-1', 'STOPPED']);
    sky.refreshes[1]!.answer();
    await new Promise((r) => setImmediate(r));
    expect(lost).toEqual(['w-1: its cluster is STOPPED (preempted, or stopped outside FlockServe)']);

    // A list of the clusters (adoption, an awaited launch) while a refresh runs re-reads the same
    // cluster: it keeps its watch, and the refresh's verdict on it stands.
    await p.launch('w-2', TASK, new AbortController().signal);
    clock.advance(1000);
    await new Promise((r) => setImmediate(r));
    expect(sky.refreshes).toHaveLength(3);
    sky.refreshes[2]!.shown.splice(0, 1, ['w-2', 'STOPPED']);
    await p.list('w-');
    sky.refreshes[2]!.answer();
    await new Promise((r) => setImmediate(r));
    expect(lost.at(-1)).toBe('w-2: its cluster is STOPPED (preempted, or stopped outside FlockServe)');
    await p.close();
  });
});
