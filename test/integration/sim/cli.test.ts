import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { main, parseSimArgs } from '../../../src/cli/flockserve-sim.js';
import type { CliIo } from '../../../src/cli/flockserve-sim.js';
import type { EngineSimulator } from '../../../src/sim/server.js';

function fakeIo(env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const exits: number[] = [];
  const io: CliIo = {
    env,
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    exit: (c) => exits.push(c),
    handleSignals: false,
  };
  return { io, out, err, exits };
}

const started: EngineSimulator[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.close()));
});

describe('flockserve-sim CLI', () => {
  it('--help says it is a simulator', async () => {
    const { io, out, exits } = fakeIo();
    expect(await main(['--help'], io)).toBeUndefined();
    expect(out.join('\n')).toMatch(/SIMULATOR \(not a real inference engine\)/);
    expect(exits).toEqual([]);
  });

  it('--version prints the package version', async () => {
    const { io, out, exits } = fakeIo();
    const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '../../../package.json'), 'utf8')) as {
      version: string;
    };
    expect(await main(['--version'], io)).toBeUndefined();
    expect([out, exits]).toEqual([[version], []]);
  });

  it.each([
    { argv: ['--bogus'], message: /bogus/ },
    { argv: ['--port', 'abc'], message: /--port expects an integer/ },
    { argv: ['--error-rate', '2'], message: /--error-rate must be within/ },
    {
      argv: ['--max-num-seqs', '64', '--max-num-batched-tokens', '32'],
      message: /--max-num-batched-tokens \(32\) must be 0 \(no budget\) or a whole number at least max-num-seqs \(64\)/,
    },
    // The default budget (2048) is checked too: the engine would refuse it.
    {
      argv: ['--max-num-seqs', '4096'],
      message:
        /--max-num-batched-tokens \(2048\) must be 0 \(no budget\) or a whole number at least max-num-seqs \(4096\)/,
    },
    { argv: ['extra'], message: /positional/i },
  ])('$argv → usage error, exit 2', async ({ argv, message }) => {
    const { io, err, exits } = fakeIo();
    expect(await main(argv, io)).toBeUndefined();
    expect(exits).toEqual([2]);
    expect(err.join('\n')).toMatch(message);
  });

  it.each([
    { argv: [], env: {}, port: 8000, host: '127.0.0.1' },
    { argv: [], env: { PORT: '9001' }, port: 9001, host: '127.0.0.1' },
    { argv: [], env: { PORT: '9001', FLOCKSERVE_WORKER_PORT: '9002' }, port: 9002, host: '127.0.0.1' },
    { argv: ['--port', '9003'], env: { FLOCKSERVE_WORKER_PORT: '9002' }, port: 9003, host: '127.0.0.1' },
    { argv: [], env: { FLOCKSERVE_WORKER_HOST: '0.0.0.0' }, port: 8000, host: '0.0.0.0' },
  ])('port/host from $argv and $env', ({ argv, env, port, host }) => {
    expect(parseSimArgs(argv, env)).toMatchObject({ port, host });
  });

  it('maps flags onto simulator options', () => {
    const o = parseSimArgs(
      [
        ...['--startup-delay', '1.5', '--max-num-seqs', '4', '--prefill-tps', '500', '--token-interval', '3'],
        ...['--kv-cache-tokens', '100000', '--prefix-cache-tokens', '0', '--offload-cache-tokens', '5', '--hang'],
        ...['--max-num-batched-tokens', '8'],
      ],
      {},
    );
    expect(o).toMatchObject({
      startupDelayMs: 1500,
      tokenIntervalMs: 3,
      hang: 'all',
      profile: {
        maxNumSeqs: 4,
        prefillTokensPerSecond: 500,
        kvCacheTokens: 100_000,
        prefixCacheTokens: 0,
        offloadCacheTokens: 5,
        maxNumBatchedTokens: 8,
      },
    });
  });

  it('starts a server, prints the listening line and serves requests', async () => {
    const { io, out } = fakeIo();
    const sim = await main(['--port', '0', '--model', 'm1', '--token-interval', '1'], io);
    expect(sim).toBeDefined();
    started.push(sim!);
    expect(out).toEqual([`flockserve-sim (engine simulator, not a real engine) listening on ${sim!.url}`]);
    const models = (await (await fetch(`${sim!.url}/v1/models`)).json()) as { data: { id: string }[] };
    expect(models.data[0]?.id).toBe('m1');
  });

  it('--crash-after makes the CLI exit with code 1', async () => {
    const { io, exits } = fakeIo();
    const sim = (await main(['--port', '0', '--crash-after', '0', '--token-interval', '1'], io))!;
    started.push(sim);
    await fetch(`${sim.url}/v1/completions`, {
      method: 'POST',
      body: JSON.stringify({ prompt: 'x', max_tokens: 5, stream: true }),
    }).then((r) => r.text().catch(() => ''));
    await new Promise((r) => setImmediate(r));
    expect(exits).toEqual([1]);
  });
});
