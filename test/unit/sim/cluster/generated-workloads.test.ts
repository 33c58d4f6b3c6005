import { describe, expect, it } from 'vitest';
import type { FlockServeOptions } from '../../../../src/config/options.js';
import { resolveOptions } from '../../../../src/config/resolve.js';
import { parseSimulateArgs, shippedPath, SHIPPED_TRACES, type SimArgs } from '../../../../src/sim/cluster/args.js';
import { planWorkload } from '../../../../src/sim/cluster/cli.js';
import { readRateEnvelope } from '../../../../src/sim/cluster/rates.js';
import { simulate } from '../../../../src/sim/cluster/run.js';
import { readLengths, traceRequests } from '../../../../src/sim/cluster/trace.js';
import {
  burstyWorkload,
  envelopeWorkload,
  traceWorkload,
  type SimWorkload,
} from '../../../../src/sim/cluster/workload.js';
import { BURSTY_DEFAULTS, burstyArrivals } from '../../../../src/sim/workloads/bursty.js';
import { envelopeArrivals } from '../../../../src/sim/workloads/envelope.js';

const MOONCAKE_HEAD = 'test/fixtures/traces/mooncake-synthetic-head.jsonl';
const CONV_HEAD = 'test/fixtures/traces/azure-llm-2023-conv-head.csv';
const TWO_DAYS = 'test/fixtures/traces/servegen-m-large-rates-2days.csv';

function run(
  workload: SimWorkload,
  options: Partial<FlockServeOptions>,
  onProgress?: (tS: number, sent: number) => void,
) {
  return simulate({
    workload,
    config: resolveOptions({ skypilotTask: '(simulated)', ...options }),
    launchDelay: { distribution: 'fixed', meanMs: 0, cv: 0 },
    seed: 1,
    sampleIntervalMs: 10_000,
    ...(onProgress ? { onProgress } : {}),
  });
}

const args = (argv: string[]): SimArgs => {
  const a = parseSimulateArgs(argv);
  if (a === 'help') throw new Error('help');
  return a;
};

describe('Mooncake trace in virtual time', () => {
  it('streams the file lazily, sends every request, and prefix-cache routing finds the shared blocks', async () => {
    const lc = await run(traceWorkload(traceRequests(MOONCAKE_HEAD), 1, 'head', 200), {
      minWorkers: 4,
      maxWorkers: 4,
      loadBalancer: 'least-connection',
    });
    const pc = await run(traceWorkload(traceRequests(MOONCAKE_HEAD), 1, 'head', 200), {
      minWorkers: 4,
      maxWorkers: 4,
      loadBalancer: 'prefix-cache',
    });
    expect(pc.summary.requests).toBe(200);
    expect(pc.prefixCache.queryTokens).toBe(lc.prefixCache.queryTokens);
    // The trace's shared blocks reach the engines as shared text: hits, more of them when routed on the prefix.
    expect(pc.prefixCache.hitTokens).toBeGreaterThan(0);
    expect(pc.prefixCache.hitRate).toBeGreaterThan(lc.prefixCache.hitRate);
  });
});

describe('envelope and bursty workloads in virtual time', () => {
  const lengths = readLengths(CONV_HEAD);
  const env = readRateEnvelope(TWO_DAYS);

  it('envelope: sends exactly the generated arrivals, same seed same run, with progress once a simulated minute', async () => {
    const o = { seed: 4, meanRate: 2, durationS: 1800, arrivalCv: 1 };
    const expected = [...envelopeArrivals(env, o)].length;
    const seen: [number, number][] = [];
    const a = await run(envelopeWorkload(env, lengths, o, 'env'), { maxWorkers: 6 }, (t, n) => seen.push([t, n]));
    const b = await run(envelopeWorkload(env, lengths, o, 'env'), { maxWorkers: 6 });
    expect(a.summary.requests).toBe(expected);
    expect(Math.abs(expected / 1800 - 2)).toBeLessThan(0.2);
    expect(JSON.stringify(b.summary)).toBe(JSON.stringify(a.summary));
    expect(seen.length).toBeGreaterThanOrEqual(29);
    for (let i = 1; i < seen.length; i++) {
      expect(seen[i]![0] - seen[i - 1]![0]).toBeGreaterThanOrEqual(60);
      expect(seen[i]![1]).toBeGreaterThanOrEqual(seen[i - 1]![1]);
    }
  });

  it('bursty: sends every burst and base arrival; the lengths come from the trace', async () => {
    const o = { ...BURSTY_DEFAULTS, seed: 2, durationS: 900 };
    const expected = [...burstyArrivals(o)].length;
    const r = await run(burstyWorkload(lengths, o, 'bursty'), { maxWorkers: 8 });
    expect(r.summary.requests).toBe(expected);
    expect(r.summary.unfinished).toBe(0);
    const convPrompt = lengths.promptTokens.reduce((a, b) => a + b, 0) / lengths.count;
    expect(r.prefixCache.queryTokens / expected).toBeGreaterThan(convPrompt * 0.7);
    expect(r.prefixCache.queryTokens / expected).toBeLessThan(convPrompt * 1.3);
  });
});

describe('flockserve simulate workload arguments', () => {
  it('defaults to the shipped traces, resolved against the package root', () => {
    const a = args([]);
    expect(a.workload).toBe('trace');
    expect(a.trace).toBe(shippedPath(SHIPPED_TRACES.conv));
    expect(a.trace).toMatch(/\/examples\/traces\/azure-llm-2023-conv\.csv$/);
    expect(args(['--workload', 'envelope']).envelope).toMatchObject({
      rates: shippedPath(SHIPPED_TRACES.rates),
      meanRate: 5,
      durationS: 86_400,
      arrivalCv: 1,
    });
  });

  it('reads the envelope and bursty knobs', () => {
    const e = args([
      '--workload',
      'envelope',
      '--rates',
      TWO_DAYS,
      '--mean-rate',
      '3',
      '--days',
      '1.5',
      '--arrival-cv',
      '2',
    ]);
    expect(e.envelope).toEqual({ rates: TWO_DAYS, meanRate: 3, durationS: 129_600, arrivalCv: 2 });
    const b = args([
      ...['--workload', 'bursty', '--base-rate', '0.2', '--burst-size', '80-120', '--burst-every', '120'],
      ...['--burst-width', '3', '--duration', '600', '--lengths', CONV_HEAD, '--seed', '7'],
    ]);
    expect(b.bursty).toEqual({
      seed: 7,
      durationS: 600,
      baseRate: 0.2,
      burstSize: [80, 120],
      burstEveryS: 120,
      burstWidthS: 3,
    });
    expect(b.lengths).toBe(CONV_HEAD);
    expect(args(['--quiet']).quiet).toBe(true);
  });

  it.each([
    [['--workload', 'envelope', '--burst-size', '5-10'], /--burst-size is a knob of --workload bursty, not envelope/],
    [['--mean-rate', '3'], /--mean-rate is a knob of --workload envelope, not trace/],
    [['--workload', 'bursty', '--days', '1'], /--days is a knob of --workload envelope, not bursty/],
    [['--workload', 'envelope', '--days', '1', '--duration', '60'], /give --duration or --days, not both/],
    [['--workload', 'envelope', '--mean-rate', '0'], /--mean-rate: expected a value > 0, got "0"/],
    [['--workload', 'bursty', '--burst-width', '200'], /burst width must be >= 0 and under half the burst spacing/],
    [
      ['--workload', 'bursty', '--burst-size', '0-5'],
      /--burst-size: expected MIN-MAX, whole numbers with 1 <= MIN <= MAX/,
    ],
    [['--trace', ''], /--trace needs a file/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseSimulateArgs(argv)).toThrow(message);
  });

  it('planWorkload: a trace is checked whole before the run; an envelope span longer than the file is refused', () => {
    const plan = planWorkload(args(['--trace', MOONCAKE_HEAD, '--time-scale', '2']));
    expect(plan.workload.size).toBe(200);
    expect(plan.spanS).toBeCloseTo(58.501 / 2, 3);
    expect(() => planWorkload(args(['--workload', 'envelope', '--rates', TWO_DAYS, '--days', '3']))).toThrow(
      /servegen-m-large-rates-2days\.csv: the envelope covers 172800 s \(2\.00 days\); the span asked for is 259200 s/,
    );
  });

  it('planWorkload: --start and --duration replay a part of a trace, its clock from the start; a part without a request is refused', async () => {
    const whole = [...traceRequests(CONV_HEAD)];
    const want = whole.filter((r) => r.arrivalMs >= 60_000 && r.arrivalMs < 90_000);
    const plan = planWorkload(args(['--trace', CONV_HEAD, '--start', '60', '--duration', '30']));
    expect(plan.workload.size).toBe(want.length);
    expect(plan.workload.label).toBe(`${CONV_HEAD}, 30 s from 60 s`);
    const got = [...plan.requests!()];
    expect(got.map((r) => [r.line, r.arrivalMs])).toEqual(want.map((r) => [r.line, r.arrivalMs - 60_000]));
    expect(plan.spanS).toBeCloseTo(want.at(-1)!.arrivalMs / 1000 - 60, 6);
    // From --start to the end.
    expect(planWorkload(args(['--trace', CONV_HEAD, '--start', '200'])).workload.size).toBe(
      whole.filter((r) => r.arrivalMs >= 200_000).length,
    );
    expect(() => planWorkload(args(['--trace', CONV_HEAD, '--start', '5000']))).toThrow(
      /azure-llm-2023-conv-head\.csv: no request from 5000 s on after the trace's first/,
    );
    expect(() => parseSimulateArgs(['--workload', 'bursty', '--start', '5'])).toThrow(
      /--start is a knob of --workload trace, not bursty/,
    );
  });
});
