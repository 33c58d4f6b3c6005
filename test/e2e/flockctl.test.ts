import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AutoscalerDecision } from '../../src/gen/flockserve/v1/node_control.js';
import { ROOT, startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

// flockctl as an operator runs it: a child process (dist/cli/flockctl.js) talking gRPC to a
// gateway with the local provisioner and simulator workers. The autoscaler runs every 0.2 s,
// so "scale" is checked against what it really does; its scale-down delay is long, so only
// the commands (and the bounds) change the fleet.

const FLOCKCTL = join(ROOT, 'dist/cli/flockctl.js');

let t: TestGateway;
/** Node control off (no key). */
let off: TestGateway;
/** At max_workers from the start. */
let full: TestGateway;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs flockctl to completion; the key comes from the environment unless `env` says otherwise. */
function flockctl(args: string[], opts: { address?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  const env = opts.env ?? { ...process.env, FLOCKSERVE_NODE_CONTROL_KEY: 'sekret' };
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [FLOCKCTL, '--address', opts.address ?? t.grpcAddress, ...args],
      { env, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const names = (): string[] => t.gw.workers().map((w) => w.name);
const ready = (): number => t.gw.status().readyWorkerCount;

/** The autoscaler's next `n` decisions, as WatchEvents reports them: resolves once they are made. */
async function nextDecisions(n: number): Promise<AutoscalerDecision[]> {
  const seen: AutoscalerDecision[] = [];
  const stop = t.gw.watch((e) => {
    if (e.event?.$case === 'autoscalerDecision') seen.push(e.event.value);
  });
  try {
    await waitFor(() => seen.length >= n, `${n} autoscaler decisions`);
  } finally {
    stop();
  }
  return seen.slice(0, n);
}

beforeAll(async () => {
  [t, off, full] = await Promise.all([
    startGateway({
      nodeControlKey: 'sekret',
      // The assertions below quote this policy's decisions.
      autoscaler: 'running-mean',
      minWorkers: 1,
      maxWorkers: 3,
      autoscaleInterval: 0.2,
      downscaleDelay: 3600,
    }),
    startGateway({ minWorkers: 0, maxWorkers: 1 }),
    startGateway({ nodeControlKey: 'sekret', minWorkers: 1, maxWorkers: 1 }),
  ]);
});
afterAll(async () => {
  await Promise.all([t?.close(), off?.close(), full?.close()]);
});

describe('flockctl against a running gateway', () => {
  it('status and workers (table and --json)', async () => {
    const status = await flockctl(['status']);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/workers:\s+1 \(1 ready\)/);
    expect(status.stdout).toMatch(/scale bounds:\s+min 1, max 3/);
    expect(status.stdout).toMatch(/provisioner:\s+local/);

    const table = await flockctl(['workers']);
    expect(table.code).toBe(0);
    const [header, row] = table.stdout.trim().split('\n');
    expect(header).toMatch(/^NAME\s+STATE\s+URL\s+IN FLIGHT\s+AGE\s+LAST PROBE\s+REQUESTS\s+DETAIL$/);
    expect(row).toMatch(
      /^skypilot-worker-1\s+ready\s+http:\/\/127\.0\.0\.1:\d+\s+0\/30\s+\S+\s+\S+ ago\s+\d+\s+pid=\d+/,
    );

    // Every field, zeros included, and the table's words for states.
    const json = await flockctl(['workers', '--json']);
    const parsed = JSON.parse(json.stdout) as { workers: Record<string, unknown>[] };
    expect(parsed.workers).toHaveLength(1);
    expect(Object.keys(parsed.workers[0]!).sort()).toEqual(
      [
        'name',
        'state',
        'url',
        'inFlight',
        'capacity',
        'ageSeconds',
        'lastProbeUnixMs',
        'totalRequests',
        'provisionerDetail',
        'ejected',
      ].sort(),
    );
    expect(parsed.workers[0]).toMatchObject({
      name: 'skypilot-worker-1',
      state: 'ready',
      inFlight: 0,
      capacity: 30,
      totalRequests: 0,
      ejected: false,
    });
    const statusJson = JSON.parse((await flockctl(['status', '--json'])).stdout) as Record<string, unknown>;
    expect(statusJson).toMatchObject({
      workerCount: 1,
      readyWorkerCount: 1,
      gatewayQueueLength: 0,
      totalRequests: 0,
      heldAtWorkerCapacity: false,
      queueWaitSlo: { seconds: 1, verdict: 'unknown' },
    });
  });

  it('an operator session: watch, add, remove, scale; watch printed every event and stops on SIGINT', async () => {
    const watch = spawn(process.execPath, [FLOCKCTL, '--address', t.grpcAddress, '--key', 'sekret', 'watch'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let watched = '';
    let err = '';
    watch.stdout.on('data', (d: Buffer) => (watched += d.toString()));
    watch.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => watch.once('exit', (c) => r(c)));
    try {
      await waitFor(() => err.includes('watching'), 'flockctl watch to subscribe');

      // add --wait: a new worker becomes ready.
      const added = await flockctl(['add', '--wait']);
      expect(added).toMatchObject({ code: 0, stdout: 'skypilot-worker-2: provisioning\nskypilot-worker-2: ready\n' });
      expect(ready()).toBe(2);
      // Kept: a manual add holds off the autoscaler's scale-down like its own scale-up. The
      // policy wants 1 (nothing is queued); each of the next three decisions keeps 2 for the delay.
      for (const d of await nextDecisions(3)) {
        expect(d).toMatchObject({ currentWorkers: 2, desiredWorkers: 2 });
        expect(d.reason).toMatch(/^no change: scale-down delay/);
      }
      expect(names()).toEqual(['skypilot-worker-1', 'skypilot-worker-2']);

      // remove NAME --wait: drained, then gone.
      const removed = await flockctl(['remove', 'skypilot-worker-2', '--wait']);
      expect(removed.code).toBe(0);
      expect(removed.stdout).toMatch(/^skypilot-worker-2: draining \(0 in flight\); terminated once they finish\n/);
      expect(removed.stdout).toMatch(/skypilot-worker-2: gone\n$/);
      expect(names()).toEqual(['skypilot-worker-1']);

      // scale: the autoscaler obeys the new bounds, up and down.
      const up = await flockctl(['scale', '--min', '3', '--max', '3']);
      expect(up).toMatchObject({ code: 0, stdout: 'scale bounds: min 3, max 3\n' });
      await waitFor(() => ready() === 3, 'three ready workers');
      const down = await flockctl(['scale', '--min', '1', '--max', '1']);
      expect(down.code).toBe(0);
      await waitFor(() => names().length === 1, 'one worker left');
      // Three more decisions, each within the bounds.
      for (const d of await nextDecisions(3)) expect(d).toMatchObject({ currentWorkers: 1, desiredWorkers: 1 });
      expect(names()).toHaveLength(1);
      expect(t.gw.status()).toMatchObject({ minWorkers: 1, maxWorkers: 1, readyWorkerCount: 1 });

      // watch printed the events, one line each.
      await waitFor(() => /worker skypilot-worker-3 terminating → gone/.test(watched), 'the last events at watch');
      const lines = watched.trim().split('\n');
      const stamp = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /;
      expect(lines.every((l) => stamp.test(l))).toBe(true);
      // The first life of skypilot-worker-2 (the name comes back when scaling to 3).
      const workerLines = lines
        .map((l) => l.replace(stamp, ''))
        .filter((l) => l.includes('skypilot-worker-2'))
        .slice(0, 6);
      expect(workerLines).toEqual([
        'worker skypilot-worker-2 added (provisioning)',
        'worker skypilot-worker-2 provisioning → starting (launched)',
        'worker skypilot-worker-2 starting → ready (readiness probe passed)',
        'worker skypilot-worker-2 ready → draining (removed)',
        'worker skypilot-worker-2 draining → terminating (terminate)',
        'worker skypilot-worker-2 terminating → gone (terminated)',
      ]);
      expect(watched).toMatch(
        /autoscaler running-mean 1 → 3 workers, queue mean \d+\.\d\d: .*clamped to min_workers 3/,
      );
      watch.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      watch.kill('SIGKILL');
    }
  });

  // [what, exit code, args, options ('off': the gateway without a key; 'full': one at max_workers; 'http': its HTTP port), stderr must match]
  const failures: [string, number, string[], Parameters<typeof flockctl>[1] | 'off' | 'full' | 'http', RegExp][] = [
    ['usage: scale without bounds', 2, ['scale'], {}, /give --min, --max or both/],
    ['usage: not a number', 2, ['scale', '--min', 'two'], {}, /expected a whole number/],
    ['usage: bounds the gateway refuses', 2, ['scale', '--min', '5', '--max', '2'], {}, /min_workers ≤ max_workers/],
    ['unreachable', 3, ['status', '--timeout', '3'], { address: '127.0.0.1:1' }, /cannot reach the gateway/],
    ['wrong key', 4, ['--key', 'nope', 'status'], {}, /not accepted/],
    ['no key', 4, ['status'], { env: { PATH: process.env['PATH'] } }, /pass --key or set FLOCKSERVE_NODE_CONTROL_KEY/],
    ['node control off', 5, ['status'], 'off', /--node_control_key/],
    ['unknown worker', 6, ['drain', 'skypilot-worker-42'], {}, /No worker is named skypilot-worker-42/],
    ['at max_workers', 1, ['add'], 'full', /max_workers is 1/],
    ['the HTTP port', 3, ['status'], 'http', /looks like the gateway's HTTP port.*HTTP port \+ 1.*try --address/],
  ];
  it.each(failures)('%s → exit %i', async (_what, code, args, opts, message) => {
    const where =
      opts === 'off'
        ? { address: off.grpcAddress }
        : opts === 'full'
          ? { address: full.grpcAddress }
          : opts === 'http'
            ? { address: new URL(t.url).host }
            : opts;
    const r = await flockctl(args, where);
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(message);
    if (opts === 'http') {
      const port = Number(new URL(t.url).port);
      expect(r.stderr).toContain(`try --address 127.0.0.1:${port + 1}`);
    }
  });

  it('--version prints the package version', async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(await flockctl(['--version'])).toMatchObject({ code: 0, stdout: `${version}\n` });
  });

  it('--help documents the exit codes, for every command', async () => {
    for (const args of [['--help'], ['watch', '--help'], ['remove', '--help']]) {
      const r = await flockctl(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('3  the gateway is unreachable');
      expect(r.stdout).toContain('6  no worker has that name');
    }
  });
});
