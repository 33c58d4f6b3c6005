// One `flockserve plan --policies slo` on a shape, the same shape's slo through another build
// (cold and warm, with the plan's bounds), and the table cells that weigh them against the
// plan's fixed fleets and bound. Shared by the benches that write slo's rows per shape.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_QUEUE_WAIT_SLO_S } from '../../dist/core/autoscaler/slo.js';
import { dominates } from '../../dist/sim/plan/plan.js';
import { simulateRun } from './simulate-run.mjs';

const run = promisify(execFile);

/**
 * The plan of `shape` (simulate's workload arguments) with slo cold and warm, run from `root`;
 * with `baseRoot`, that build's slo on the same shape and bounds as `base.cold` and `base.warm`.
 */
export async function planSlo(root, shape, baseRoot) {
  const chart = join(mkdtempSync(join(tmpdir(), 'bench-slo-plan-')), 'plan.svg');
  const { stdout } = await run(
    'node',
    ['dist/cli/flockserve.js', 'plan', ...shape, '--policies', 'slo', '--json', '--quiet', '--chart', chart],
    { cwd: root, maxBuffer: 1 << 26 },
  );
  const plan = JSON.parse(stdout);
  // Every run, the plan's and the base build's, in the shape `dominates` weighs.
  const judged = (r) => ({ ...r, p99: r.queueWaitS.p99 });
  plan.fixed = plan.fixed.map(judged);
  plan.policies = plan.policies.map(judged);
  const base = {};
  if (baseRoot)
    for (const p of plan.policies)
      base[p.start] = await simulateRun(
        baseRoot,
        [...shape, '--max_workers', String(p.maxWorkers), '--initial-workers', String(p.initialWorkers)],
        root,
      );
  return { plan, base };
}

const f2 = (v) => v.toFixed(2);
const wait = (r) => `${r.p99 < 0.05 ? '0' : r.p99.toFixed(1)} s`;
const failed = (r) => (r.failed > 0 ? `, ${r.failed} failed` : '');
const held = (r) => r.p99 <= DEFAULT_QUEUE_WAIT_SLO_S && r.failed === 0;

/** The plan's fixed fleets: `N: worker-h @ p99[, failed]`, one after another. */
export function fixedCell(plan) {
  return plan.fixed.map((f) => `${f.maxWorkers}: ${f2(f.workerHours)} @ ${wait(f)}${failed(f)}`).join('; ');
}

/** A run against the plan: worker-h @ p99, ÷ the bound, ÷ the cheapest fixed fleet holding the SLO, dominated by. */
export function runCell(r, plan) {
  const by = plan.fixed.find((f) => dominates(f, r));
  const hold = plan.fixed.find(held);
  return [
    `${f2(r.workerHours)} @ ${wait(r)}${failed(r)}`,
    `${f2(r.workerHours / plan.bound.workerHours)} × the bound`,
    hold ? `${f2(r.workerHours / hold.workerHours)} × fixed ${hold.maxWorkers}` : '',
    by ? `**dominated by fixed ${by.maxWorkers}**` : '',
  ]
    .filter(Boolean)
    .join('; ');
}
