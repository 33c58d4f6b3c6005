import { describe, expect, it } from 'vitest';
import { VirtualClock, seededRandom } from '../../../../src/core/clock.js';
import type { Worker } from '../../../../src/core/types.js';
import { EngineModel } from '../../../../src/sim/engine-model.js';
import { EngineOracle } from '../../../../src/sim/cluster/oracle.js';
import { policyBench } from '../../../helpers/balancer.js';

/** An engine that has served a prompt of `blocks` (and so caches them). */
function engineHolding(clock: VirtualClock, blocks: number[]): EngineModel {
  const engine = new EngineModel({}, clock);
  engine.submit({ promptTokens: blocks.length * 16, maxTokens: 1, promptBlocks: blocks, onToken() {}, onDone() {} });
  clock.advance(60_000);
  return engine;
}

describe('the longest-prefix oracle (the simulation’s clairvoyant yardstick for hit rates)', () => {
  /** [label, blocks cached on a, on b, in flight on a, on b, expected] for a prompt of blocks 1..10 */
  const table: [string, number[], number[], number, number, string][] = [
    ['the longest cached prefix wins, whatever the load', [1, 2, 3, 4], [1, 2], 20, 0, 'a'],
    ['only the leading run counts', [9, 2, 3, 4], [1, 2], 0, 5, 'b'],
    ['equal prefixes: the less loaded', [1, 2], [1, 2], 3, 1, 'b'],
    ['nothing cached anywhere: the least loaded', [7], [8], 2, 1, 'b'],
    ['the holder is full: the best of those with room', [1, 2, 3], [1], 30, 29, 'b'],
  ];
  it.each(table)('%s', (_label, onA, onB, loadA, loadB, want) => {
    const clock = new VirtualClock();
    const engines = new Map<string, EngineModel>([
      ['a', engineHolding(clock, onA)],
      ['b', engineHolding(clock, onB)],
    ]);
    const prompt = Array.from({ length: 10 }, (_, i) => i + 1);
    const oracle = new EngineOracle('longest-prefix', {
      engine: (w: Worker) => engines.get(w.name),
      prompt: (text) => (text === 'the prompt' ? { tokens: prompt.length * 16, blocks: prompt } : undefined),
    });
    const { pool } = policyBench(oracle, [
      ['a', loadA, 30],
      ['b', loadB, 30],
    ]);
    expect(oracle.pick(pool.loads, { promptText: 'the prompt', random: seededRandom(1) })?.name).toBe(want);
  });
});

describe('the first-token oracle (the simulation’s clairvoyant yardstick for time to first token)', () => {
  /** A prompt of `blocks` 16-token blocks, numbered from `from`. */
  const blocks = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);
  const submit = (engine: EngineModel, prompt: number[], maxTokens = 500): void => {
    engine.submit({ promptTokens: prompt.length * 16, maxTokens, promptBlocks: prompt, onToken() {}, onDone() {} });
  };

  /** Engines a and b as each case leaves them, and the prompt (400 blocks, 6,400 tokens) to route. */
  const cases: [string, (clock: VirtualClock, a: EngineModel, b: EngineModel) => void, string][] = [
    [
      'a cached prefix wins over an idle engine that has to prefill it all',
      (clock, a) => {
        submit(a, blocks(1, 300), 1);
        clock.advance(60_000);
      },
      'a',
    ],
    [
      'but not when the engine holding it has more than the prefix saves queued ahead',
      (clock, a) => {
        submit(a, blocks(1, 300), 1);
        clock.advance(60_000);
        for (let k = 0; k < 3; k++) submit(a, blocks(10_000 * (k + 1), 400));
      },
      'b',
    ],
    [
      'nothing cached: the engine with less prefill queued, whatever the requests in flight',
      (clock, a, b) => {
        for (let k = 0; k < 20; k++) submit(a, blocks(10_000 * (k + 1), 4));
        clock.advance(1_000);
        submit(b, blocks(900_000, 800));
      },
      'a',
    ],
  ];
  it.each(cases)('%s', (_label, arrange, want) => {
    const clock = new VirtualClock();
    const engines = new Map<string, EngineModel>([
      ['a', new EngineModel({}, clock)],
      ['b', new EngineModel({}, clock)],
    ]);
    arrange(clock, engines.get('a')!, engines.get('b')!);
    const prompt = blocks(1, 400);
    const oracle = new EngineOracle('first-token', {
      engine: (w: Worker) => engines.get(w.name),
      prompt: (text) => (text === 'the prompt' ? { tokens: prompt.length * 16, blocks: prompt } : undefined),
    });
    const inFlight = (e: EngineModel): number => e.stats().running + e.stats().waiting;
    const { pool } = policyBench(oracle, [
      ['a', inFlight(engines.get('a')!), 30],
      ['b', inFlight(engines.get('b')!), 30],
    ]);
    expect(oracle.pick(pool.loads, { promptText: 'the prompt', random: seededRandom(1) })?.name).toBe(want);
  });

  it('estimates the first token as the engine then gives it', () => {
    const clock = new VirtualClock();
    const engine = new EngineModel({}, clock);
    submit(engine, blocks(1, 300), 1);
    clock.advance(60_000);
    for (let k = 0; k < 2; k++) submit(engine, blocks(10_000 * (k + 1), 400));
    const prompt = blocks(1, 400);
    const estimate = engine.firstTokenMs(prompt.length * 16, prompt);
    const start = clock.now();
    let firstAt: number | undefined;
    engine.submit({
      promptTokens: prompt.length * 16,
      maxTokens: 10,
      promptBlocks: prompt,
      onToken: () => (firstAt ??= clock.now()),
      onDone() {},
    });
    clock.advance(60_000);
    // Two 6,400-token prompts queued ahead and 4,800 of this one's tokens cached: off by a step's rounding at most.
    expect(Math.abs(firstAt! - start - estimate)).toBeLessThan(0.02 * estimate);
  });
});
