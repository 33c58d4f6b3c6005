import { describe, expect, it } from 'vitest';
import type { FlockServeOptions } from '../../../../src/config/options.js';
import { resolveOptions } from '../../../../src/config/resolve.js';
import { parseSimulateArgs } from '../../../../src/sim/cluster/args.js';
import { simulate } from '../../../../src/sim/cluster/run.js';
import { readTrace } from '../../../../src/sim/cluster/trace.js';
import { multiTurnWorkload, traceWorkload, type SimWorkload } from '../../../../src/sim/cluster/workload.js';
import { multiTurnSessions, type MultiTurnOptions } from '../../../../src/sim/workloads/multi-turn.js';

/** Small sessions: a 200-token system prompt, 2–4 turns of 20–60 tokens, 5–20-token replies. */
const SMALL: Partial<MultiTurnOptions> = {
  sessions: 24,
  sessionsPerSecond: 4,
  turns: [2, 4],
  systemPromptTokens: 200,
  userTokens: [20, 60],
  replyTokens: [5, 20],
  thinkMs: 500,
};

function run(workload: SimWorkload, options: Partial<FlockServeOptions>, seed = 1): ReturnType<typeof simulate> {
  return simulate({
    workload,
    config: resolveOptions({ skypilotTask: '(simulated)', ...options }),
    launchDelay: { distribution: 'fixed', meanMs: 0, cv: 0 },
    seed,
    sampleIntervalMs: 1000,
  });
}

const FOUR = { minWorkers: 4, maxWorkers: 4 } as const;

describe('multi-turn chat in virtual time', () => {
  it('sends every turn of every session once, closed loop, and the same seed gives the same run', async () => {
    const opts = { ...SMALL, seed: 3 };
    const turns = multiTurnSessions(opts).reduce((n, s) => n + s.turns.length, 0);
    const a = await run(multiTurnWorkload(opts), { ...FOUR, loadBalancer: 'prefix-cache' }, 3);
    const b = await run(multiTurnWorkload(opts), { ...FOUR, loadBalancer: 'prefix-cache' }, 3);
    expect(a.summary).toMatchObject({ requests: turns, completed: turns, unfinished: 0, failed: {} });
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    // Turn k+1 repeats turn k's prompt: the engines found some of it, but never all of it.
    expect(a.prefixCache.hitTokens).toBeGreaterThan(0);
    expect(a.prefixCache.hitTokens).toBeLessThan(a.prefixCache.queryTokens);
    // Each reply is waited for: the run lasts at least the longest session's sum of think times.
    const longest = Math.max(
      ...multiTurnSessions(opts).map((s) => s.startMs + s.turns.reduce((n, t) => n + t.thinkMs, 0)),
    );
    expect(a.summary.durationS * 1000).toBeGreaterThan(longest);
  });

  it('accounts for every request when turns are refused: a session stops at its failed turn, the run still ends', async () => {
    const opts = { ...SMALL, seed: 4, sessionsPerSecond: 50 };
    const turns = multiTurnSessions(opts).reduce((n, s) => n + s.turns.length, 0);
    const r = await run(multiTurnWorkload(opts), {
      minWorkers: 1,
      maxWorkers: 1,
      workerCapacity: 1,
      maxQueueLength: 2,
    });
    const failed = Object.values(r.summary.failed).reduce((n, k) => n + k, 0);
    expect(r.summary.failed['queue_full']).toBeGreaterThan(0);
    expect(r.summary.unfinished).toBe(0);
    expect(r.summary.completed + failed).toBe(r.summary.requests);
    // Later turns of the failed sessions were never sent.
    expect(r.summary.requests).toBeLessThan(turns);
  });

  it('prefix-cache routing finds more of each prompt in the engines’ caches than round-robin', async () => {
    const opts = { ...SMALL, seed: 5 };
    const rr = await run(multiTurnWorkload(opts), { ...FOUR, loadBalancer: 'round-robin' });
    const pc = await run(multiTurnWorkload(opts), { ...FOUR, loadBalancer: 'prefix-cache' });
    expect(rr.prefixCache.queryTokens).toBe(pc.prefixCache.queryTokens); // the same prompts
    // Round-robin finds the shared system prompt everywhere but a session's history on 1 worker in 4.
    expect(pc.prefixCache.hitRate).toBeGreaterThan(rr.prefixCache.hitRate + 0.1);
  });

  it('a trace’s prompts are unique: every prompt token is looked up, none is found', async () => {
    const head = (await readTrace('test/fixtures/traces/azure-llm-2023-conv-head.csv')).slice(0, 200);
    const r = await run(traceWorkload(head, 4, 'head.csv'), { ...FOUR, loadBalancer: 'prefix-cache' });
    expect(r.summary.completed).toBe(200);
    expect(r.prefixCache).toEqual({
      queryTokens: head.reduce((n, q) => n + q.promptTokens, 0),
      hitTokens: 0,
      hitRate: 0,
    });
  });
});

describe('flockserve simulate --workload multi-turn arguments', () => {
  it('reads the generator knobs, seeded by --seed', () => {
    const a = parseSimulateArgs([
      '--workload',
      'multi-turn',
      '--sessions',
      '5',
      '--turns',
      '2-3',
      '--think-time',
      '0.5',
      '--seed',
      '9',
    ]);
    expect(a).not.toBe('help');
    if (a === 'help') return;
    expect(a.workload).toBe('multi-turn');
    expect(a.multiTurn).toMatchObject({ seed: 9, sessions: 5, turns: [2, 3], thinkMs: 500, systemPromptTokens: 1000 });
  });

  it.each([
    [['--sessions', '5', '--trace', 'x.csv'], /--sessions is a knob of --workload multi-turn, not trace/],
    [['--workload', 'multi-turn', '--trace', 'x.csv'], /--trace is a knob of --workload trace, not multi-turn/],
    [['--workload', 'multi-turn', '--time-scale', '2'], /--time-scale is a knob of --workload trace, not multi-turn/],
    [['--workload', 'multi-turn', '--turns', '5-2'], /--turns: expected MIN-MAX/],
    [['--workload', 'chat'], /--workload: expected one of trace, multi-turn, envelope, bursty/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseSimulateArgs(argv)).toThrow(message);
  });
});
