import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/core/clock.js';
import { HealthChecker, type HealthCheckerOptions } from '../../../src/core/health-checker.js';
import { WorkerPool } from '../../../src/core/pool.js';
import type { Worker, WorkerState } from '../../../src/core/types.js';
import { FakeProber } from '../../fakes/prober.js';
import { runTo } from '../../helpers/virtual-time.js';

const URL = 'http://w-1.test';

// Probes every 1 s; a worker starting or not_ready for 10 s is replaced.
function setup(over: Partial<HealthCheckerOptions> = {}) {
  const clock = new VirtualClock();
  const pool = new WorkerPool(clock);
  const prober = new FakeProber();
  const events: string[] = [];
  const logs: string[] = [];
  const health = new HealthChecker({
    pool,
    prober,
    clock,
    probeIntervalMs: 1000,
    unhealthyTimeoutMs: 10_000,
    replace: (w) => events.push(`${clock.now()} replace ${w.name} (${w.state})`),
    onReady: (w) => events.push(`${clock.now()} ready ${w.name}`),
    log: (level, msg) => logs.push(`${level} ${msg}`),
    ...over,
  });
  /** A worker that has just launched: starting, with its URL. */
  const started = (name = 'w-1', url = URL): Worker => {
    const w = pool.add(name, 4, 'provisioning');
    w.url = url;
    pool.setState(name, 'starting', 'launched');
    return w;
  };
  const state = (name = 'w-1'): WorkerState | undefined => pool.get(name)?.state;
  return { clock, pool, prober, health, events, logs, started, state, runTo: (t: number) => runTo(clock, t) };
}

describe('HealthChecker', () => {
  it('probes every interval: starting → ready on a pass, ready ⇄ not_ready on the results', async () => {
    const h = setup();
    h.prober.set(URL, false);
    h.health.watch(h.started());
    const timeline: Array<[at: number, state: WorkerState, probes: number, then?: () => void]> = [
      [0, 'starting', 1], // the first probe goes out at once
      [2900, 'starting', 3, () => h.prober.set(URL, true)],
      [3000, 'ready', 4, () => h.prober.set(URL, false)],
      [4000, 'not_ready', 5, () => h.prober.set(URL, true)],
      [5000, 'ready', 6],
    ];
    for (const [at, want, probes, then] of timeline) {
      await h.runTo(at);
      expect(h.state(), `at ${at} ms`).toBe(want);
      expect(h.prober.count(URL), `at ${at} ms`).toBe(probes);
      then?.();
    }
    expect(h.events).toEqual(['3000 ready w-1', '5000 ready w-1']);
    expect(h.pool.get('w-1')?.lastProbeAt).toBe(5000);
    expect(h.health.replaced).toBe(0);
  });

  it('asks for a replacement once a worker is starting or not_ready for the unhealthy timeout, then stops probing it', async () => {
    for (const [label, readyFirst, replaceAt] of [
      ['never ready', false, 10_000],
      ['not_ready since 2 s', true, 12_000],
    ] as const) {
      const h = setup();
      h.prober.set(URL, readyFirst);
      h.health.watch(h.started());
      await h.runTo(1000);
      h.prober.set(URL, false);
      await h.runTo(replaceAt - 100);
      expect(
        h.events.filter((e) => e.includes('replace')),
        label,
      ).toEqual([]);
      await h.runTo(replaceAt);
      expect(
        h.events.filter((e) => e.includes('replace')),
        label,
      ).toEqual([`${replaceAt} replace w-1 (${readyFirst ? 'not_ready' : 'starting'})`]);
      expect(h.health.replaced, label).toBe(1);
      const probes = h.prober.count(URL);
      await h.runTo(replaceAt + 5000);
      expect(h.prober.count(URL), label).toBe(probes);
      expect(h.clock.pendingTimers, label).toBe(0);
    }
  });

  it('a ready worker is never replaced for its age', async () => {
    const h = setup();
    h.health.watch(h.started());
    await h.runTo(60_000);
    expect(h.state()).toBe('ready');
    expect(h.health.replaced).toBe(0);
  });

  it('keeps one probe out at a time: a hung probe costs one, and is aborted when the worker is replaced', async () => {
    const h = setup();
    h.prober.hang = true;
    h.health.watch(h.started());
    await h.runTo(9900);
    expect(h.prober.count(URL)).toBe(1);
    await h.runTo(10_000);
    expect(h.events).toEqual(['10000 replace w-1 (starting)']);
    // The aborted probe answered false: it changes nothing on a worker no longer watched.
    expect(h.state()).toBe('starting');
  });

  it('a worker reported lost goes failed and is replaced at once', async () => {
    const h = setup();
    const w = h.started();
    h.health.watch(w);
    await h.runTo(1000);
    h.health.lost(w, 'process exited with code 137');
    expect(h.state()).toBe('failed');
    expect(h.events).toEqual(['0 ready w-1', '1000 replace w-1 (failed)']);
    expect(h.health.replaced).toBe(1);
    expect(h.logs).toContain('warn fleet: worker w-1 lost: process exited with code 137');
    expect(h.clock.pendingTimers).toBe(0);
  });

  it('after unwatch, a probe still out changes nothing', async () => {
    const h = setup();
    h.prober.hang = true;
    const w = h.started();
    h.health.watch(w);
    h.prober.hang = false; // the next probe would pass, but there is none
    h.health.unwatch('w-1');
    await h.runTo(20_000);
    expect(h.state()).toBe('starting');
    expect(h.prober.count(URL)).toBe(1);
    expect(h.events).toEqual([]);
  });

  it('stops on its own when the worker leaves the probed states', async () => {
    const h = setup();
    h.health.watch(h.started());
    await h.runTo(500);
    h.pool.setState('w-1', 'draining', 'scale-down');
    await h.runTo(5000);
    expect(h.prober.count(URL)).toBe(1);
    expect(h.clock.pendingTimers).toBe(0);
  });

  it('a hook that throws is logged, and probing goes on', async () => {
    const h = setup({
      onReady: () => {
        throw new Error('boom');
      },
      onProbe: () => {
        throw new Error('bang');
      },
    });
    h.health.watch(h.started());
    await h.runTo(2000);
    expect(h.state()).toBe('ready');
    expect(h.prober.count(URL)).toBe(3);
    expect(h.logs).toContain('error fleet: onReady threw: boom');
    expect(h.logs.filter((l) => l === 'error fleet: onProbe threw: bang')).toHaveLength(3);
  });

  it('refuses a probe interval that is not positive', () => {
    expect(() => setup({ probeIntervalMs: 0 })).toThrow(/probeIntervalMs must be > 0/);
  });
});
