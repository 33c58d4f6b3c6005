/**
 * `flockserve plan`: how many workers a workload needs, and what autoscaling saves. On one
 * workload (a trace, an envelope or bursts, as `simulate` runs them) it runs
 *
 *   1. the fixed-fleet frontier: N = 1, 2, ... workers (min = max = initial = N) until one
 *      serves every request without a wait (or max_fixed);
 *   2. the clairvoyant bound (bound.ts over demand.ts's curve and work.ts's windows, zero wait,
 *      the mean launch delay);
 *   3. each policy twice: cold (from min_workers) and warm (from the fixed size that waits for
 *      nothing at p99: warmStartWorkers), each placed against the bound and against the cheapest
 *      fixed fleet whose p99 queue wait is no worse.
 *
 * Every run is `simulate` with the same seed and workload, so their differences are the fleet's.
 */
import type { AutoscalerName } from '../../core/autoscaler/registry.js';
import type { PlanArgs, SimArgs } from '../cluster/args.js';
import { planWorkload } from '../cluster/cli.js';
import type { SimSummary } from '../cluster/metrics.js';
import { scaleCounts } from '../cluster/report.js';
import type { SimulationResult } from '../cluster/run.js';
import type { TraceRequest } from '../cluster/trace.js';
import { TraceError } from '../cluster/trace-types.js';
import { DEFAULT_PROFILE } from '../engine-model.js';
import { clairvoyantBound, coveringBound, coveringShape } from './bound.js';
import { demandCurve } from './demand.js';
import { windowHits } from './work.js';
import { runAll, type RunOutcome } from './runner.js';

export type Start = 'cold' | 'warm';

/**
 * A p99 queue wait below this "waits for nothing": it prints as 0.0 s at the precision plan's
 * tables give (a tenth of a second), and is a twentieth of the default SLO.
 */
export const ZERO_WAIT_P99_S = 0.05;

/**
 * The warm start: the smallest fixed fleet that waits for nothing at p99 (ZERO_WAIT_P99_S) and
 * serves every request, else the smallest whose longest wait is 0, else the largest swept.
 * Not the longest wait: one request in 20,000 waiting 2 s on 2 workers would start every policy
 * at 3, and a policy that keeps that start for any time at all then costs more than 2 workers
 * that wait as little at the precision reported. E.g. p99 / longest wait 60 / 60, 0.0045 / 2.1,
 * 0 / 0 s on 1, 2, 3 workers → 2.
 */
export function warmStartWorkers(fixed: readonly PlanRun[]): number {
  return smallestServing(fixed, (wait) => wait.p99 < ZERO_WAIT_P99_S) ?? zeroWaitWorkersOf(fixed);
}

/** The smallest fixed fleet that served every request without any wait, else the largest swept. */
function zeroWaitWorkersOf(fixed: readonly PlanRun[]): number {
  return smallestServing(fixed, (wait) => wait.max === 0) ?? fixed.at(-1)!.initialWorkers;
}

/** The smallest fixed fleet that served every request and whose queue wait passes `ok`. */
function smallestServing(
  fixed: readonly PlanRun[],
  ok: (wait: PlanRun['summary']['queueWaitS']) => boolean,
): number | undefined {
  return fixed.find((r) => servedAll(r) && ok(r.summary.queueWaitS))?.initialWorkers;
}

/** None of its requests failed or was left unfinished. */
function servedAll(r: PlanRun): boolean {
  return r.failed === 0 && r.summary.unfinished === 0;
}

/** The run held queue_wait_slo (`sloS`): it served every request, and its p99 queue wait is within the SLO. */
export function heldSlo(r: PlanRun, sloS: number): boolean {
  return servedAll(r) && r.summary.queueWaitS.p99 <= sloS;
}

/** The fleet to buy for queue_wait_slo: the smallest fixed fleet that held it, if any did. */
export function sloFleet(fixed: readonly PlanRun[], sloS: number): PlanRun | undefined {
  return fixed.find((r) => heldSlo(r, sloS));
}

export interface PlanRun {
  /** "fixed" for a fixed fleet, else the policy's name. */
  readonly policy: AutoscalerName | 'fixed';
  readonly start: Start;
  /** Workers up at the start (for a fixed fleet, its size). */
  readonly initialWorkers: number;
  readonly maxWorkers: number;
  readonly summary: SimSummary;
  /** Launches after the start (replacements included). */
  readonly launches: number;
  readonly launchesPerHour: number;
  readonly quickRelaunches: number;
  readonly scaleUps: number;
  readonly scaleDowns: number;
  readonly workerHours: number;
  readonly failed: number;
  readonly wallS: number;
  /** The bound at this run's own longest wait: what no run that waited no longer can beat. */
  readonly boundAtOwnWait: number | undefined;
}

export interface PolicyPlacement extends PlanRun {
  /** workerHours ÷ the bound. */
  readonly vsBound: number;
  /** The cheapest fixed fleet whose p99 queue wait is no worse, if any. */
  readonly fixedMatch: { readonly workers: number; readonly workerHours: number } | undefined;
  /** workerHours ÷ that fleet's. */
  readonly vsFixed: number | undefined;
  /**
   * A fixed fleet costs no more, waits no longer at p99 and fails no more requests, and is better
   * in one (costs within SAME_COST_WORKER_HOURS are the same cost).
   */
  readonly dominatedBy: number | undefined;
  /**
   * The most launches within the churn target: 2 × the bound's + 2 (boundLaunches: a run that
   * starts with fewer workers than the bound's peak counts a launch for each it lacks).
   */
  readonly launchAllowance: number;
  /**
   * Churn within bounds: launches within launchAllowance, and no quick relaunch (no ready worker
   * scaled down less than a launch delay before a launch it could have served).
   */
  readonly churnOk: boolean;
}

export interface PlanBound {
  readonly workerHours: number;
  /**
   * Launches beyond the workers needed at t = 0: the slot schedule's (relaunches included), or, where
   * more, the units the whole-worker schedule readies after t = 0 for engine work (coveringShape).
   */
  readonly launches: number;
  /** The most workers either schedule has ready at once (for the whole-worker one, at least). */
  readonly peak: number;
  /** Σ of the requests' least engine time: a floor on ready worker-hours for any run that serves them all. */
  readonly workHours: number;
  /** The layered schedule over the slot demand alone. */
  readonly slotHours: number;
  /**
   * The layered schedule over the slot demand that is also ready, level by level, in every window
   * whose engine work needs that many whole workers (work.ts); the bound is the larger of it and
   * the work.
   */
  readonly windowHours: number;
  readonly launchDelayS: number;
  readonly waitS: number;
  readonly minWorkers: number;
}

export interface PlanResult {
  readonly fixed: readonly PlanRun[];
  /** The smallest fixed fleet that served every request without a wait (or the largest swept). */
  readonly zeroWaitWorkers: number;
  /** Where warm runs start: the smallest fixed fleet that waits for nothing at p99 (warmStartWorkers). */
  readonly warmWorkers: number;
  readonly bound: PlanBound;
  readonly policies: readonly PolicyPlacement[];
  /** max_workers the policies ran with, and whether plan chose it. */
  readonly maxWorkers: { readonly value: number; readonly chosen: boolean };
  readonly requests: number;
  readonly wallS: number;
}

export interface PlanHooks {
  /** One line per finished run (and per phase). */
  readonly progress?: (line: string) => void;
}

/**
 * A request no engine can hold (its prompt and output past one engine's KV cache) fails on every
 * fleet, so no size serves the workload and the sweep, the bound and the verdicts would say
 * nothing true: it is named before any run.
 */
function checkServable(requests: Iterable<TraceRequest>, kvCacheTokens: number, file: string | undefined): void {
  for (const r of requests) {
    const needs = r.promptTokens + r.outputTokens;
    if (needs <= kvCacheTokens) continue;
    throw new TraceError(
      `${file ?? 'the workload'}:${r.line}: the request needs ${needs} KV cache tokens (prompt ${r.promptTokens} + output ${r.outputTokens}), more than one engine holds (${kvCacheTokens}, --kv-cache-tokens): it fails on every fleet, so no fleet size can be planned; leave it out, or raise --kv-cache-tokens`,
    );
  }
}

/** Runs the sweep, the bound and the policies. Throws TraceError for a bad workload file. */
export async function runPlan(p: PlanArgs, hooks: PlanHooks = {}): Promise<PlanResult> {
  const started = performance.now();
  const say = hooks.progress ?? (() => {});
  const base = p.sim;
  // Checks the workload's files whole (a bad line stops the plan before any run) and gives its requests.
  const planned = planWorkload(base);
  if (!planned.requests) throw new Error(`plan needs a workload with arrivals known in advance, not ${base.workload}`);
  const requests = planned.requests;
  checkServable(requests(), base.profile.kvCacheTokens ?? DEFAULT_PROFILE.kvCacheTokens, base.trace);
  const c = base.config;

  // 1. Fixed fleets, `jobs` sizes at a time, until one waits for nothing.
  const fixed: PlanRun[] = [];
  let zeroWait: number | undefined;
  for (let n = 1; zeroWait === undefined && n <= p.maxFixed; n += p.jobs) {
    const sizes = Array.from({ length: Math.min(p.jobs, p.maxFixed - n + 1) }, (_, i) => n + i);
    const outcomes = await runAll(
      sizes.map((size) => withFleet(base, { min: size, max: size, initial: size })),
      p.jobs,
      (i, o) => say(`fixed ${sizes[i]} workers: ${brief(o.result.summary)} (${o.wallS.toFixed(1)} s)`),
    );
    outcomes.forEach((o, i) => fixed.push(planRun('fixed', 'warm', sizes[i]!, sizes[i]!, o)));
    zeroWait = smallestServing(fixed, (wait) => wait.max === 0);
  }
  const zeroWaitWorkers = zeroWaitWorkersOf(fixed);
  const warmWorkers = warmStartWorkers(fixed);

  // 2. The bound.
  const bound = boundOf(requests, base, 0);
  say(
    `clairvoyant bound (zero wait): ${bound.workerHours.toFixed(2)} worker-h, ${bound.launches} launches, peak ${bound.peak}`,
  );

  // 3. Policies, cold and warm.
  const maxWorkers = p.maxWorkers ?? Math.max(2, 2 * zeroWaitWorkers, c.minWorkers);
  const specs: { policy: AutoscalerName; start: Start; args: SimArgs }[] = [];
  for (const policy of p.policies)
    for (const start of ['cold', 'warm'] as const) {
      const initial = start === 'cold' ? c.minWorkers : Math.min(maxWorkers, Math.max(c.minWorkers, warmWorkers));
      specs.push({
        policy,
        start,
        args: withFleet(base, { min: c.minWorkers, max: maxWorkers, initial, autoscaler: policy }),
      });
    }
  const outcomes = await runAll(
    specs.map((s) => s.args),
    p.jobs,
    (i, o) => say(`${specs[i]!.policy}, ${specs[i]!.start}: ${brief(o.result.summary)} (${o.wallS.toFixed(1)} s)`),
  );
  const runs = outcomes.map((o, i) =>
    planRun(specs[i]!.policy, specs[i]!.start, specs[i]!.args.initialWorkers!, maxWorkers, o),
  );

  // Each run against the bound at its own longest wait (only runs that served every request compare).
  const atWait = new Map<number, number>();
  const check = (r: PlanRun): PlanRun => {
    if (r.failed > 0 || r.summary.unfinished > 0) return r;
    const w = r.summary.queueWaitS.max;
    if (!atWait.has(w)) atWait.set(w, boundOf(requests, base, w).workerHours);
    return { ...r, boundAtOwnWait: atWait.get(w)! };
  };
  return {
    fixed: fixed.map(check),
    zeroWaitWorkers,
    warmWorkers,
    bound,
    policies: runs.map(check).map((r) => place(r, fixed, bound)),
    maxWorkers: { value: maxWorkers, chosen: p.maxWorkers === undefined },
    requests: fixed[0]!.summary.requests,
    wallS: (performance.now() - started) / 1000,
  };
}

/** The bound for the workload's requests at a longest wait of `waitS` (exported for the tests). */
export function boundOf(requests: () => Iterable<TraceRequest>, args: SimArgs, waitS: number): PlanBound {
  const c = args.config;
  const demand = demandCurve(requests(), { capacity: c.workerCapacity, waitMs: waitS * 1000 });
  const launchDelayMs = args.provisionDelayS * 1000;
  const layered = clairvoyantBound(demand.workers, { launchDelayMs, floor: c.minWorkers });
  const hits = windowHits(demand.arrivalMs, demand.engineMs, { capacity: c.workerCapacity, waitMs: waitS * 1000 });
  const windowHours = coveringBound(demand.workers, hits, { launchDelayMs, floor: c.minWorkers }) / 3600;
  const covering = coveringShape(demand.workers, hits, c.minWorkers);
  const slotHours = layered.workerSeconds / 3600;
  const workHours = demand.workSeconds / 3600;
  return {
    workerHours: Math.max(windowHours, workHours),
    launches: Math.max(layered.launches, covering.launches),
    peak: Math.max(layered.peak, covering.peak),
    workHours,
    slotHours,
    windowHours,
    launchDelayS: args.provisionDelayS,
    waitS,
    minWorkers: c.minWorkers,
  };
}

/** The arguments with the fleet's bounds, initial workers and (optionally) policy replaced. */
function withFleet(a: SimArgs, f: { min: number; max: number; initial: number; autoscaler?: AutoscalerName }): SimArgs {
  return {
    ...a,
    initialWorkers: f.initial,
    config: {
      ...a.config,
      minWorkers: f.min,
      maxWorkers: f.max,
      ...(f.autoscaler ? { autoscaler: f.autoscaler } : {}),
    },
  };
}

function planRun(policy: PlanRun['policy'], start: Start, initial: number, max: number, o: RunOutcome): PlanRun {
  const r: SimulationResult = o.result;
  const s = r.summary;
  const { up, down } = scaleCounts(r);
  const launches = r.launches - r.initialWorkers;
  return {
    policy,
    start,
    initialWorkers: initial,
    maxWorkers: max,
    summary: s,
    launches,
    launchesPerHour: s.durationS > 0 ? launches / (s.durationS / 3600) : 0,
    quickRelaunches: r.quickRelaunches,
    scaleUps: up,
    scaleDowns: down,
    workerHours: s.workerSeconds / 3600,
    failed: failedCount(s),
    wallS: o.wallS,
    boundAtOwnWait: undefined,
  };
}

/**
 * Costs this close are the same cost when one run is weighed against another: half the hundredth of
 * a worker-hour the tables print (18 s of one worker). A cold start whose second worker's bill
 * begins seconds after a fixed fleet's would otherwise escape the fleet that costs the same and
 * waits for nothing.
 */
export const SAME_COST_WORKER_HOURS = 0.005;

/** What dominance weighs of a run: its cost, its p99 queue wait (s) and its failed requests. */
export interface CostAndWait {
  readonly workerHours: number;
  readonly p99: number;
  readonly failed: number;
}

/**
 * Whether `a` dominates `b`: no dearer (costs within SAME_COST_WORKER_HOURS are the same), no
 * slower at the p99, failing no more, and strictly better on one of the three.
 */
export function dominates(a: CostAndWait, b: CostAndWait): boolean {
  const noWorse = a.workerHours <= b.workerHours + SAME_COST_WORKER_HOURS && a.p99 <= b.p99 && a.failed <= b.failed;
  return noWorse && (a.workerHours < b.workerHours - SAME_COST_WORKER_HOURS || a.p99 < b.p99 || a.failed < b.failed);
}

const costAndWait = (r: PlanRun): CostAndWait => ({
  workerHours: r.workerHours,
  p99: r.summary.queueWaitS.p99,
  failed: r.failed,
});

/** A policy's run against the bound and the fixed fleets. */
export function place(r: PlanRun, fixed: readonly PlanRun[], bound: PlanBound): PolicyPlacement {
  const p99 = r.summary.queueWaitS.p99;
  let match: PlanRun | undefined;
  for (const f of fixed)
    if (f.summary.queueWaitS.p99 <= p99 && (match === undefined || f.workerHours < match.workerHours)) match = f;
  const judged = costAndWait(r);
  const dominator = fixed.find((f) => dominates(costAndWait(f), judged));
  const launchAllowance = 2 * boundLaunches(bound, r.initialWorkers) + 2;
  return {
    ...r,
    vsBound: r.workerHours / bound.workerHours,
    fixedMatch: match ? { workers: match.initialWorkers, workerHours: match.workerHours } : undefined,
    vsFixed: match ? r.workerHours / match.workerHours : undefined,
    dominatedBy: dominator?.initialWorkers,
    launchAllowance,
    churnOk: r.launches <= launchAllowance && r.quickRelaunches === 0,
  };
}

/**
 * The bound's launches for a run that starts with `initial` workers: the bound has the workers it
 * needs at t = 0 up at no launch, as a gateway that has been running; a run that starts with fewer
 * launches each worker up to the bound's peak at least once.
 * E.g. Mooncake at 60 s launches: the bound readies 3 workers from t = 0 and launches none, so a
 * cold start at 1 is allowed 2 · 2 + 2 = 6 launches, a warm start at 7 the bound's 2 · 0 + 2.
 */
export function boundLaunches(bound: Pick<PlanBound, 'launches' | 'peak'>, initial: number): number {
  return Math.max(bound.launches, bound.peak - initial);
}

export function failedCount(s: SimSummary): number {
  return Object.values(s.failed).reduce((n, k) => n + k, 0);
}

/** A run in a few words, for the progress lines. */
function brief(s: SimSummary): string {
  const failed = failedCount(s);
  return `p99 wait ${s.queueWaitS.p99.toFixed(1)} s, ${(s.workerSeconds / 3600).toFixed(2)} worker-h${failed ? `, ${failed} failed` : ''}`;
}
