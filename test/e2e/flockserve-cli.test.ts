import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/gateway.js';

// The flockserve bin as a user runs it: `--check` validates the flags and the task and exits, a
// broken task fails at startup before anything listens, and every usage or configuration error
// exits 2, as the README documents (any other failure: 1).

const FLOCKSERVE = join(ROOT, 'dist/cli/flockserve.js');
const dir = mkdtempSync(join(tmpdir(), 'flockserve-cli-'));

/** A task file with this YAML text. */
function task(name: string, text: string): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, text);
  return path;
}

const NO_RUN = task('no-run', 'name: broken\nresources:\n  ports: 8000\nsetup: echo set up\n');
const LOCAL_SIM = join(ROOT, 'examples/serving_sim_local.yaml');

function flockserve(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      [FLOCKSERVE, ...args],
      // No FLOCKSERVE_* from the environment running the tests.
      { env: { PATH: process.env['PATH'] }, timeout: 30_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    ),
  );
}

const STATIC_3 = 'http://127.0.0.1:9001,http://127.0.0.1:9002,http://127.0.0.1:9003';

describe('flockserve --check and exit codes', () => {
  it('--check prints what would run and exits 0, starting nothing', async () => {
    const r = await flockserve([
      '--check',
      '--skypilot_task',
      LOCAL_SIM,
      '--provisioner',
      'local',
      '--port',
      '8080',
      '--min_workers',
      '2',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toEqual([
      'flockserve: configuration OK; nothing was started',
      `  task          ${LOCAL_SIM} (flockserve-sim)`,
      '  run           exec node dist/cli/flockserve-sim.js --model sim --enable-lora',
      '  provisioner   local: 2 to 2 workers, 30 requests each',
      '  listen        HTTP 0.0.0.0:8080, gRPC 0.0.0.0:8081',
      '  policies      autoscaler slo, load balancer least-connection',
      '  node control  off (no --node_control_key)',
      '  api keys      none: inference and engine routes are open (no --api_key)',
      '  metrics       GET /metrics; OTLP to http://localhost:4317 every 120 s',
      '',
    ]);
  });

  it('--check says how many API keys guard the workers, never the keys', async () => {
    const r = await flockserve(['--check', '--skypilot_task', LOCAL_SIM, '--api-key', 'k-secret-1,k-secret-2']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('  api keys      2 (every inference and engine route needs one)\n');
    expect(r.stdout).not.toContain('k-secret');
  });

  it('--check with static workers: the fleet is every listed engine', async () => {
    const r = await flockserve([
      '--check',
      '--skypilot_task',
      LOCAL_SIM,
      '--provisioner',
      'static',
      '--workers',
      STATIC_3,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      '  provisioner   static: 3 to 3 workers of http://127.0.0.1:9001, http://127.0.0.1:9002, http://127.0.0.1:9003, 30 requests each',
    );
  });

  // [what, exit code, args, stderr]: the task checks themselves are in test/unit/provisioners/task.test.ts.
  const cases: [string, number, string[], RegExp][] = [
    ['a task without run (--check)', 2, ['--check', '--skypilot_task', NO_RUN], /no run command/],
    ['a task without run, started for real', 2, ['--skypilot_task', NO_RUN, '--port', '0'], /no run command/],
    ['a missing task file', 2, ['--skypilot_task', join(dir, 'nope.yaml'), '--port', '0'], /nope\.yaml: no such file/],
    ['an unknown flag', 2, ['--check', '--skypilot_task', LOCAL_SIM, '--bogus'], /unknown option --bogus/],
    [
      'static: more engines listed than --max_workers',
      2,
      ['--check', '--skypilot_task', LOCAL_SIM, '--provisioner', 'static', '--workers', STATIC_3, '--max_workers', '2'],
      /--workers lists 3 engines but --max_workers is 2, so 1 would never be used/,
    ],
  ];
  it.each(cases)('%s → exit %i, before anything listens', async (_what, code, args, message) => {
    const r = await flockserve(args);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).not.toMatch(/listening/);
    expect(r.code).toBe(code);
  });

  it('--version prints the package version; --help documents the exit codes', async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(await flockserve(['--version'])).toMatchObject({ code: 0, stdout: `${version}\n` });
    const help = await flockserve(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit codes: 0 stopped cleanly (or --check passed), 1 any other failure, 2 a usage');
  });
});
