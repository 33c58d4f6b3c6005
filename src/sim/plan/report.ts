/** What `flockserve plan` prints: a text table, or the same numbers as JSON. */
import { attributions, type RunDescription } from '../cluster/report.js';
import { heldSlo, sloFleet, ZERO_WAIT_P99_S, type PlanResult, type PlanRun, type PolicyPlacement } from './plan.js';

/** What was planned on, as `simulate` describes a run (workload, launches, attributions). */
export type PlanDescription = Omit<RunDescription, 'wallS'>;

const h = (n: number): string => n.toFixed(2);
const s1 = (n: number): string => n.toFixed(1);

/** The text table `flockserve plan` prints. */
export function formatPlan(r: PlanResult, d: PlanDescription): string {
  const c = d.config;
  const waitCols = (x: PlanRun): string[] => {
    const w = x.summary.queueWaitS;
    return [s1(w.p50), s1(w.p95), s1(w.p99), s1(x.summary.ttftS.p99)];
  };
  const fixedRows = r.fixed.map((x) => [
    String(x.initialWorkers),
    ...waitCols(x),
    String(x.failed),
    h(x.workerHours),
    [
      x.initialWorkers === r.warmWorkers ? 'waits for nothing at p99 (the warm start)' : '',
      x.initialWorkers === r.zeroWaitWorkers ? 'no request waits' : '',
    ]
      .filter(Boolean)
      .join('; '),
  ]);
  const b = r.bound;
  const policyRows = r.policies.map((x: PolicyPlacement) => [
    x.policy,
    `${x.start} (${x.initialWorkers})`,
    ...waitCols(x),
    String(x.failed),
    h(x.workerHours),
    String(x.summary.peakWorkers),
    s1(x.launchesPerHour),
    String(x.quickRelaunches),
    h(x.vsBound),
    x.vsFixed === undefined ? '-' : `${h(x.vsFixed)} (${x.fixedMatch!.workers})`,
    x.dominatedBy === undefined ? 'no' : `yes, by ${x.dominatedBy}`,
    x.churnOk ? 'ok' : 'over',
  ]);
  const warnings = [...r.fixed, ...r.policies]
    .filter((x) => x.boundAtOwnWait !== undefined && x.workerHours < x.boundAtOwnWait - 1e-9)
    .map(
      (x) =>
        `WARNING: ${x.policy} (${x.start}) cost ${h(x.workerHours)} worker-h, below the bound at its longest wait (${h(x.boundAtOwnWait!)}): a bug in the bound or the simulation`,
    );
  return [
    'FlockServe plan: fixed fleets, the clairvoyant bound and autoscaling policies on one workload',
    '(the real gateway core on virtual time, SIMULATED workers and launches)',
    d.trace === undefined
      ? `workload       ${d.workload}`
      : `trace          ${d.workload} (${r.requests} requests), time scale ${d.timeScale}`,
    ...attributions(d).map((a) => `               ${a}`),
    `fleet          capacity ${c.workerCapacity}, balancer ${c.loadBalancer}, min_workers ${c.minWorkers}; policies up to max_workers ${r.maxWorkers.value}${r.maxWorkers.chosen ? ' (twice the fleet in which no request waits; set --max_workers to choose)' : ''}`,
    `launches       ${d.launch}; seed ${d.seed}`,
    '',
    'Fixed fleets (seconds; cost in worker-hours)',
    table(['workers', 'wait p50', 'p95', 'p99', 'TTFT p99', 'failed', 'worker-h', ''], fixedRows),
    '',
    `Clairvoyant bound: ${h(b.workerHours)} worker-h (${b.launches} launches, peak ${b.peak}) — the cheapest schedule that knows every`,
    `arrival, serves each at once (no wait) in its least engine time, and pays ${b.launchDelayS} s for each launch;`,
    `the larger of its whole-worker schedule (${h(b.windowHours)}: the slot schedule's ${h(b.slotHours)}, made ready wherever`,
    `a window's engine work needs more workers; the launches and peak are the larger of the two schedules') and the`,
    `engine work (${h(b.workHours)}). See docs/autoscaling.md.`,
    '',
    `Policies (cold: from min_workers; warm: from ${r.warmWorkers}, the smallest fixed fleet whose p99 wait is under ${ZERO_WAIT_P99_S} s)`,
    table(
      [
        'policy',
        'start',
        'wait p50',
        'p95',
        'p99',
        'TTFT p99',
        'failed',
        'worker-h',
        'peak',
        'launches/h',
        'quick relaunches',
        '× bound',
        '× fixed (N)',
        'dominated',
        'churn',
      ],
      policyRows,
    ),
    '',
    '× fixed: cost over the cheapest fixed fleet (N workers) whose p99 wait is no worse; dominated: a fixed fleet',
    'costs no more, waits no longer at p99 and fails no more requests. Quick relaunches: launches less than one',
    `launch delay after a scale-down of a ready worker. Churn ok: launches ≤ 2 × the bound's (${b.launches}) + 2 and no quick relaunch.`,
    '',
    ...inShort(r, c.queueWaitSlo),
    ...warnings,
    `planned in ${r.wallS.toFixed(1)} s`,
  ].join('\n');
}

/**
 * The answer to what a user runs plan for: the fleet to buy for the SLO, and what each policy
 * costs against it (and whether it holds the SLO), with the bound below both.
 */
function inShort(r: PlanResult, sloS: number): string[] {
  const fleet = sloFleet(r.fixed, sloS);
  const vs = (wh: number): string => (fleet ? `, ${h(wh / fleet.workerHours)} × that fleet` : '');
  return [
    `In short, for a p99 queue wait within queue_wait_slo (${sloS} s):`,
    fleet
      ? `  a fixed fleet of ${fleet.initialWorkers} holds it for ${h(fleet.workerHours)} worker-h`
      : `  no fixed fleet swept holds it`,
    ...r.policies.map(
      (x) =>
        `  ${x.policy}, ${x.start}: ${h(x.workerHours)} worker-h${vs(x.workerHours)}; p99 wait ${s1(x.summary.queueWaitS.p99)} s${x.failed > 0 ? `, ${x.failed} failed` : ''}, ${heldSlo(x, sloS) ? 'within the SLO' : 'over the SLO'}`,
    ),
    `  no schedule does it for less than the clairvoyant bound's ${h(r.bound.workerHours)} worker-h${vs(r.bound.workerHours)}`,
  ];
}

/** Columns padded to their widest cell; numbers right-aligned. */
function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((x, i) => Math.max(x.length, ...rows.map((r) => r[i]!.length)));
  const numeric = head.map((_, i) => rows.every((r) => r[i] === '' || r[i] === '-' || /^[-\d.]/.test(r[i]!)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((x, i) => (numeric[i] ? x.padStart(widths[i]!) : x.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

/** The plan as JSON (the benchmark reads this). */
export function planJson(r: PlanResult, d: PlanDescription): Record<string, unknown> {
  const slo = d.config.queueWaitSlo;
  const run = (x: PlanRun): Record<string, unknown> => ({
    policy: x.policy,
    start: x.start,
    initialWorkers: x.initialWorkers,
    maxWorkers: x.maxWorkers,
    workerHours: x.workerHours,
    failed: x.failed,
    queueWaitS: x.summary.queueWaitS,
    ttftS: x.summary.ttftS,
    peakWorkers: x.summary.peakWorkers,
    launches: x.launches,
    launchesPerHour: x.launchesPerHour,
    quickRelaunches: x.quickRelaunches,
    scaleUps: x.scaleUps,
    scaleDowns: x.scaleDowns,
    durationS: x.summary.durationS,
    boundAtOwnWait: x.boundAtOwnWait,
    heldSlo: heldSlo(x, slo),
    wallS: x.wallS,
  });
  return {
    workload: d.workload,
    trace: d.trace,
    timeScale: d.timeScale,
    attribution: attributions(d).join(' ') || undefined,
    launch: d.launch,
    seed: d.seed,
    requests: r.requests,
    maxWorkers: r.maxWorkers,
    queueWaitSloS: slo,
    sloWorkers: sloFleet(r.fixed, slo)?.initialWorkers,
    zeroWaitWorkers: r.zeroWaitWorkers,
    warmWorkers: r.warmWorkers,
    bound: r.bound,
    fixed: r.fixed.map(run),
    policies: r.policies.map((x) => ({
      ...run(x),
      vsBound: x.vsBound,
      fixedMatch: x.fixedMatch,
      vsFixed: x.vsFixed,
      dominatedBy: x.dominatedBy,
      launchAllowance: x.launchAllowance,
      churnOk: x.churnOk,
    })),
    wallS: r.wallS,
  };
}
