import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../../src/core/clock.js';
import { LeastConnection } from '../../../../src/core/balancer/least-connection.js';
import { BALANCERS, BALANCER_NAMES, createBalancer } from '../../../../src/core/balancer/registry.js';
import { OPTIONS } from '../../../../src/config/options.js';
import { policyBench, type WorkerSpec } from '../../../helpers/balancer.js';

/** [label, workers as [name, inFlight, capacity, state?], names that may be picked] */
const table: [string, WorkerSpec[], string[]][] = [
  ['empty list', [], []],
  ['one worker', [['a', 0, 4]], ['a']],
  [
    'fewest in flight wins',
    [
      ['a', 3, 4],
      ['b', 1, 4],
      ['c', 2, 4],
    ],
    ['b'],
  ],
  [
    'relative to capacity: 3/30 beats 1/4',
    [
      ['a', 1, 4],
      ['b', 3, 30],
    ],
    ['b'],
  ],
  [
    '1/3 and 2/6 tie exactly',
    [
      ['a', 1, 3],
      ['b', 2, 6],
      ['c', 2, 3],
    ],
    ['a', 'b'],
  ],
  [
    'a full worker is never picked',
    [
      ['a', 4, 4],
      ['b', 3, 4],
    ],
    ['b'],
  ],
  [
    'all full → none',
    [
      ['a', 4, 4],
      ['b', 2, 2],
    ],
    [],
  ],
  [
    'the last in the list can win',
    [
      ['a', 2, 4],
      ['b', 2, 4],
      ['c', 0, 4],
    ],
    ['c'],
  ],
  [
    'an idle draining worker is not picked',
    [
      ['a', 0, 4, 'draining'],
      ['b', 3, 4],
    ],
    ['b'],
  ],
];

describe('LeastConnection', () => {
  it.each(table)('%s', (_label, spec, allowed) => {
    const policy = new LeastConnection();
    const { pool } = policyBench(policy, spec);
    const random = seededRandom(1);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const w = policy.pick(pool.loads, { random });
      if (allowed.length === 0) expect(w).toBeUndefined();
      else seen.add(w!.name);
    }
    expect([...seen].sort()).toEqual(allowed);
  });

  it('does not follow list order: with all idle, the first-listed worker gets about 1/n', () => {
    const policy = new LeastConnection();
    const { pool, workers } = policyBench(policy, [
      ['a', 0, 4],
      ['b', 0, 4],
      ['c', 0, 4],
      ['d', 0, 4],
    ]);
    const random = seededRandom(7);
    let first = 0;
    for (let i = 0; i < 1000; i++) if (policy.pick(pool.loads, { random }) === workers[0]) first++;
    // A list-order policy would give 1000 here.
    expect(first).toBeGreaterThan(180);
    expect(first).toBeLessThan(320);
  });

  it('spreads a burst evenly when each pick takes a slot', () => {
    const policy = new LeastConnection();
    const { pool, workers } = policyBench(policy, [
      ['a', 0, 10],
      ['b', 0, 10],
      ['c', 0, 5],
    ]);
    const random = seededRandom(3);
    for (let i = 0; i < 20; i++) pool.acquire(policy.pick(pool.loads, { random })!);
    // Equal load fractions: 8/10, 8/10, 4/5.
    expect(workers.map((w) => w.inFlight)).toEqual([8, 8, 4]);
  });
});

describe('balancer registry', () => {
  it('builds every registered policy under its own name', () => {
    for (const name of BALANCER_NAMES) expect(createBalancer(name).name).toBe(name);
  });

  it('rejects unknown names, listing the valid ones', () => {
    expect(() => createBalancer('round-robbin')).toThrow(/least-connection/);
  });

  it('is the source of the --load_balancer choices', () => {
    expect(OPTIONS.load_balancer.choices).toEqual(Object.keys(BALANCERS));
    expect(OPTIONS.load_balancer.choices).toContain(OPTIONS.load_balancer.default);
  });
});
