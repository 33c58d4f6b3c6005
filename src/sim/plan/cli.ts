import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigError } from '../../config/resolve.js';
import { optionsHelp, parsePlanArgs, type PlanArgs } from '../cluster/args.js';
import { describeRun, planWorkload, type SimulateIo } from '../cluster/cli.js';
import { attributions } from '../cluster/report.js';
import { TraceError } from '../cluster/trace.js';
import { renderPlanChart } from './chart.js';
import { runPlan } from './plan.js';
import { formatPlan, planJson } from './report.js';

/** `flockserve plan …`: returns the exit code (0 done, 2 bad arguments or workload file, 1 failure). */
export async function planMain(argv: readonly string[], io: SimulateIo): Promise<number> {
  let args: PlanArgs;
  try {
    const parsed = parsePlanArgs(argv);
    if (parsed === 'help') {
      io.out(planHelp() + '\n');
      return 0;
    }
    args = parsed;
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`flockserve plan: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  try {
    const sim = args.sim;
    const description = describeRun(sim, planWorkload(sim));
    const result = await runPlan(args, sim.quiet ? {} : { progress: (line) => io.err(`plan: ${line}\n`) });
    const c = sim.config;
    const chart = renderPlanChart(result, {
      title: `${description.trace === undefined ? description.workload : `${description.trace.split('/').at(-1)}, time scale ${description.timeScale}`}, launches ${description.launch}`,
      notes: [
        `Knobs: queue_wait_slo ${c.queueWaitSlo} s, target_queue_per_worker ${c.targetQueuePerWorker}, autoscale_up/down ${c.autoscaleUp}/${c.autoscaleDown}; window ${c.queueTrackingWindow} s, interval ${c.autoscaleInterval} s, downscale delay ${c.downscaleDelay} s.`,
        `Capacity ${c.workerCapacity} per worker, min_workers ${c.minWorkers}, seed ${sim.seed}. SIMULATED workers and launches (engine model of flockserve-sim).`,
        ...attributions(description),
      ],
    });
    // The plan first: a chart that cannot be written loses nothing the sweep computed.
    if (sim.json) io.out(JSON.stringify(planJson(result, description), null, 2) + '\n');
    else io.out(`${formatPlan(result, description)}\n`);
    try {
      await mkdir(dirname(sim.chart), { recursive: true });
      await writeFile(sim.chart, chart);
    } catch (err) {
      io.err(`flockserve plan: the chart could not be written: ${(err as Error).message}\n`);
      return 1;
    }
    if (!sim.json) io.out(`chart          ${sim.chart}\n`);
    return 0;
  } catch (err) {
    if (err instanceof TraceError) {
      io.err(`flockserve plan: ${err.message}\n`);
      return 2;
    }
    io.err(`flockserve plan: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

export function planHelp(): string {
  return [
    'Usage: flockserve plan [--trace FILE] [--provision-delay S] [--policies a,b] [options]',
    '       flockserve plan --workload envelope|bursty [options]',
    '',
    'How many workers does this traffic need, and what does autoscaling save? On one workload, in',
    'virtual time (as flockserve simulate runs it: the real gateway core, SIMULATED workers and launches):',
    '  1. fixed fleets of 1, 2, ... workers until one serves every request without a wait:',
    '     queue wait p50/p95/p99, TTFT p99, failed requests, worker-hours;',
    '  2. the clairvoyant bound: the cheapest fleet schedule that knows every arrival and the launch delay;',
    '  3. each policy of --policies, started cold (min_workers) and warm (the fleet that waits for',
    '     nothing), against both: cost ÷ bound, cost ÷ the cheapest fixed fleet with a p99 wait no',
    '     worse, dominated or not (costs within 18 s of one worker count as the same), launches per',
    "     hour, and churn (launches within 2 × the bound's + 2, where a run that starts with fewer",
    "     workers than the bound's peak counts a launch for each it lacks, and no quick relaunch).",
    'Prints a table (or --json), writes an SVG of the frontier with the policies as points, and',
    'reports progress on stderr. max_workers, when not given, is twice the fleet in which no request waits.',
    '',
    ...optionsHelp('plan'),
  ].join('\n');
}
