import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigError } from '../../config/resolve.js';
import { renderChart } from './chart.js';
import { parseSimulateArgs, simulateHelp, type SimArgs } from './args.js';
import {
  formatReport,
  policyKnobs,
  scaleCounts,
  timelineCsv,
  traceAttribution,
  type RunDescription,
} from './report.js';
import { simulate, type SimulationResult } from './run.js';
import { TraceError, readTrace } from './trace.js';
import { multiTurnWorkload, traceWorkload, type SimWorkload } from './workload.js';

export interface SimulateIo {
  out(text: string): void;
  err(text: string): void;
}

/** `flockserve simulate …`: returns the exit code (0 done, 2 bad arguments or trace, 1 failure). */
export async function simulateMain(argv: readonly string[], io: SimulateIo): Promise<number> {
  let args: SimArgs;
  try {
    const parsed = parseSimulateArgs(argv);
    if (parsed === 'help') {
      io.out(simulateHelp() + '\n');
      return 0;
    }
    args = parsed;
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`flockserve simulate: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  try {
    const { result, description } = await runSimulation(args);
    await writeOutputs(args, result, description);
    if (args.json) io.out(JSON.stringify(summaryJson(result, description), null, 2) + '\n');
    else
      io.out(`${formatReport(result, description)}\ntimeline       ${args.timeline}\nchart          ${args.chart}\n`);
    return 0;
  } catch (err) {
    if (err instanceof TraceError) {
      io.err(`flockserve simulate: ${err.message}\n`);
      return 2;
    }
    io.err(`flockserve simulate: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

/** Makes the workload (reading the trace) and runs it; the programmatic entry the benchmarks and tests share with the CLI. */
export async function runSimulation(args: SimArgs): Promise<{ result: SimulationResult; description: RunDescription }> {
  const workload: SimWorkload =
    args.workload === 'multi-turn'
      ? multiTurnWorkload(args.multiTurn)
      : traceWorkload(await readTrace(args.trace!), args.timeScale, args.trace!);
  const started = performance.now();
  const result = await simulate({
    workload,
    config: args.config,
    launchDelay: {
      distribution: args.provisionDelayDist,
      meanMs: args.provisionDelayS * 1000,
      cv: args.provisionDelayCv,
    },
    seed: args.seed,
    sampleIntervalMs: args.sampleIntervalS * 1000,
    settle: args.settle,
    ...(args.initialWorkers === undefined ? {} : { initialWorkers: args.initialWorkers }),
  });
  const wallS = (performance.now() - started) / 1000;
  const launch =
    args.provisionDelayDist === 'fixed'
      ? `fixed ${args.provisionDelayS} s`
      : `${args.provisionDelayDist}, mean ${args.provisionDelayS} s${args.provisionDelayDist === 'exponential' ? '' : `, cv ${args.provisionDelayCv}`}`;
  return {
    result,
    description: {
      workload: workload.label,
      ...(args.workload === 'trace' ? { trace: args.trace!, timeScale: args.timeScale } : {}),
      config: args.config,
      seed: args.seed,
      launch,
      wallS,
    },
  };
}

async function writeOutputs(args: SimArgs, r: SimulationResult, d: RunDescription): Promise<void> {
  const c = d.config;
  const attribution = traceAttribution(d.trace);
  const chart = renderChart(r.timeline, {
    title: `${c.autoscaler} on ${d.trace === undefined ? d.workload : `${d.trace.split('/').at(-1)}, time scale ${d.timeScale}`}, launches ${d.launch}`,
    notes: [
      `${policyKnobs(c)}`,
      `workers [${c.minWorkers}, ${c.maxWorkers}], capacity ${c.workerCapacity}, seed ${d.seed}. SIMULATED workers and launches (engine model of flockserve-sim).`,
      ...(attribution ? [attribution] : []),
    ],
  });
  for (const [path, body] of [
    [args.timeline, timelineCsv(r.timeline)],
    [args.chart, chart],
  ] as const) {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, body);
  }
}

/** The numbers of a run, for `--json` (the benchmark reads these). */
function summaryJson(r: SimulationResult, d: RunDescription): Record<string, unknown> {
  const { up, down } = scaleCounts(r);
  return {
    workload: d.workload,
    trace: d.trace,
    attribution: traceAttribution(d.trace),
    autoscaler: d.config.autoscaler,
    timeScale: d.timeScale,
    launch: d.launch,
    seed: d.seed,
    wallS: d.wallS,
    summary: r.summary,
    launches: r.launches,
    prefixCache: r.prefixCache,
    scaleUps: up,
    scaleDowns: down,
  };
}
