import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from '../../helpers/gateway.js';

// A gateway process shut down while a worker slot is still held by a request that has no socket
// open (so nothing but the shutdown itself keeps node running): the process must stay until its
// workers are torn down, not exit half way with them left running.
const SCRIPT = `
import { FlockServe } from ${JSON.stringify(join(ROOT, 'dist/index.js'))};
const gw = new FlockServe({
  skypilotTask: ${JSON.stringify(join(ROOT, 'examples/serving_sim_local.yaml'))},
  provisioner: 'local', minWorkers: 1, maxWorkers: 1, host: '127.0.0.1', port: 0, grpcPort: 0,
  workerProbeInterval: 0.05, statusLogInterval: 0, metricsId: -1, verbosity: 0, drainTimeout: 0.5,
});
await gw.run();
while (gw.status().readyWorkerCount < 1) await new Promise((r) => setTimeout(r, 20));
const pid = gw.workers()[0].detail.pid;
// A slot taken and never given back, as a request whose answer nobody reads would hold it.
gw.gateway.admission.tryAcquire({ ctx: {}, timeoutMs: 1000 });
await gw.close();
let alive = true;
try { process.kill(Number(pid), 0); } catch { alive = false; }
console.log(JSON.stringify({ closed: true, pid, workerAlive: alive, states: gw.workers().map((w) => w.state) }));
`;

it('shutdown keeps the process until the workers are torn down, whatever still holds a slot', async () => {
  const out = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['--input-type=module', '-e', SCRIPT], { cwd: ROOT, timeout: 60_000 }, (err, stdout) =>
      err ? reject(err) : resolve(stdout),
    ),
  );
  const last = out.trim().split('\n').at(-1) ?? '';
  expect(last).toMatch(/^\{/); // the script got past close(): the process did not exit during it
  const r = JSON.parse(last) as { closed: boolean; pid: string | undefined; workerAlive: boolean; states: string[] };
  expect(r.pid).toBeDefined();
  expect(r).toMatchObject({ closed: true, workerAlive: false });
  expect(r.states.every((s) => s === 'gone')).toBe(true);
});
