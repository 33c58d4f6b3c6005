import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/provisioners/free-port.js';
import { signalGroup } from '../../src/provisioners/common.js';
import { ROOT, simTask } from './gateway.js';

/** Folder holding the FAKE `sky` executable (test/fixtures/fake-sky/sky): put it first on PATH. */
export const FAKE_SKY_DIR = join(ROOT, 'test/fixtures/fake-sky');

export interface FakeCluster {
  readonly name: string;
  readonly status: 'INIT' | 'UP' | 'STOPPED';
  readonly ip: string;
  readonly jobs: { readonly id: number; readonly pgid: number }[];
}

/** One `sky` invocation as the fake's ledger recorded it. */
export interface LedgerEntry {
  /** Wall-clock ms when it started. */
  readonly at: number;
  /** $FAKE_SKY_CALLER of the process that ran it ('' when unset). */
  readonly caller: string;
  readonly argv: readonly string[];
}

export interface FakeSky {
  readonly stateDir: string;
  /** Environment that makes `sky` the fake, with this state dir, plus fault switches. */
  env(faults?: Record<string, string>): Record<string, string>;
  /** Every `sky` command line run so far, in order. */
  commands(): string[];
  /** Every `sky` invocation so far, in order, with who ran it and when. */
  ledger(): LedgerEntry[];
  /** Clusters that exist in the fake, by name. */
  clusters(): FakeCluster[];
  /** Pids of fake `sky` commands that hung (see FAKE_SKY_*_HANG). */
  hung(): number[];
  /** Test clean-up: SIGKILLs the jobs of every cluster left; those already gone (preempted, exited) are skipped. */
  killJobs(): void;
}

export function fakeSky(): FakeSky {
  const stateDir = mkdtempSync(join(tmpdir(), 'fake-sky-'));
  const read = (p: string): string => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  };
  const list = (dir: string): string[] => {
    try {
      return readdirSync(join(stateDir, dir));
    } catch {
      return [];
    }
  };
  const clusters = (): FakeCluster[] =>
    list('clusters')
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(read(join(stateDir, 'clusters', f))) as FakeCluster)
      .sort((a, b) => a.name.localeCompare(b.name));
  return {
    stateDir,
    env: (faults = {}) => ({
      PATH: `${FAKE_SKY_DIR}:${process.env.PATH ?? ''}`,
      FAKE_SKY_STATE_DIR: stateDir,
      ...faults,
    }),
    commands: () =>
      read(join(stateDir, 'commands.log'))
        .split('\n')
        .filter((l) => l !== ''),
    ledger: () =>
      read(join(stateDir, 'ledger.jsonl'))
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as LedgerEntry),
    clusters,
    hung: () => list('hung').map(Number),
    killJobs: () => {
      for (const job of clusters().flatMap((c) => c.jobs)) signalGroup(job.pgid, 'SIGKILL');
    },
  };
}

/**
 * A port for the task's engines, free on every address: the fake binds each cluster's
 * engine to 127.0.0.2, 127.0.0.3, … (the same addresses in every test run), so a port
 * free on 127.0.0.1 alone may be held there by another run's engine. Binding the
 * wildcard fails on any such port, so the kernel picks one free on all of them.
 */
export function clusterPort(): Promise<number> {
  return freePort('0.0.0.0');
}

/** A task YAML for the fake sky: the engine simulator bound to the cluster's own loopback address ($FAKE_SKY_CLUSTER_IP). */
export function skyTask(port: number, simArgs = ''): string {
  return simTask(simArgs, { port, host: '$FAKE_SKY_CLUSTER_IP' });
}

/**
 * True while process `pid` runs. A zombie (dead, not yet reaped by a PID 1 that may never
 * reap) counts as dead: it holds no port and does no work.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  const stat = (() => {
    try {
      return readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return '';
    }
  })();
  return !/^\d+ \(.*\) Z/.test(stat);
}
