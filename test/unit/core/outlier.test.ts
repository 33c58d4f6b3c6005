import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/core/clock.js';
import { OutlierDetector } from '../../../src/core/outlier.js';
import { WorkerPool } from '../../../src/core/pool.js';
import type { Worker } from '../../../src/core/types.js';

const S = 1000;

function setup(workers = 2, consecutiveFailures = 5) {
  const clock = new VirtualClock();
  const pool = new WorkerPool(clock);
  for (let i = 1; i <= workers; i++) {
    pool.add(`w-${i}`, 4, 'provisioning');
    pool.setState(`w-${i}`, 'starting', 'test');
    pool.setState(`w-${i}`, 'ready', 'test');
  }
  const events: string[] = [];
  const outlier = new OutlierDetector({
    pool,
    clock,
    consecutiveFailures,
    baseEjectionMs: 30 * S,
    onEject: (w, i) => events.push(`eject ${w.name} ${i.forMs / S}s`),
    onReadmit: (w, reason) => events.push(`readmit ${w.name}: ${reason}`),
  });
  const w = (name: string): Worker => pool.get(name)!;
  const fail = (name: string, times = 1): void => {
    for (let i = 0; i < times; i++) outlier.failure(w(name));
  };
  return { clock, pool, outlier, events, w, fail };
}

describe('OutlierDetector', () => {
  it('5 failures in a row eject; a success in between breaks the row', () => {
    const { outlier, w, fail, pool, events } = setup();
    fail('w-1', 4);
    outlier.success(w('w-1'));
    fail('w-1', 4);
    expect(w('w-1').ejected).toBe(false);
    fail('w-1');
    expect(w('w-1').ejected).toBe(true);
    expect(pool.candidates().map((x) => x.name)).toEqual(['w-2']);
    expect(events).toEqual(['eject w-1 30s']);
  });

  // Timeline: [time s, action, ejected after it]
  it('ejection time doubles with each ejection in a row; a passing probe after it readmits', () => {
    const { clock, outlier, w, fail, events } = setup();
    const timeline: [number, () => void, boolean][] = [
      [0, () => fail('w-1', 5), true], // ejected for 30 s
      [29, () => outlier.probed(w('w-1'), true), true], // too early
      [30, () => outlier.probed(w('w-1'), false), true], // due, but the probe failed
      [31, () => outlier.probed(w('w-1'), true), false], // readmitted
      [40, () => fail('w-1', 5), true], // second in a row: 60 s
      [99, () => outlier.probed(w('w-1'), true), true],
      [100, () => outlier.probed(w('w-1'), true), false],
      [110, () => fail('w-1', 5), true], // third: 120 s
      [230, () => outlier.probed(w('w-1'), true), false],
    ];
    for (const [at, act, ejected] of timeline) {
      clock.runUntil(at * S);
      act();
      expect([at, w('w-1').ejected]).toEqual([at, ejected]);
    }
    expect(events.filter((e) => e.startsWith('eject'))).toEqual(['eject w-1 30s', 'eject w-1 60s', 'eject w-1 120s']);
    expect(outlier.stats).toMatchObject({ ejections: 3, readmissions: 3 });
  });

  it('the ejection time is capped at 10× the base (300 s), and forgotten after 300 s of service', () => {
    const { clock, outlier, w, fail, events } = setup();
    for (let i = 0; i < 6; i++) {
      fail('w-1', 5);
      clock.advance(400 * S - 1); // under 300 s of service after each readmission, so the row goes on
      outlier.probed(w('w-1'), true);
      clock.advance(1);
    }
    expect(events.filter((e) => e.startsWith('eject')).map((e) => e.split(' ')[2])).toEqual([
      '30s',
      '60s',
      '120s',
      '240s',
      '300s',
      '300s',
    ]);
    clock.advance(300 * S);
    fail('w-1', 5);
    expect(events.at(-1)).toBe('eject w-1 30s');
  });

  it('never ejects the last serving worker', () => {
    const { w, fail, outlier } = setup(1);
    fail('w-1', 20);
    expect(w('w-1').ejected).toBe(false);
    expect(outlier.stats.sparedLastWorker).toBe(16);
  });

  it('with two workers, only one may be ejected', () => {
    const { w, fail } = setup(2);
    fail('w-1', 5);
    fail('w-2', 5);
    expect([w('w-1').ejected, w('w-2').ejected]).toEqual([true, false]);
  });

  it('readmits an ejected worker at once when nobody else serves any more', () => {
    const { pool, w, fail, events } = setup(2);
    fail('w-1', 5);
    pool.setState('w-2', 'not_ready', 'probe failed');
    expect(w('w-1').ejected).toBe(false);
    expect(events.at(-1)).toBe('readmit w-1: no other worker is serving');
  });

  it('failures of a worker that is not ready (draining) do not eject it', () => {
    const { pool, w, fail } = setup(3);
    pool.setState('w-1', 'draining', 'scale-down');
    fail('w-1', 10);
    expect(w('w-1').ejected).toBe(false);
  });

  it('outlier_consecutive_failures 0 turns detection off', () => {
    const { w, fail } = setup(2, 0);
    fail('w-1', 50);
    expect(w('w-1').ejected).toBe(false);
  });

  it('forgets a worker that is gone', () => {
    const { pool, fail, outlier } = setup(3);
    fail('w-1', 5);
    pool.setState('w-1', 'terminating', 'x');
    pool.setState('w-1', 'gone', 'x');
    expect(outlier.ejectedUntil({ name: 'w-1', ejected: true } as Worker)).toBeUndefined();
  });
});
