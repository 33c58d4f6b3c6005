import { afterEach } from 'vitest';
import { startEngineSimulator } from '../../src/sim/server.js';
import type { EngineSimulator, EngineSimulatorOptions } from '../../src/sim/server.js';

/** Starts in-process engine simulators for a test file; each is closed after the test that started it. */
export function simulatorsClosedAfterEach(): (options?: EngineSimulatorOptions) => Promise<EngineSimulator> {
  const running: EngineSimulator[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((s) => s.close()));
  });
  return async (options = {}) => {
    // 2 ms between tokens keeps the tests fast while still streaming token by token.
    const sim = await startEngineSimulator({ tokenIntervalMs: 2, ...options });
    running.push(sim);
    return sim;
  };
}
