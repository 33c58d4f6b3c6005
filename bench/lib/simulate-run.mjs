// One `flockserve simulate` of the build at `root` (the directory holding its dist/), with
// `args` and its output files sent nowhere: what dominance weighs of the run (the shape of
// `dominates` in src/sim/plan/plan.ts).
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs from `cwd` (relative trace paths are read from there). */
export async function simulateRun(root, args, cwd) {
  const { stdout } = await run(
    'node',
    [
      resolve(root, 'dist/cli/flockserve.js'),
      'simulate',
      ...args,
      '--json',
      '--quiet',
      '--timeline',
      '/dev/null',
      '--chart',
      '/dev/null',
    ],
    { cwd, maxBuffer: 1 << 28 },
  );
  const s = JSON.parse(stdout).summary;
  const failed = Object.values(s.failed).reduce((a, b) => a + b, 0);
  return { workerHours: s.workerSeconds / 3600, p99: s.queueWaitS.p99, failed };
}
