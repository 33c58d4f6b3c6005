import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../../src/core/clock.js';
import { LeastConnection } from '../../../../src/core/balancer/least-connection.js';
import { BALANCERS, BALANCER_NAMES, createBalancer } from '../../../../src/core/balancer/registry.js';
import type { Worker } from '../../../../src/core/pool.js';
import type { WorkerState } from '../../../../src/core/types.js';
import { OPTIONS } from '../../../../src/config/options.js';

function worker(name: string, inFlight: number, capacity: number, state: WorkerState = 'ready'): Worker {
  return {
    name,
    capacity,
    createdAt: 0,
    state,
    url: `http://127.0.0.1/${name}`,
    inFlight,
    totalRequests: 0,
    stateSince: 0,
    lastProbeAt: undefined,
    detail: {},
    ejected: false,
  };
}

/** [label, workers as [name, inFlight, capacity], names that may be picked] */
const table: [string, [string, number, number][], string[]][] = [
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
];

describe('LeastConnection', () => {
  it.each(table)('%s', (_label, spec, allowed) => {
    const policy = new LeastConnection();
    const random = seededRandom(1);
    const workers = spec.map(([n, f, c]) => worker(n, f, c));
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const w = policy.pick(workers, { random });
      if (allowed.length === 0) expect(w).toBeUndefined();
      else seen.add(w!.name);
    }
    expect([...seen].sort()).toEqual(allowed);
  });

  it('skips workers that are not ready even if passed', () => {
    const policy = new LeastConnection();
    const w = policy.pick([worker('a', 0, 4, 'draining'), worker('b', 3, 4)], { random: seededRandom(1) });
    expect(w?.name).toBe('b');
  });

  /** χ² of 10k picks among equally loaded workers against the uniform distribution. */
  function chiSquare(pick: (ws: readonly Worker[]) => Worker | undefined, n: number): number {
    const workers = Array.from({ length: n }, (_, i) => worker(`w${i}`, 1, 4));
    const counts = new Map<Worker, number>();
    const picks = 10_000;
    for (let i = 0; i < picks; i++) {
      const w = pick(workers)!;
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
    const expected = picks / n;
    let chi2 = 0;
    for (const w of workers) chi2 += ((counts.get(w) ?? 0) - expected) ** 2 / expected;
    return chi2;
  }
  // 4 degrees of freedom: P(χ² > 18.47) = 0.001.
  const CHI2_4DF_0_001 = 18.47;

  it('breaks ties uniformly at random (chi-square over 10k picks)', () => {
    const policy = new LeastConnection();
    const random = seededRandom(42);
    expect(chiSquare((ws) => policy.pick(ws, { random }), 5)).toBeLessThan(CHI2_4DF_0_001);
  });

  it('the chi-square check catches a biased tie-break', () => {
    const random = seededRandom(42);
    // "Replace with probability 1/2" instead of 1/k favours the last-listed workers.
    const biased = (ws: readonly Worker[]): Worker | undefined => ws.reduce((a, b) => (random() < 0.5 ? b : a));
    expect(chiSquare(biased, 5)).toBeGreaterThan(CHI2_4DF_0_001);
  });

  it('does not follow list order: with all idle, the first-listed worker gets about 1/n', () => {
    const policy = new LeastConnection();
    const random = seededRandom(7);
    const workers = ['a', 'b', 'c', 'd'].map((n) => worker(n, 0, 4));
    let first = 0;
    for (let i = 0; i < 1000; i++) if (policy.pick(workers, { random }) === workers[0]) first++;
    // A list-order policy would give 1000 here.
    expect(first).toBeGreaterThan(180);
    expect(first).toBeLessThan(320);
  });

  it('spreads a burst evenly when each pick takes a slot', () => {
    const policy = new LeastConnection();
    const random = seededRandom(3);
    const workers = [worker('a', 0, 10), worker('b', 0, 10), worker('c', 0, 5)];
    for (let i = 0; i < 20; i++) policy.pick(workers, { random })!.inFlight++;
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
