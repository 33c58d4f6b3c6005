import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRequests, startScenario, type ScenarioEnv } from '../faults/harness.js';
import { FUZZ_GATEWAY, PROPERTIES, expectOpenAI4xx, post } from './properties.js';

/** Cases per property: 50 × 7 properties = 350 in the suite; the bench runs more. */
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 50);

let env: ScenarioEnv;
beforeAll(async () => {
  env = await startScenario({
    name: 'fuzz',
    workers: ['--token-interval 1'],
    gateway: FUZZ_GATEWAY,
    shot: { stream: false, maxTokens: 1 },
    concurrency: 1,
  });
});
afterAll(() => env?.close());

describe('fuzzing the HTTP adapters', () => {
  it.each(PROPERTIES.map((p) => [p.name, p] as const))('%s', async (_name, p) => {
    await fc.assert(
      fc.asyncProperty(p.arbitrary, async (req) => p.check(await post(env.url, req), req)),
      { numRuns: RUNS },
    );
  });

  it('the checks can fail: a valid request is no 4xx', async () => {
    const a = await post(env.url, {
      path: '/v1/chat/completions',
      body: Buffer.from(JSON.stringify({ messages: [{ role: 'user', content: 'x' }], max_tokens: 1 })),
    });
    expect(a.status).toBe(200);
    expect(() => expectOpenAI4xx(a)).toThrow(/expected a 4xx/);
  });

  it('the gateway still serves after the fuzzing', async () => {
    const after = await runRequests(env.url, { stream: true, maxTokens: 3 }, 4, 2);
    expect(after.ok).toBe(4);
    expect(env.gw.status().currentQueueLength).toBe(0);
  });
});
