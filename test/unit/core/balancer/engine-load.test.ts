import { describe, expect, it } from 'vitest';
import { seededRandom, VirtualClock } from '../../../../src/core/clock.js';
import { EngineLoad } from '../../../../src/core/balancer/engine-load.js';
import type { EngineLoadSample } from '../../../../src/core/balancer/types.js';
import { policyBench } from '../../../helpers/balancer.js';

const STALE_MS = 3000;
const s = (waiting: number, kvCacheUsage?: number): EngineLoadSample => ({ waiting, running: 0, kvCacheUsage });

function setup() {
  const clock = new VirtualClock();
  const policy = new EngineLoad({ clock, engineMetricsStaleMs: STALE_MS });
  const b = policyBench(
    policy,
    [
      ['a', 0, 10],
      ['b', 0, 10],
    ],
    clock,
  );
  const report = (samples: Record<string, EngineLoadSample | undefined>) =>
    policy.reportEngineLoad(new Map(Object.entries(samples).map(([n, v]) => [b.byName(n), v])));
  const pick = () => policy.pick(b.pool.loads, { random: seededRandom(1) })!.name;
  return { clock, policy, b, report, pick };
}

describe('EngineLoad', () => {
  /** [label, in flight a/b, samples a/b, expected] — score = (inFlight + waiting)/capacity + KV usage. */
  const table: [string, [number, number], [EngineLoadSample, EngineLoadSample], string][] = [
    ['equal engines: fewer in flight wins', [3, 1], [s(0, 0.1), s(0, 0.1)], 'b'],
    ['a fuller KV cache outweighs 2 requests: 0.3+0.1 vs 0.1+0.5', [3, 1], [s(0, 0.1), s(0, 0.5)], 'a'],
    ['an engine queue counts like in-flight requests: (1+3)/10 vs 2/10', [1, 2], [s(3, 0), s(0, 0)], 'b'],
    ['no KV gauge (TGI) counts as 0 usage', [1, 1], [s(0), s(0, 0.2)], 'a'],
  ];
  it.each(table)('%s', (_label, [fa, fb], [sa, sb], want) => {
    const { b, report, pick } = setup();
    for (let i = 0; i < fa; i++) b.pool.acquire(b.byName('a'));
    for (let i = 0; i < fb; i++) b.pool.acquire(b.byName('b'));
    report({ a: sa, b: sb });
    expect(pick()).toBe(want);
  });

  it('follows in-flight changes between scrapes', () => {
    const { b, report, pick } = setup();
    report({ a: s(0, 0.1), b: s(0, 0.1) });
    const order: string[] = [];
    for (let i = 0; i < 6; i++) {
      const w = pick();
      order.push(w);
      b.pool.acquire(b.byName(w));
    }
    expect(order.filter((n) => n === 'a').length).toBe(3);
  });

  /** Timelines: [label, steps as (advance ms, round of samples | null), expected score of a relative to b]. */
  it('a stale "idle" sample is unknown, not idle: it no longer attracts traffic', () => {
    const { clock, policy, b, report, pick } = setup();
    report({ a: s(0, 0), b: s(0, 0.5) });
    expect(pick()).toBe('a');
    clock.advance(STALE_MS + 1);
    report({ b: s(0, 0.5) }); // a's scrapes stopped answering
    // Unknown takes the worst fresh engine part (b's 0.5): a ties b instead of looking idle.
    expect(policy.scoreOf(b.byName('a'))).toBeCloseTo(policy.scoreOf(b.byName('b'))!);
  });

  it('a failed scrape is unknown at once', () => {
    const { policy, b, report } = setup();
    report({ a: s(0, 0), b: s(0, 0.6) });
    report({ a: undefined, b: s(0, 0.6) });
    expect(policy.scoreOf(b.byName('a'))).toBeCloseTo(0.6);
  });

  it('a stale "overloaded" sample stops repelling traffic too, even with no new round', () => {
    const { clock, b, report, pick } = setup();
    report({ a: s(0, 0.9), b: s(0, 0.1) });
    b.pool.acquire(b.byName('b'));
    b.pool.acquire(b.byName('b'));
    expect(pick()).toBe('b'); // 0.2 + 0.1 < 0 + 0.9
    clock.advance(STALE_MS + 1);
    // Both samples are stale: both engines unknown (0.9, the worst at the last round): in flight decides.
    expect(pick()).toBe('a');
  });

  it('with no samples at all it is least-connection', () => {
    const { b, pick } = setup();
    b.pool.acquire(b.byName('a'));
    expect(pick()).toBe('b');
  });
});
