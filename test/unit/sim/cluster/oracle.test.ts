import { describe, expect, it } from 'vitest';
import { VirtualClock, seededRandom } from '../../../../src/core/clock.js';
import type { Worker } from '../../../../src/core/types.js';
import { EngineModel } from '../../../../src/sim/engine-model.js';
import { OracleBalancer } from '../../../../src/sim/cluster/oracle.js';
import { policyBench } from '../../../helpers/balancer.js';

/** An engine that has served a prompt of `blocks` (and so caches them). */
function engineHolding(clock: VirtualClock, blocks: number[]): EngineModel {
  const engine = new EngineModel({}, clock);
  engine.submit({ promptTokens: blocks.length * 16, maxTokens: 1, promptBlocks: blocks, onToken() {}, onDone() {} });
  clock.advance(60_000);
  return engine;
}

describe('OracleBalancer (the simulation’s clairvoyant yardstick)', () => {
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
    const oracle = new OracleBalancer(
      (w: Worker) => engines.get(w.name),
      (text) => (text === 'the prompt' ? prompt : undefined),
    );
    const { pool } = policyBench(oracle, [
      ['a', loadA, 30],
      ['b', loadB, 30],
    ]);
    expect(oracle.pick(pool.loads, { promptText: 'the prompt', random: seededRandom(1) })?.name).toBe(want);
  });
});
