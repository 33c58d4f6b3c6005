import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ROOT, startGateway, type TestGateway } from '../helpers/gateway.js';

// clients/run-examples.sh, as CI runs it, against a live gateway: the TypeScript examples
// (through `flockserve/client`) and the Python one (through the generated stubs).

let t: TestGateway;

beforeAll(async () => {
  t = await startGateway({ nodeControlKey: 'sekret', minWorkers: 2, maxWorkers: 2 });
});
afterAll(() => t?.close());

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
