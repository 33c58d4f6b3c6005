import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startGateway, type TestGateway } from '../helpers/gateway.js';

// clients/run-examples.sh, as CI runs it, against a live gateway: the TypeScript examples
// (through `flockserve/client`) and the Python one (through the generated stubs).

let t: TestGateway;
/** As the quick start runs it: no node control key. */
let quickStart: TestGateway;

beforeAll(async () => {
  [t, quickStart] = await Promise.all([
    startGateway({ nodeControlKey: 'sekret', minWorkers: 2, maxWorkers: 2 }),
    startGateway({ minWorkers: 1, maxWorkers: 1 }),
  ]);
});
afterAll(() => Promise.all([t?.close(), quickStart?.close()]));

/** Runs a command from the project root; no node control key unless `env` has one. */
function run(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { FLOCKSERVE_NODE_CONTROL_KEY: _, ...rest } = process.env;
  return new Promise((resolve) =>
    execFile(file, args, { cwd: ROOT, env: { ...rest, ...env }, timeout: 90_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

it('every client example runs and prints what it should', async () => {
  const { code, output } = await new Promise<{ code: number; output: string }>((resolve) =>
    execFile(
      join(ROOT, 'clients/run-examples.sh'),
      [t.grpcAddress],
      { cwd: ROOT, env: { ...process.env, FLOCKSERVE_NODE_CONTROL_KEY: 'sekret' }, timeout: 90_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, output: stdout + stderr }),
    ),
  );
  expect(output).toContain('all client examples passed');
  expect(code).toBe(0);
  // Both workers listed by each language's node control example.
  expect(output.match(/^skypilot-worker-\d\tready\thttp:\/\/127\.0\.0\.1:\d+\t0\/30 in flight$/gm)).toHaveLength(4);
  expect(output.match(/^\[finish_reason: length\]$/gm)).toHaveLength(2);
}, 120_000);

describe('against the quick-start gateway (node control off), as documented', () => {
  it('the Python example says node control is off, then streams the chat', async () => {
    const r = await run('/usr/bin/python3', ['clients/python/example.py', quickStart.grpcAddress]);
    expect(r.stderr).toMatch(/^\(skipping the worker list: Node control is disabled.*--node_control_key KEY/);
    expect(r.stdout).toMatch(/\n\[finish_reason: length\]\n$/);
    expect(r.stdout).not.toMatch(/workers$/m);
    expect(r.code).toBe(0);
  });

  it('list-workers fails with the way to turn node control on', async () => {
    const built = await run('npx', ['tsc', '-p', 'clients/typescript']);
    expect(built.code).toBe(0);
    const r = await run(process.execPath, ['clients/typescript/dist/examples/list-workers.js', quickStart.grpcAddress]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Node control is disabled.*Start the gateway with --node_control_key KEY/);
    // A whole tsc compile of the client: slow on a busy two-core machine.
  }, 120_000);
});
