import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { ConfigError } from '../../config/resolve.js';
import { renderChart } from './chart.js';
import { parseSimulateArgs, simulateHelp, type SimArgs } from './args.js';
import { formatReport, policyKnobs, attributions, scaleCounts, timelineCsv, type RunDescription } from './report.js';
import { progressReporter, type Progress } from './progress.js';
import { readRateEnvelope } from './rates.js';
import { simulate, type SimulationResult } from './run.js';
import { TraceError, readLengths, scanTrace, traceRequests, traceWindow, type TraceRequest } from './trace.js';
import {
  burstyRequests,
  burstyWorkload,
  envelopeRequests,
  envelopeWorkload,
  multiTurnWorkload,
  traceWorkload,
  type SimWorkload,
} from './workload.js';
import { envelopeMeanRate, envelopeSpanS } from '../workloads/envelope.js';

export interface SimulateIo {
  out(text: string): void;
  err(text: string): void;
  /** Whether `err` writes to a terminal (default: whether stderr is one): a progress bar there, plain lines elsewhere. */
  readonly errIsTTY?: boolean;
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
    const progress = args.quiet
      ? undefined
      : (plan: PlannedWorkload) =>
          progressReporter({
            write: (t) => io.err(t),
            tty: io.errIsTTY ?? process.stderr.isTTY === true,
            ...(plan.spanS === undefined ? {} : { spanS: plan.spanS }),
            ...(plan.workload.size === undefined ? {} : { total: plan.workload.size }),
            now: () => performance.now(),
          });
    const { result, description } = await runSimulation(args, progress);
    // The numbers first: a timeline or chart that cannot be written loses nothing the run computed.
    if (args.json) io.out(JSON.stringify(summaryJson(result, description), null, 2) + '\n');
    else io.out(`${formatReport(result, description)}\n`);
    try {
      await writeOutputs(args, result, description);
    } catch (err) {
      io.err(`flockserve simulate: the timeline or the chart could not be written: ${(err as Error).message}\n`);
      return 1;
    }
    if (!args.json) io.out(`timeline       ${args.timeline}\nchart          ${args.chart}\n`);
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

/** A workload ready to run, with what the report and the progress need to know about it. */
export interface PlannedWorkload {
  readonly workload: SimWorkload;
  /** Simulated seconds the arrivals span, when known before the run. */
  readonly spanS?: number;
  /** Files it reads, for the report's attributions. */
  readonly sources: readonly string[];
  /**
   * The same requests as a fresh stream, arrivals in the run's time (a trace's time scale
   * applied): what the clairvoyant bound is computed from. None for a closed-loop workload,
   * whose arrivals depend on the fleet.
   */
  readonly requests?: () => Iterable<TraceRequest>;
}

/** The longest span a run simulates: past it, a trace's timestamps are likelier wrong than meant. */
export const MAX_SPAN_DAYS = 366;
/** The most timeline rows a run keeps (one per sample interval, in memory until the run ends). */
export const MAX_TIMELINE_ROWS = 5_000_000;

/**
 * Makes the workload the arguments ask for. A trace is checked whole first (every line, as a
 * stream), so a bad line stops the run before it starts; then the run reads it again as it
 * goes. Each call makes a fresh workload (a workload is used up by one run). A run longer than
 * MAX_SPAN_DAYS, or one that would keep more than MAX_TIMELINE_ROWS, is refused before it starts.
 */
export function planWorkload(args: SimArgs): PlannedWorkload {
  const plan = workloadOf(args);
  const spanS = plan.spanS;
  if (spanS === undefined) return plan;
  const days = spanS / 86_400;
  if (days > MAX_SPAN_DAYS)
    throw new TraceError(
      `the run would simulate ${days.toPrecision(3)} days${args.workload === 'trace' ? ` (${args.trace}'s last arrival, at time scale ${args.timeScale})` : ''}; simulate runs at most ${MAX_SPAN_DAYS}: check the timestamps, or simulate a part with --start and --duration`,
    );
  const rows = spanS / args.sampleIntervalS;
  if (rows > MAX_TIMELINE_ROWS)
    throw new TraceError(
      `the run would keep ${Math.round(rows)} timeline rows (one every --sample-interval ${args.sampleIntervalS} s over ${Math.round(spanS)} s); at most ${MAX_TIMELINE_ROWS}: use --sample-interval ${Math.ceil(spanS / MAX_TIMELINE_ROWS)} or more`,
    );
  return plan;
}

/** The workload `args` name, and what its report and progress need to know of it. */
function workloadOf(args: SimArgs): PlannedWorkload {
  switch (args.workload) {
    case 'multi-turn':
      return { workload: multiTurnWorkload(args.multiTurn), sources: [] };
    case 'trace': {
      const file = args.trace!;
      const { startS, durationS } = args.traceWindow;
      const window = { startMs: startS * 1000, endMs: (startS + durationS) * 1000 };
      const scan = scanTrace(file, window);
      const read = (): Iterable<TraceRequest> => traceWindow(traceRequests(file), window);
      return {
        workload: traceWorkload(
          read(),
          args.timeScale,
          traceLabel(file, startS, durationS, scan.leftOut),
          scan.requests,
        ),
        spanS: scan.lastArrivalMs / args.timeScale / 1000,
        sources: [file],
        requests: () => scaled(read(), args.timeScale),
      };
    }
    case 'envelope': {
      const e = args.envelope;
      const env = readRateEnvelope(e.rates);
      const spanS = envelopeSpanS(env);
      if (e.durationS > spanS)
        throw new TraceError(
          `${e.rates}: the envelope covers ${spanS} s (${(spanS / 86_400).toFixed(2)} days); the span asked for is ${e.durationS} s`,
        );
      const lengths = readLengths(args.lengths);
      if (!(envelopeMeanRate(env, e.durationS) > 0))
        throw new TraceError(`${e.rates}: every window's rate_rps is 0 over the first ${e.durationS} s`);
      const kind = e.arrivalCv === 1 ? 'Poisson' : `Gamma, cv ${e.arrivalCv}`;
      const label = `envelope ${basename(e.rates)} scaled to a mean of ${e.meanRate} req/s over ${e.durationS} s (${kind}), lengths from ${basename(args.lengths)}`;
      const o = { seed: args.seed, ...e };
      return {
        workload: envelopeWorkload(env, lengths, o, label),
        spanS: e.durationS,
        sources: [e.rates, args.lengths],
        requests: () => envelopeRequests(env, lengths, o),
      };
    }
    case 'bursty': {
      const b = args.bursty;
      const lengths = readLengths(args.lengths);
      const label = `bursty: base ${b.baseRate} req/s, bursts of ${b.burstSize.join('-')} over ${b.burstWidthS} s every ~${b.burstEveryS} s, ${b.durationS} s, lengths from ${basename(args.lengths)}`;
      return {
        workload: burstyWorkload(lengths, b, label),
        spanS: b.durationS,
        sources: [args.lengths],
        requests: () => burstyRequests(lengths, b),
      };
    }
  }
}

/** The trace's name, the part of it replayed when not all of it, and what of it could not be replayed. */
function traceLabel(file: string, startS: number, durationS: number, leftOut: number): string {
  const part =
    startS === 0 && durationS === Infinity
      ? ''
      : `, ${durationS === Infinity ? 'to its end' : `${durationS} s`} from ${startS} s`;
  const unknown = leftOut > 0 ? ` (${leftOut} of the log’s requests left out: no token counts)` : '';
  return `${file}${part}${unknown}`;
}

/** A trace's requests with arrivals `timeScale` times sooner. */
function* scaled(requests: Iterable<TraceRequest>, timeScale: number): Generator<TraceRequest, void, undefined> {
  for (const r of requests) yield timeScale === 1 ? r : { ...r, arrivalMs: r.arrivalMs / timeScale };
}

/**
 * Makes the workload and runs it; the programmatic entry the benchmarks and tests share with
 * the CLI. `progress`, if given, makes the reporter the run feeds.
 */
export async function runSimulation(
  args: SimArgs,
  progress?: (plan: PlannedWorkload) => Progress,
): Promise<{ result: SimulationResult; description: RunDescription }> {
  const plan = planWorkload(args);
  const { workload } = plan;
  const reporter = progress?.(plan);
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
    profile: args.profile,
    oracle: args.oracle,
    faults: args.faults,
    ...(args.initialWorkers === undefined ? {} : { initialWorkers: args.initialWorkers }),
    ...(reporter ? { onProgress: reporter.update } : {}),
  }).finally(() => reporter?.done());
  const wallS = (performance.now() - started) / 1000;
  return { result, description: { ...describeRun(args, plan), wallS } };
}

/** How a run is set up, as the report and the chart say it. */
export function describeRun(args: SimArgs, plan: PlannedWorkload): Omit<RunDescription, 'wallS'> {
  const launch =
    args.provisionDelayDist === 'fixed'
      ? `fixed ${args.provisionDelayS} s`
      : `${args.provisionDelayDist}, mean ${args.provisionDelayS} s${args.provisionDelayDist === 'exponential' ? '' : `, cv ${args.provisionDelayCv}`}`;
  const { launchFailureRate, preemptionsPerHour } = args.faults;
  const faults = [
    ...(launchFailureRate > 0 ? [`${+(launchFailureRate * 100).toFixed(1)}% of launches fail`] : []),
    ...(preemptionsPerHour > 0 ? [`${preemptionsPerHour} preemptions per worker-hour`] : []),
  ];
  return {
    workload: plan.workload.label,
    ...(args.workload === 'trace' ? { trace: args.trace!, timeScale: args.timeScale } : {}),
    sources: plan.sources,
    config: args.config,
    seed: args.seed,
    launch: [launch, ...faults].join('; '),
    oracle: args.oracle,
    profile: args.profile,
  };
}

async function writeOutputs(args: SimArgs, r: SimulationResult, d: RunDescription): Promise<void> {
  const c = d.config;
  const chart = renderChart(r.timeline, {
    title: `${c.autoscaler} on ${d.trace === undefined ? d.workload : `${d.trace.split('/').at(-1)}, time scale ${d.timeScale}`}, launches ${d.launch}`,
    notes: [
      `${policyKnobs(c)}`,
      `workers [${c.minWorkers}, ${c.maxWorkers}], capacity ${c.workerCapacity}, seed ${d.seed}. SIMULATED workers and launches (engine model of flockserve-sim).`,
      ...attributions(d),
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
    attribution: attributions(d).join(' ') || undefined,
    autoscaler: d.config.autoscaler,
    timeScale: d.timeScale,
    launch: d.launch,
    seed: d.seed,
    wallS: d.wallS,
    summary: r.summary,
    launches: r.launches,
    prefixCache: r.prefixCache,
    balance: r.balance,
    prefillUtilisation: r.prefillUtilisation,
    scaleUps: up,
    scaleDowns: down,
    gateway: r.gateway,
  };
}
