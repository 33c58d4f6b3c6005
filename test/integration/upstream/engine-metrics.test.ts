import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineLoadSample } from '../../../src/core/balancer/types.js';
import { VirtualClock } from '../../../src/core/clock.js';
import { WorkerPool } from '../../../src/core/pool.js';
import type { Worker } from '../../../src/core/types.js';
import { startEngineSimulator, type EngineSimulator } from '../../../src/sim/server.js';
import { EngineMetricsScraper } from '../../../src/upstream/engine-metrics.js';
import { waitFor } from '../../helpers/wait.js';

describe('EngineMetricsScraper against the engine simulator', () => {
  let sim: EngineSimulator;
  beforeAll(async () => {
    // One sequence at a time and slow tokens: a second request waits inside the engine.
    sim = await startEngineSimulator({ tokenIntervalMs: 200, profile: { maxNumSeqs: 1 } });
  });
  afterAll(() => sim.close());

  it('pushes one round with what each engine reports, and unknown for one that does not answer', async () => {
    const pool = new WorkerPool(new VirtualClock());
    const live = pool.add('live', 4, 'ready');
    live.url = sim.url;
    const dead = pool.add('dead', 4, 'ready');
    dead.url = 'http://127.0.0.1:9'; // discard port: refused
    const rounds: Map<Worker, EngineLoadSample | undefined>[] = [];
    const errors: string[] = [];
    const scraper = new EngineMetricsScraper({
      clock: new VirtualClock(),
      intervalMs: 1000,
      workers: () => pool.readyWorkers(),
      sink: { reportEngineLoad: (m) => rounds.push(new Map(m)) },
      onError: (w) => errors.push(w.name),
    });
    const body = JSON.stringify({ model: 'sim', prompt: 'hello', max_tokens: 50 });
    const requests = [1, 2].map(() =>
      fetch(`${sim.url}/v1/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json' } }),
    );
    await waitFor(() => {
      const s = sim.stats();
      return s.running === 1 && s.waiting === 1 && s.kvCacheUsage > 0;
    }, 'one request running (holding KV cache), one waiting');

    await scraper.scrapeOnce();
    expect(rounds).toHaveLength(1);
    expect(rounds[0]!.get(live)).toMatchObject({ running: 1, waiting: 1 });
    expect(rounds[0]!.get(live)!.kvCacheUsage).toBeGreaterThan(0);
    expect(rounds[0]!.has(dead)).toBe(true);
    expect(rounds[0]!.get(dead)).toBeUndefined();
    expect(errors).toEqual(['dead']);
    await scraper.scrapeOnce();
    expect(errors).toEqual(['dead']); // reported once until it recovers, not once per round
    scraper.stop();
    await sim.close();
    await Promise.allSettled(requests);
  });
});
