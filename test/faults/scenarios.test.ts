import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import {
  SCENARIOS,
  abortedOnWorkers,
  runRequests,
  startScenario,
  waitIdle,
  type ScenarioEnv,
  type ScenarioName,
  type Tally,
} from './harness.js';

let env: ScenarioEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

/**
 * What each scenario must show besides "nothing lost": the fault really happened and was
 * handled as the gateway promises (retried, replaced, answered with an explicit error). [scenario, requests, check]
 */
const table: [ScenarioName, number, (t: Tally, env: ScenarioEnv, urlsBefore: string[]) => Promise<void> | void][] = [
  [
    'worker killed mid-stream',
    16,
    async (t, e, before) => {
      expect(t.errorCodes['upstream_interrupted']).toBeGreaterThan(0); // cut streams got an error event
      expect(t.ok).toBeGreaterThan(0);
      // The dead workers were replaced by new processes (new ports), which serve.
      await waitFor(() => e.gw.status().readyWorkerCount === 2, 'two ready workers again');
      expect(e.gw.workers().some((w) => !before.includes(w.url ?? ''))).toBe(true);
    },
  ],
  [
    'worker hangs before headers',
    16,
    (t) => {
      expect(t.errorCodes['upstream_timeout']).toBeGreaterThan(0); // 504 after first_byte_timeout
      expect(t.ok).toBeGreaterThan(0);
    },
  ],
  [
    'worker hangs mid-stream',
    16,
    (t) => {
      expect(t.errorCodes['upstream_stalled']).toBeGreaterThan(0); // error event after idle_timeout
      expect(t.ok).toBeGreaterThan(0);
    },
  ],
  [
    'worker returning 500s',
    24,
    (t, e) => {
      // 500 is the worker's own answer (not retried), in the catalogue's shape; after 5 in a row
      // the worker is ejected.
      expect(t.errorCodes['upstream_error']).toBeGreaterThanOrEqual(5);
      expect(t.errorCodes['upstream_error']).toBeLessThan(24);
      expect(e.gw.workers().filter((w) => w.ejected)).toHaveLength(1);
    },
  ],
  [
    'worker returning 503s (retried)',
    24,
    (t) => {
      // Every 503 came before the first byte and was retried on the other worker.
      expect(t.ok).toBe(24);
    },
  ],
  [
    'malformed SSE from a worker',
    16,
    (t) => {
      expect(t.errorCodes['upstream_malformed']).toBeGreaterThan(0);
      expect(t.ok).toBeGreaterThan(0);
    },
  ],
  [
    'malformed JSON from a worker',
    16,
    (t) => {
      expect(t.errorCodes['upstream_malformed']).toBeGreaterThan(0);
      expect(t.ok).toBeGreaterThan(0);
    },
  ],
  [
    'worker never becomes ready',
    16,
    (t, e) => {
      expect(t.ok).toBe(16);
      expect(e.gw.workers().filter((w) => w.state === 'ready')).toHaveLength(1);
    },
  ],
  [
    'clients disconnecting mid-stream under load',
    100,
    async (t, e) => {
      expect(t.cancelled).toBe(100);
      // Every disconnect reached an engine as an aborted sequence.
      await waitFor(async () => (await abortedOnWorkers(e)) === 100, 'the engines to count 100 aborts');
    },
  ],
  [
    'concurrent streams with slow readers',
    200,
    (t) => {
      expect(t.ok).toBe(200);
    },
  ],
];

describe('fault injection: every request ends in an answer or an explicit error', () => {
  it.each(table)('%s (%i requests)', async (name, n, check) => {
    const s = SCENARIOS[name];
    env = await startScenario(s);
    const urlsBefore = env.gw.workers().map((w) => w.url ?? '');
    const tally = await runRequests(env.url, s.shot, n, Math.min(s.concurrency, n));
    expect(tally.lostDetails).toEqual([]);
    expect(tally.lost).toBe(0);
    expect(tally.ok + tally.error + tally.cancelled).toBe(n);
    await check(tally, env, urlsBefore);
    // Every slot was given back, and the gateway still serves.
    await waitIdle(env);
    const after = await runRequests(env.url, { stream: true, maxTokens: 3 }, 4, 1);
    expect(after.lost).toBe(0);
    expect(after.ok).toBeGreaterThan(0);
  });
});
