import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { GatewayError } from '../../../src/core/errors.js';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { waitFor } from '../../helpers/wait.js';

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const client = (url: string): OpenAI => new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });

describe('autoscaling end to end (local provisioner, simulator workers, real clock)', () => {
  it('scale-to-zero: the first request launches a worker, waits for it and is served; idle returns to zero', async () => {
    t = await startGateway({
      // target-tracking returns to zero after one idle queue_tracking_window (2 s here); slo keeps
      // an idle worker about a launch delay in 10 s buckets, which its virtual-clock tests cover.
      autoscaler: 'target-tracking',
      minWorkers: 0,
      maxWorkers: 1,
      // A worker process needs far longer than 0.05 s to start: only cold_start_timeout lets the
      // first request wait for it.
      queueTimeout: 0.05,
      coldStartTimeout: 30,
      autoscaleInterval: 0.2,
      queueTrackingWindow: 2,
      downscaleDelay: 0,
    });
    const { gw } = t;
    expect(gw.status().workerCount).toBe(0);

    const res = await client(t.url).chat.completions.create({
      model: 'sim',
      messages: [{ role: 'user', content: 'wake up' }],
      max_tokens: 3,
    });
    expect(res.usage?.completion_tokens).toBe(3);
    expect(gw.status()).toMatchObject({ readyWorkerCount: 1, totalRequests: 1 });
    const pid = Number(gw.workers()[0]?.detail['pid']);
    expect(pid).toBeGreaterThan(0);

    // Idle for the 2 s window → the autoscaler drains and terminates the worker: back to zero.
    await waitFor(() => gw.status().workerCount === 0, 'the fleet back at zero workers');
    expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
    expect(gw.status().queueLengthRunningMean).toBe(0);
  });

  it('a request that cannot wait for a cold start gets 503 with a message naming it', async () => {
    t = await startGateway({
      minWorkers: 0,
      maxWorkers: 1,
      coldStartTimeout: 0.01,
      autoscaleInterval: 0.2,
      simArgs: '--startup-delay 5',
    });
    const err = await client(t.url)
      .chat.completions.create({ model: 'sim', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect(String((err as Error).message)).toMatch(/cold start/);
    // The launch it triggered goes on: a worker is there for the next request.
    expect(t.gw.status().workerCount).toBe(1);
  });

  it('setScaleBounds changes [min, max] at run time and the fleet follows at once', async () => {
    t = await startGateway({ minWorkers: 1, maxWorkers: 1, autoscaleInterval: 3600 });
    const { gw } = t;
    expect(await gw.setScaleBounds(2, 3)).toEqual({ minWorkers: 2, maxWorkers: 3 });
    expect(gw.status()).toMatchObject({ minWorkers: 2, maxWorkers: 3 });
    // The hour-long interval shows the change does not wait for the next evaluation.
    await waitFor(() => gw.status().readyWorkerCount === 2, '2 ready workers after min 2');

    // Lowering max wins over the scale-down delay of the scale-up just made.
    await gw.setScaleBounds(0, 1);
    await waitFor(() => gw.status().workerCount === 1, 'one worker after max 1');

    for (const [min, max] of [
      [3, 2],
      [-1, 1],
      [0, 0],
      [1.5, 2],
    ] as const) {
      await expect(gw.setScaleBounds(min, max)).rejects.toThrow(GatewayError);
    }
    expect(gw.status()).toMatchObject({ minWorkers: 0, maxWorkers: 1 });
  });
});
