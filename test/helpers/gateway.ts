import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { FlockServe, type FlockServeDeps, type FlockServeOptions } from '../../src/index.js';
import { waitFor } from './wait.js';

export const ROOT = resolve(import.meta.dirname, '../..');

/**
 * A task YAML that runs the engine simulator (built in dist/) with extra flags. The local
 * provisioner gives it a port in FLOCKSERVE_WORKER_PORT; a task for the fake sky names its
 * `port` (resources.ports) and the `--host` the cluster binds.
 */
export function simTask(simArgs = '', on: { port?: number; host?: string } = {}): string {
  const path = join(mkdtempSync(join(tmpdir(), 'flockserve-test-')), 'task.yaml');
  const bind = on.port === undefined ? '' : `--host ${on.host ?? '127.0.0.1'} --port ${on.port} `;
  writeFileSync(
    path,
    [
      'name: sim',
      `workdir: ${ROOT}`,
      'resources:',
      `  ports: ${on.port ?? 8000}`,
      `run: exec node dist/cli/flockserve-sim.js --model sim ${bind}${simArgs}`,
      '',
    ].join('\n'),
  );
  return path;
}

/** Options every in-process test gateway shares: loopback, free ports, fast probes, quiet. */
export const TEST_GATEWAY_OPTIONS = {
  host: '127.0.0.1',
  port: 0,
  grpcPort: 0,
  workerProbeInterval: 0.05,
  statusLogInterval: 0,
  metricsId: -1,
} as const satisfies Partial<FlockServeOptions>;

export interface TestGateway {
  readonly gw: FlockServe;
  readonly url: string;
  readonly grpcAddress: string;
  close(): Promise<void>;
}

/** Starts a gateway in-process with the local provisioner and simulator workers, and waits for them to be ready. */
export async function startGateway(
  options: Partial<FlockServeOptions> & { simArgs?: string; ready?: number } = {},
  deps: FlockServeDeps = {},
): Promise<TestGateway> {
  const { simArgs, ready, ...rest } = options;
  const gw = new FlockServe(
    {
      ...TEST_GATEWAY_OPTIONS,
      skypilotTask: simTask(simArgs),
      provisioner: 'local',
      minWorkers: 2,
      maxWorkers: 2,
      drainTimeout: 5,
      ...rest,
    },
    { logger: pino({ level: 'silent' }), ...deps },
  );
  const listening = await gw.run();
  const want = ready ?? gw.config.minWorkers;
  await waitFor(() => gw.status().readyWorkerCount >= want, `${want} ready workers`);
  return {
    gw,
    url: `http://127.0.0.1:${listening.httpPort}`,
    grpcAddress: `127.0.0.1:${listening.grpcPort}`,
    close: () => gw.close(),
  };
}

/** The simulator's own counters (its GET /sim/stats extension). */
export async function simStats(workerUrl: string): Promise<{
  received: number;
  completed: number;
  aborted: number;
  running: number;
  waiting: number;
  lastRequests: { path: string; body: unknown; headers: Record<string, string> }[];
}> {
  const res = await fetch(`${workerUrl}/sim/stats`);
  return (await res.json()) as never;
}
