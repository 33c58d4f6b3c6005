import { describe, expect, it } from 'vitest';
import { parsePlanArgs, type PlanArgs } from '../../../../src/sim/cluster/args.js';
import { planMain } from '../../../../src/sim/plan/cli.js';
import {
  boundLaunches,
  place,
  runPlan,
  warmStartWorkers,
  type PlanBound,
  type PlanRun,
} from '../../../../src/sim/plan/plan.js';
import type { SimSummary } from '../../../../src/sim/cluster/metrics.js';

const CONV_HEAD = 'test/fixtures/traces/azure-llm-2023-conv-head.csv';
const MOONCAKE_HEAD = 'test/fixtures/traces/mooncake-synthetic-head.jsonl';

const planArgs = (argv: string[]): PlanArgs => {
  const a = parsePlanArgs([...argv, '--quiet', '--jobs', '1']);
  if (a === 'help') throw new Error('help');
  return a;
};

/** A run as plan records it, from its cost, p99 wait and failures. */
function run(
  workers: number,
  workerHours: number,
  p99: number,
  failed = 0,
  policy: PlanRun['policy'] = 'fixed',
  longest = p99,
): PlanRun {
  const w = { p50: 0, p95: 0, p99, mean: 0, max: Math.max(p99, longest) };
  return {
    policy,
    start: 'warm',
    initialWorkers: workers,
    maxWorkers: workers,
    summary: {
      queueWaitS: w,
      ttftS: w,
      e2eS: w,
      peakWorkers: workers,
      durationS: 3600,
      unfinished: 0,
    } as unknown as SimSummary,
    launches: 0,
    launchesPerHour: 0,
    quickRelaunches: 0,
    scaleUps: 0,
    scaleDowns: 0,
    workerHours,
    failed,
    wallS: 0,
    boundAtOwnWait: undefined,
  };
}

const BOUND = { workerHours: 1 } as PlanBound;
const FRONTIER = [run(1, 1, 60, 300), run(2, 2, 3), run(3, 3, 0)];

describe('place: a policy against the fixed fleets', () => {
  it.each([
    {
      label: 'cheaper than the fleet that waits as little: not dominated',
      cost: 1.6,
      p99: 3,
      match: 2,
      vs: 0.8,
      by: undefined,
    },
    { label: 'costs more and waits more than 2 workers: dominated by 2', cost: 2.4, p99: 5, match: 2, vs: 1.2, by: 2 },
    { label: 'same wait as 3, costs more: dominated by 3', cost: 3.3, p99: 0, match: 3, vs: 1.1, by: 3 },
    {
      label: 'same cost and wait as 2: not dominated (nothing strictly better)',
      cost: 2,
      p99: 3,
      match: 2,
      vs: 1,
      by: undefined,
    },
    {
      label: '16 s of a worker cheaper than 2, waits longer: the same cost, dominated by 2',
      cost: 2 - 16 / 3600,
      p99: 30,
      match: 2,
      vs: (2 - 16 / 3600) / 2,
      by: 2,
    },
    {
      label: '16 s of a worker dearer than 2, waits as long: the same cost, not dominated',
      cost: 2 + 16 / 3600,
      p99: 3,
      match: 2,
      vs: (2 + 16 / 3600) / 2,
      by: undefined,
    },
    {
      label: 'waits less than any fixed fleet: no match',
      cost: 5,
      p99: -1,
      match: undefined,
      vs: undefined,
      by: undefined,
    },
  ])('$label', ({ cost, p99, match, vs, by }) => {
    const p = place(run(0, cost, p99, 0, 'target-tracking'), FRONTIER, BOUND);
    expect(p.fixedMatch?.workers).toBe(match);
    if (vs === undefined) expect(p.vsFixed).toBeUndefined();
    else expect(p.vsFixed).toBeCloseTo(vs, 9);
    expect(p.dominatedBy).toBe(by);
    expect(p.vsBound).toBeCloseTo(cost, 9);
  });

  it('a fleet that fails requests dominates only a policy that fails as many', () => {
    // 1 worker: cheap but 300 failed; a policy that fails none is not dominated by it.
    expect(place(run(0, 1.5, 60, 0, 'target-tracking'), FRONTIER, BOUND).dominatedBy).toBeUndefined();
    expect(place(run(0, 1.5, 60, 400, 'target-tracking'), FRONTIER, BOUND).dominatedBy).toBe(1);
  });
});

describe('the warm start: the smallest fixed fleet that waits for nothing at p99', () => {
  // Fixed fleets of 1, 2, 3, ... workers: "p99 longest-wait failed" each, separated by |.
  it.each([
    [
      'the conv hour: 2 workers wait 0.0045 s at p99 (one request 2.1 s): 2, not 3',
      '60 60 2944 | 0.0045 2.13 0 | 0 0 0',
      2,
    ],
    ['the bursty shape: 1.57 s at p99 on 1 worker, 0 (0.73 s at most) on 2: 2', '1.57 2.3 0 | 0 0.73 0 | 0 0 0', 2],
    ['a p99 of 0.05 s is not nothing (it prints as 0.1 s)', '0.05 1 0 | 0 0 0', 2],
    ['a fleet that fails requests is never the warm start', '0 60 3 | 0.01 1 0', 2],
    ['none waits for nothing at p99, one never waits: that one', '3 5 0 | 0 0 0', 2],
    ['none of them: the largest swept', '60 60 9 | 9 30 0', 2],
  ] as const)('%s', (_label, fleets, warm) => {
    const runs = fleets.split('|').map((f, i) => {
      const [p99, longest, failed] = f.trim().split(' ').map(Number);
      return run(i + 1, i + 1, p99!, failed, 'fixed', longest);
    });
    expect(warmStartWorkers(runs)).toBe(warm);
  });
});

describe('place: churn against the bound’s launches', () => {
  // The bound launches 3 and peaks at 4: a policy started at 2 or more may launch up to 2·3 + 2 =
  // 8, none of them a quick relaunch.
  it.each([
    { launches: 0, quick: 0, ok: true },
    { launches: 8, quick: 0, ok: true },
    { launches: 9, quick: 0, ok: false },
    { launches: 2, quick: 1, ok: false },
  ])('$launches launches, $quick quick relaunches → ok $ok', ({ launches, quick, ok }) => {
    const r = { ...run(2, 2, 0, 0, 'slo'), launches, quickRelaunches: quick };
    expect(place(r, FRONTIER, { workerHours: 1, launches: 3, peak: 4 } as PlanBound).churnOk).toBe(ok);
  });

  it('a run started below the bound’s workers at t = 0 is allowed a launch for each of them', () => {
    // The bound has 6 up from t = 0 and launches none; a cold start at 1 launches at least 5.
    const bound = { workerHours: 1, launches: 0, peak: 6 } as PlanBound;
    const cold = (launches: number): PlanRun => ({ ...run(1, 2, 0, 0, 'slo'), launches });
    expect(boundLaunches(bound, 1)).toBe(5);
    expect(place(cold(12), FRONTIER, bound).churnOk).toBe(true);
    expect(place(cold(13), FRONTIER, bound).churnOk).toBe(false);
    // Warm at 6 it is the bound's own count: 2 · 0 + 2.
    expect(place({ ...run(6, 2, 0, 0, 'slo'), launches: 3 }, FRONTIER, bound).churnOk).toBe(false);
  });
});

describe('runPlan on a real trace slice (1,000 requests, 30 s launches)', () => {
  it('sweeps fixed fleets until nothing waits, then places each policy cold and warm; no run beats the bound', async () => {
    const p = await runPlan(
      planArgs([
        '--trace',
        CONV_HEAD,
        '--provision-delay',
        '30',
        '--provision-delay-dist',
        'fixed',
        '--time-scale',
        '4',
        '--policies',
        'target-tracking,running-mean',
      ]),
    );
    const sizes = p.fixed.map((r) => r.initialWorkers);
    expect(sizes).toEqual(Array.from({ length: sizes.length }, (_, i) => i + 1));
    const zero = p.fixed.find((r) => r.initialWorkers === p.zeroWaitWorkers)!;
    expect(zero.summary.queueWaitS.max).toBe(0);
    // Every smaller fleet made some request wait.
    for (const r of p.fixed.filter((x) => x.initialWorkers < p.zeroWaitWorkers))
      expect(r.summary.queueWaitS.max).toBeGreaterThan(0);
    expect(p.maxWorkers).toEqual({ value: 2 * p.zeroWaitWorkers, chosen: true });
    // Warm runs start at the smallest fleet that waits for nothing at p99: no larger than the one
    // in which no request waits.
    expect(p.warmWorkers).toBe(warmStartWorkers(p.fixed));
    expect(p.warmWorkers).toBeLessThanOrEqual(p.zeroWaitWorkers);
    expect(p.fixed.find((r) => r.initialWorkers === p.warmWorkers)!.summary.queueWaitS.p99).toBeLessThan(0.05);
    expect(p.policies.map((r) => `${r.policy} ${r.start} ${r.initialWorkers}`)).toEqual(
      p.policies.map((r) => `${r.policy} ${r.start} ${r.start === 'cold' ? 1 : p.warmWorkers}`),
    );
    expect(p.policies).toHaveLength(2 * new Set(p.policies.map((r) => r.policy)).size);
    // The bound: below every run that served all, at zero wait and at the run's own longest wait.
    expect(p.bound.workerHours).toBeGreaterThan(0);
    for (const r of [...p.fixed, ...p.policies]) {
      if (r.failed > 0) continue;
      expect(r.boundAtOwnWait, `${r.policy} ${r.start}`).toBeDefined();
      expect(r.workerHours, `${r.policy} ${r.start}`).toBeGreaterThanOrEqual(r.boundAtOwnWait!);
      expect(r.boundAtOwnWait!).toBeLessThanOrEqual(p.bound.workerHours + 1e-12);
    }
    expect(zero.workerHours).toBeGreaterThanOrEqual(p.bound.workerHours);
  });

  it('refuses what it cannot plan, naming the flag', () => {
    expect(() => planArgs(['--workload', 'multi-turn'])).toThrow(/closed-loop/);
    expect(() => planArgs(['--autoscaler', 'running-mean'])).toThrow(/--policies/);
    expect(() => planArgs(['--policies', 'nope,running-mean'])).toThrow(/unknown nope/);
    expect(() => planArgs(['--initial-workers', '2'])).toThrow(/option of simulate, not plan/);
    expect(() => planArgs(['--timeline', 'x.csv'])).toThrow(/option of simulate, not plan/);
  });
});

describe('flockserve plan (CLI)', () => {
  it('prints the table, writes the chart, and reports progress on stderr; --json has the same numbers', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const chart = `${process.env['TMPDIR'] ?? '/tmp'}/plan-test-${process.pid}.svg`;
    const argv = [
      '--trace',
      MOONCAKE_HEAD,
      '--provision-delay',
      '20',
      '--policies',
      'running-mean',
      '--jobs',
      '1',
      '--chart',
      chart,
    ];
    const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t) };
    expect(await planMain(argv, io)).toBe(0);
    const text = out.join('');
    expect(text).toMatch(/Fixed fleets/);
    expect(text).toMatch(/Clairvoyant bound: [\d.]+ worker-h/);
    expect(text).toMatch(/running-mean\s+cold \(1\)/);
    expect(text).toMatch(/Mooncake/);
    expect(err.join('')).toMatch(/plan: fixed 1 workers: p99 wait/);
    const { readFile } = await import('node:fs/promises');
    expect(await readFile(chart, 'utf8')).toMatch(/^<svg[\s\S]*bound [\d.]+[\s\S]*<\/svg>\n$/);
    out.length = 0;
    expect(await planMain([...argv, '--json', '--quiet'], io)).toBe(0);
    interface Run {
      policy: string;
      start: string;
      initialWorkers: number;
      workerHours: number;
      failed: number;
      queueWaitS: { p99: number };
    }
    const json = JSON.parse(out.join('')) as {
      fixed: (Run & { heldSlo: boolean })[];
      policies: (Run & { heldSlo: boolean })[];
      bound: { workerHours: number };
      queueWaitSloS: number;
      sloWorkers: number;
    };
    expect(json.policies.map((p) => p.policy)).toEqual(['running-mean', 'running-mean']);
    expect(text).toContain(`Clairvoyant bound: ${json.bound.workerHours.toFixed(2)} worker-h`);
    // In short: the smallest fixed fleet within the SLO (1 s by default), and each policy against it.
    const holds = (r: Run): boolean => r.failed === 0 && r.queueWaitS.p99 <= 1;
    expect(json.queueWaitSloS).toBe(1);
    for (const r of [...json.fixed, ...json.policies]) expect(r.heldSlo, `${r.policy} ${r.start}`).toBe(holds(r));
    const fleet = json.fixed.find(holds)!;
    expect(json.sloWorkers).toBe(fleet.initialWorkers);
    expect(json.fixed.filter((r) => r.initialWorkers < fleet.initialWorkers).some(holds)).toBe(false);
    expect(text).toContain(
      `In short, for a p99 queue wait within queue_wait_slo (1 s):\n  a fixed fleet of ${fleet.initialWorkers} holds it for ${fleet.workerHours.toFixed(2)} worker-h\n`,
    );
    for (const r of json.policies)
      expect(text).toContain(
        `  running-mean, ${r.start}: ${r.workerHours.toFixed(2)} worker-h, ${(r.workerHours / fleet.workerHours).toFixed(2)} × that fleet; p99 wait ${r.queueWaitS.p99.toFixed(1)} s${r.failed > 0 ? `, ${r.failed} failed` : ''}, ${holds(r) ? 'within' : 'over'} the SLO`,
      );
    expect(text).toContain(
      `no schedule does it for less than the clairvoyant bound's ${json.bound.workerHours.toFixed(2)} worker-h, ${(json.bound.workerHours / fleet.workerHours).toFixed(2)} × that fleet`,
    );
  });

  it('a broken trace exits 2 naming the file and line, before any run', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const file = join(mkdtempSync(join(tmpdir(), 'plan-')), 'bad.csv');
    writeFileSync(file, 'TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:05,1,1\n2023-11-16 18:00:04,1,1\n');
    const err: string[] = [];
    const out: string[] = [];
    expect(await planMain(['--trace', file, '--jobs', '1'], { out: (t) => out.push(t), err: (t) => err.push(t) })).toBe(
      2,
    );
    expect(err.join('')).toMatch(/^flockserve plan: .*bad\.csv:3: timestamp .* is earlier than line 2's/);
    expect(err.join('')).not.toMatch(/plan: fixed/);
    expect(out).toEqual([]);
  });

  it('a bad argument exits 2 with the reason', async () => {
    const err: string[] = [];
    expect(await planMain(['--policies', 'nope'], { out: () => {}, err: (t) => err.push(t) })).toBe(2);
    expect(err.join('')).toMatch(/^flockserve plan: --policies: unknown nope/);
  });
});
