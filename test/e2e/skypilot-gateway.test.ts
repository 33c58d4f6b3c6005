import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { FlockServe, type FlockServeOptions } from '../../src/index.js';
import { alive, clusterPort, fakeSky, skyTask, type FakeSky } from '../helpers/fake-sky.js';
import { simStats, TEST_GATEWAY_OPTIONS } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The gateway in this process with `--provisioner skypilot`, its `sky` being the fake
 * (first on PATH) whose tasks are engine simulators. Fault switches go in the
 * environment the fake `sky` inherits.
 */
async function startSkyGateway(faults: Record<string, string>, over: Partial<FlockServeOptions> = {}) {
  const sky: FakeSky = fakeSky();
  onTestFinished(() => sky.killJobs()); // engines left by a test that failed before close()
  const saved = { ...process.env };
  Object.assign(process.env, sky.env(faults));
  const port = await clusterPort();
  const messages: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void messages.push(JSON.parse(line).msg) });
  const gw = new FlockServe(
    {
      ...TEST_GATEWAY_OPTIONS,
      skypilotTask: skyTask(port, '--token-interval 1'),
      provisioner: 'skypilot',
      minWorkers: 2,
      maxWorkers: 2,
      drainTimeout: 2,
      logDir: mkdtempSync(join(tmpdir(), 'sky-logs-')),
      skyCommandTimeout: 20,
      launchRetryDelay: 0.05,
      ...over,
    },
    { logger },
  );
  const listening = await gw.run();
  const openai = new OpenAI({ baseURL: `http://127.0.0.1:${listening.httpPort}/v1`, apiKey: 'unused', maxRetries: 0 });
  const close = async (): Promise<void> => {
    await gw.close();
    process.env = saved;
  };
  return { sky, gw, openai, messages, port, close };
}

const ask = (openai: OpenAI) =>
  openai.chat.completions.create({ model: 'sim', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 });

describe('gateway with --provisioner skypilot (fake sky, simulator tasks)', () => {
  it('launches two workers, each its own host, serves on both, and tears both down on close', async () => {
    const t = await startSkyGateway({});
    try {
      await waitFor(() => t.gw.status().readyWorkerCount === 2, 'two ready workers');
      const urls = t.gw.workers().map((w) => w.url);
      expect(new Set(urls)).toEqual(new Set([`http://127.0.0.2:${t.port}`, `http://127.0.0.3:${t.port}`]));
      const answers = await Promise.all(Array.from({ length: 8 }, () => ask(t.openai)));
      expect(answers.every((a) => a.choices[0]?.message.content)).toBe(true);
      for (const url of urls) expect((await simStats(url!)).completed).toBeGreaterThan(0);
      // A person can follow the launch: worker, phase, elapsed.
      expect(t.messages).toContainEqual(expect.stringMatching(/^skypilot-worker-1 provisioning \d+s$/));
      expect(t.messages).toContainEqual(expect.stringMatching(/^skypilot-worker-2 job submitted \d+s$/));
    } finally {
      await t.close();
    }
    expect(t.sky.clusters()).toEqual([]);
    expect(t.messages).toContain('tearing down 2 workers');
  });

  it('retries a failed launch under the same name, gives up after max_launch_retries, and pursues the target with a new name; nothing leaks', async () => {
    // Launches 1-3 fail: worker-1 fails twice (1 retry) and is given up; worker-2 fails once, then comes up.
    const t = await startSkyGateway(
      { FAKE_SKY_LAUNCH_FAIL_TIMES: '3' },
      { minWorkers: 1, maxWorkers: 1, maxLaunchRetries: 1 },
    );
    try {
      // worker-1's last teardown runs alongside worker-2's launches: wait for both to end.
      const worker1Teardowns = (): number =>
        t.messages.filter((m) => m === 'fleet: skypilot-worker-1 terminated').length;
      await waitFor(
        () => t.gw.status().readyWorkerCount === 1 && worker1Teardowns() === 2,
        'one ready worker and worker-1 torn down twice',
        20_000,
      );
      const status = t.gw.status();
      expect(status.failedLaunches).toBe(1);
      expect(t.gw.workers().map((w) => `${w.name} ${w.state}`)).toEqual([
        'skypilot-worker-1 failed',
        'skypilot-worker-2 ready',
      ]);
      const lifecycle = t.sky
        .commands()
        .filter((c) => /^sky (launch|down)/.test(c))
        .map((c) => c.split(' ').slice(0, 4).join(' '));
      const of = (name: string): string[] => lifecycle.filter((c) => c.endsWith(` ${name}`));
      expect(of('skypilot-worker-1')).toEqual([
        'sky launch -c skypilot-worker-1',
        'sky down -y skypilot-worker-1', // the failed attempt's INIT cluster, before the retry
        'sky launch -c skypilot-worker-1',
        'sky down -y skypilot-worker-1', // given up: torn down, kept as `failed`
      ]);
      expect(of('skypilot-worker-2')).toEqual([
        'sky launch -c skypilot-worker-2',
        'sky down -y skypilot-worker-2',
        'sky launch -c skypilot-worker-2',
      ]);
      expect(lifecycle).toHaveLength(7);
      // The new name is pursued only once worker-1 is given up (after its second launch);
      // worker-1's teardown and worker-2's launches run at once, so their order is not defined.
      expect(lifecycle.indexOf('sky launch -c skypilot-worker-2')).toBeGreaterThan(
        lifecycle.lastIndexOf('sky launch -c skypilot-worker-1'),
      );
      expect(t.sky.clusters().map((c) => `${c.name} ${c.status}`)).toEqual(['skypilot-worker-2 UP']);
      await ask(t.openai);
    } finally {
      await t.close();
    }
    expect(t.sky.clusters()).toEqual([]);
  });

  it('replaces a preempted worker while requests keep succeeding on the other', async () => {
    const t = await startSkyGateway({}, { skyRefreshInterval: 0.3 });
    try {
      await waitFor(() => t.gw.status().readyWorkerCount === 2, 'two ready workers');
      const victim = t.sky.clusters().find((c) => c.name === 'skypilot-worker-1')!;
      const oldPgid = victim.jobs[0]!.pgid;
      process.env.FAKE_SKY_PREEMPT = 'skypilot-worker-1'; // applied by the next `sky` call
      let failures = 0;
      let served = 0;
      // The replacement launches at once, under the next free name (worker-1 is still being torn down).
      const replaced = (): boolean =>
        t.gw
          .workers()
          .map((w) => `${w.name} ${w.state}`)
          .join() === 'skypilot-worker-2 ready,skypilot-worker-3 ready';
      while (!replaced()) {
        await ask(t.openai).then(
          () => served++,
          () => failures++,
        );
        if (served + failures > 2000) throw new Error('no replacement after 2000 requests');
      }
      expect(failures).toBe(0);
      expect(served).toBeGreaterThan(0);
      expect(alive(oldPgid)).toBe(false);
      expect(t.sky.commands()).toEqual(
        expect.arrayContaining([
          'sky status --refresh skypilot-worker-1 skypilot-worker-2',
          'sky down -y skypilot-worker-1',
        ]),
      );
      expect(t.messages).toContainEqual(expect.stringMatching(/skypilot-worker-1 lost: its cluster is STOPPED/));
      await Promise.all(Array.from({ length: 4 }, () => ask(t.openai)));
    } finally {
      await t.close();
    }
    expect(t.sky.clusters()).toEqual([]);
  });
});
