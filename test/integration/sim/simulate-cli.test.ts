import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { simulateMain } from '../../../src/sim/cluster/cli.js';
import { planMain } from '../../../src/sim/plan/cli.js';
import { ROOT } from '../../helpers/gateway.js';

const SLICE = join(ROOT, 'test/fixtures/traces/azure-llm-2023-conv-head.csv');

/** `node dist/cli/flockserve.js simulate …` as a user runs it (a real child process). */
function flockserve(args: string[]) {
  return execa('node', [join(ROOT, 'dist/cli/flockserve.js'), 'simulate', ...args], { reject: false, cwd: ROOT });
}

describe('flockserve simulate (the CLI, from dist/)', () => {
  it('prints the table, writes the timeline CSV and the SVG chart, with the trace attribution', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'simulate-'));
    const res = await flockserve([
      '--trace',
      SLICE,
      '--time-scale',
      '4',
      '--autoscaler',
      'target-tracking',
      '--max_workers',
      '6',
      '--provision-delay',
      '60',
      '--timeline',
      join(dir, 'out/timeline.csv'),
      '--chart',
      join(dir, 'out/chart.svg'),
    ]);
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/autoscaler +target-tracking \(target 7\/worker, panic window 6 s/);
    expect(res.stdout).toMatch(/requests +1000, completed \d+/);
    expect(res.stdout).toMatch(/queue wait +[\d.]+ +[\d.]+ +[\d.]+/);
    expect(res.stdout).toMatch(/CC-BY 4\.0/);
    const csv = readFileSync(join(dir, 'out/timeline.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('t_s,workers,ready,launching,queue,waiting,queue_mean');
    expect(csv.length).toBeGreaterThan(5);
    for (const line of csv.slice(1)) expect(line.split(',').map(Number).every(Number.isFinite)).toBe(true);
    const svg = readFileSync(join(dir, 'out/chart.svg'), 'utf8');
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg.match(/<polyline /g)).toHaveLength(4);
    expect(svg).toMatch(/CC-BY 4\.0/);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
  });

  it('--start and --duration: the report names the part of the trace replayed and counts its requests', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'simulate-'));
    const out = ['--timeline', join(dir, 't.csv'), '--chart', join(dir, 'c.svg')];
    const res = await flockserve(['--trace', SLICE, '--start', '60', '--duration', '30', ...out]);
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^trace +\S+azure-llm-2023-conv-head\.csv, 30 s from 60 s \((\d+) requests\)/m);
    const part = Number(/, 30 s from 60 s \((\d+) requests\)/.exec(res.stdout)![1]);
    expect(part).toBeGreaterThan(0);
    expect(part).toBeLessThan(1000);
  });

  it('same seed, same numbers (two processes, --json)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'simulate-'));
    const args = (n: number) => [
      '--trace',
      SLICE,
      '--json',
      '--seed',
      '42',
      '--max-workers',
      '5',
      '--timeline',
      join(dir, `t${n}.csv`),
      '--chart',
      join(dir, `c${n}.svg`),
    ];
    const [a, b] = await Promise.all([flockserve(args(1)), flockserve(args(2))]);
    expect(a.exitCode, a.stderr).toBe(0);
    const ja = JSON.parse(a.stdout) as { summary: unknown; seed: number; wallS: number };
    const jb = JSON.parse(b.stdout) as { summary: unknown; wallS: number };
    expect(ja.seed).toBe(42);
    expect(jb.summary).toEqual(ja.summary);
    expect(readFileSync(join(dir, 't2.csv'), 'utf8')).toBe(readFileSync(join(dir, 't1.csv'), 'utf8'));
  });

  it('--workload multi-turn: the table names the workload and reports throughput and the prefix-cache hit rate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'simulate-'));
    const res = await flockserve([
      ...['--workload', 'multi-turn', '--sessions', '8', '--turns', '2-3', '--session-rate', '4'],
      ...['--min_workers', '2', '--max_workers', '2', '--load_balancer', 'prefix-cache'],
      ...['--timeline', join(dir, 't.csv'), '--chart', join(dir, 'c.svg')],
    ]);
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^workload {7}multi-turn \(8 sessions, \d+ turns\)$/m);
    expect(res.stdout).toMatch(/^fleet .*balancer prefix-cache$/m);
    expect(res.stdout).toMatch(/^throughput {5}\d+\.\d\d req\/s, \d+ output tokens\/s$/m);
    // Turns resend the shared system prompt and their history: some of it is found.
    const hit = /^prefix cache {3}(\d+\.\d)% of prompt tokens/m.exec(res.stdout);
    expect(Number(hit?.[1])).toBeGreaterThan(0);
    expect(res.stdout).toMatch(/^requests {7}(\d+), completed \1, failed 0$/m);
  });

  it('a Mooncake trace: --oracle routes by the engines’ caches, --offload_cache_tokens adds a host tier; the report says so (in-process)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'simulate-'));
    const run = async (extra: string[]) => {
      const out: string[] = [];
      const code = await simulateMain(
        [
          ...['--trace', join(ROOT, 'test/fixtures/traces/mooncake-synthetic-head.jsonl'), '--quiet'],
          ...['--min_workers', '4', '--max_workers', '4', '--kv_cache_tokens', '200000'],
          ...['--timeline', join(dir, 't.csv'), '--chart', join(dir, 'c.svg'), ...extra],
        ],
        { out: (t) => out.push(t), err: () => {} },
      );
      expect(code).toBe(0);
      return out.join('');
    };
    const oracle = await run(['--oracle', '--offload_cache_tokens', '1000000', '--max_num_batched_tokens', '0']);
    expect(oracle).toMatch(/^fleet .*balancer oracle \(clairvoyant: the longest cached prefix, load ignored\)$/m);
    expect(oracle).toMatch(/^engines {8}KV cache 200000 tokens, host offload 1000000 tokens, whole-prompt prefill$/m);
    expect(oracle).toMatch(
      /^balance {8}busiest worker \d+\.\d\dx the mean in flight; a worker idle while another queued \d+\.\d% of the time; prefill utilisation \d\.\d\d$/m,
    );
    const hitRate = (report: string): number => Number(/^prefix cache {3}(\d+\.\d)%/m.exec(report)?.[1]);
    // The first 200 requests share prefixes; least-connection finds fewer of them cached.
    const leastConnection = await run(['--load_balancer', 'least-connection']);
    // The engines' default budget: vLLM's OpenAI server's on an A100.
    expect(leastConnection).toMatch(/^engines {8}KV cache 200000 tokens, chunked prefill, 2048 tokens a step$/m);
    expect(hitRate(oracle)).toBeGreaterThan(hitRate(leastConnection));
  });

  it.each([
    [
      ['--workload', 'envelope', '--rates', '/nonexistent/r.csv'],
      /\/nonexistent\/r\.csv: cannot read the rate envelope \(no such file\)/,
    ],
    [['--trace', SLICE, '--time-scale', '0'], /--time-scale: expected a value > 0, got "0"/],
    [
      ['--trace', SLICE, '--autoscaler', 'magic'],
      /--autoscaler: expected one of running-mean, flockserve-classic, target-tracking/,
    ],
    [['--trace', SLICE, '--port', '80'], /--port is a gateway option the simulation does not use/],
    [['--trace', SLICE, '--min_workers', '4', '--max_workers', '2'], /--min_workers 4 is above --max_workers 2/],
    [['--trace', SLICE, '--warp'], /unknown option --warp/],
    [['--trace', SLICE, '--launch-failure-rate', '1.5'], /--launch-failure-rate: expected a value <= 1, got "1\.5"/],
    [['--trace', SLICE, '--preemptions-per-hour', '-1'], /--preemptions-per-hour: expected a value >= 0, got "-1"/],
    [
      ['--trace', SLICE, '--max_num_batched_tokens', '100'],
      /--max_num_batched_tokens \(100\) must be 0 \(no budget\) or a whole number at least max_num_seqs \(256\)/,
    ],
    [['--trace', '/nonexistent/trace.csv'], /\/nonexistent\/trace\.csv: cannot read the trace \(no such file\)/],
    [
      ['--workload', 'bursty', '--burst-size', '1000000000-1000000000'],
      /--burst-size: expected MIN-MAX, whole numbers with 1 <= MIN <= MAX <= 100000, got "1000000000-1000000000"/,
    ],
    [
      ['--trace', SLICE, '--sample-interval', '0.000001'],
      /the run would keep \d+ timeline rows \(one every --sample-interval 0\.000001 s over \d+ s\); at most 5000000: use --sample-interval \d+ or more/,
    ],
  ])('%j → exit 2 and a message that says what is wrong (in-process)', async (args, message) => {
    const err: string[] = [];
    const out: string[] = [];
    expect(await simulateMain(args, { out: (t) => out.push(t), err: (t) => err.push(t) })).toBe(2);
    expect(err.join('')).toMatch(message);
    expect(out).toEqual([]);
  });

  it.each(['simulate', 'plan'] as const)(
    '%s: a chart that cannot be written loses no result: the report first, then the error, exit 1',
    async (cmd) => {
      const dir = mkdtempSync(join(tmpdir(), 'unwritable-'));
      const notADir = join(dir, 'file');
      writeFileSync(notADir, '');
      const out: string[] = [];
      const err: string[] = [];
      const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t) };
      const args = ['--trace', SLICE, '--quiet', '--chart', join(notADir, 'c.svg')];
      const code =
        cmd === 'simulate'
          ? await simulateMain([...args, '--timeline', join(dir, 't.csv')], io)
          : await planMain([...args, '--jobs', '1', '--policies', 'slo', '--max-fixed', '2'], io);
      expect(code).toBe(1);
      expect(out.join('')).toMatch(/worker-h/);
      expect(err.join('')).toMatch(
        new RegExp(`^flockserve ${cmd}: the (timeline or the )?chart could not be written: E`),
      );
      expect(err.join('')).not.toMatch(/\n\s+at /);
    },
  );

  it('plan: a request no engine can hold is named before any run, where every fleet would fail it', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'huge-')), 'huge.csv');
    writeFileSync(
      file,
      'TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6,300,20\n2023-11-16 18:15:47.0,500000,10\n',
    );
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t) };
    const dir = mkdtempSync(join(tmpdir(), 'huge-out-'));
    expect(await planMain(['--trace', file, '--quiet', '--chart', join(dir, 'c.svg'), '--jobs', '1'], io)).toBe(2);
    expect(err.join('')).toBe(
      `flockserve plan: ${file}:3: the request needs 500010 KV cache tokens (prompt 500000 + output 10), more than one engine holds (440000, --kv-cache-tokens): it fails on every fleet, so no fleet size can be planned; leave it out, or raise --kv-cache-tokens\n`,
    );
    expect(out).toEqual([]);
  });

  /** Broken input files → the flags that read them and the message; every one exits 2 from both commands. */
  const BROKEN_FILES: [
    label: string,
    name: string,
    text: string,
    flags: (file: string) => string[],
    message: string,
  ][] = [
    [
      'a Mooncake line that is not JSON',
      'bad.jsonl',
      '{"timestamp": 0, "input_length": 5, "output_length": 2, "hash_ids": [0]}\n{"timestamp": 9, oops\n',
      (f) => ['--trace', f],
      ':2: not JSON (',
    ],
    [
      'a CSV without its GeneratedTokens column',
      'cols.csv',
      'TIMESTAMP,ContextTokens\n2023-11-16 18:15:46.6,374\n',
      (f) => ['--trace', f],
      ':1: expected the header "TIMESTAMP,ContextTokens,GeneratedTokens" or "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type", got "TIMESTAMP,ContextTokens" (no GeneratedTokens column)',
    ],
    [
      'a negative length',
      'neg.csv',
      'TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6,374,44\n2023-11-16 18:15:47.0,-12,3\n',
      (f) => ['--trace', f],
      ':3: expected ContextTokens as a whole number from 0 to 10000000, got "-12"',
    ],
    [
      'two requests ten years apart',
      'decade.csv',
      'TIMESTAMP,ContextTokens,GeneratedTokens\n2013-11-16 18:15:46.6,374,44\n2023-11-16 18:15:47.0,12,3\n',
      (f) => ['--trace', f],
      '',
    ],
    ['an empty file', 'empty.csv', '', (f) => ['--trace', f], ': the trace is empty'],
    [
      'an unsorted Mooncake trace, as the lengths of a generated workload',
      'lengths.jsonl',
      '{"timestamp": 5, "input_length": 5, "output_length": 2, "hash_ids": []}\n{"timestamp": 1, "input_length": 5, "output_length": 2, "hash_ids": []}\n',
      (f) => ['--workload', 'bursty', '--lengths', f],
      ":2: timestamp 1 is earlier than line 1's (5); the trace must be sorted by time",
    ],
    [
      'a rate envelope with a negative rate',
      'rates.csv',
      'window_start_s,rate_rps\n0,2\n600,-1\n',
      (f) => ['--workload', 'envelope', '--rates', f],
      ':3: expected rate_rps as a number >= 0, got "-1"',
    ],
    [
      'a rate envelope without its rate column',
      'norate.csv',
      'window_start_s,requests\n0,2\n',
      (f) => ['--workload', 'envelope', '--rates', f],
      ':1: the header has no rate_rps column',
    ],
  ];

  it.each(BROKEN_FILES.flatMap((b) => (['simulate', 'plan'] as const).map((cmd) => [cmd, ...b] as const)))(
    '%s, %s → exit 2, the file and line named, nothing run',
    async (cmd, _label, name, text, flags, message) => {
      const file = join(mkdtempSync(join(tmpdir(), 'broken-')), name);
      writeFileSync(file, text);
      const out: string[] = [];
      const err: string[] = [];
      const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t) };
      const dir = mkdtempSync(join(tmpdir(), 'broken-out-'));
      const args = [...flags(file), '--quiet', '--chart', join(dir, 'c.svg')];
      const code =
        cmd === 'simulate'
          ? await simulateMain([...args, '--timeline', join(dir, 't.csv')], io)
          : await planMain([...args, '--jobs', '1'], io);
      expect(code).toBe(2);
      const want =
        message === ''
          ? `flockserve ${cmd}: the run would simulate 3.65e+3 days (${file}'s last arrival`
          : `flockserve ${cmd}: ${file}${message}`;
      expect(err.join('').slice(0, want.length)).toBe(want);
      expect(
        err
          .join('')
          .split('\n')
          .filter((l) => l !== ''),
      ).toHaveLength(1);
      expect(out).toEqual([]);
    },
  );

  it('a trace with a bad row is refused, naming the file and the line', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'simulate-')), 'bad.csv');
    writeFileSync(
      path,
      'TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6,374,44\n2023-11-16 18:15:47.0,12x,3\n',
    );
    const res = await flockserve(['--trace', path]);
    expect(res.exitCode).toBe(2);
    expect(res.stderr).toContain(`${path}:3: expected ContextTokens as a whole number from 0 to 10000000, got "12x"`);
  });

  it('with no --trace, from any directory: the shipped Azure conv trace, its attribution, progress lines on stderr', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'simulate-'));
    const res = await execa(
      'node',
      [join(ROOT, 'dist/cli/flockserve.js'), 'simulate', '--time-scale', '8', '--max_workers', '8', '--json'],
      { reject: false, cwd: dir },
    );
    expect(res.exitCode, res.stderr).toBe(0);
    const j = JSON.parse(res.stdout) as { trace: string; attribution: string; summary: { requests: number } };
    expect(j.trace).toBe(join(ROOT, 'examples/traces/azure-llm-2023-conv.csv'));
    expect(j.summary.requests).toBe(19_366);
    expect(j.attribution).toMatch(/AzurePublicDataset.*CC-BY 4\.0/);
    // Not a terminal: plain lines, one per tenth of the run.
    const lines = res.stderr.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(5);
    expect(lines.every((l) => /^simulate: \d+0%, [\d,]+ of [\d,]+ simulated s, [\d,]+ requests sent/.test(l))).toBe(
      true,
    );
    // The run wrote its outputs where it was run.
    expect(readFileSync(join(dir, 'simulation-chart.svg'), 'utf8')).toMatch(/^<svg /);
  });

  it.each([
    [
      'a Mooncake trace',
      ['--trace', join(ROOT, 'test/fixtures/traces/mooncake-synthetic-head.jsonl'), '--load_balancer', 'prefix-cache'],
      /Mooncake.*Apache-2\.0/,
      200,
    ],
    [
      'the envelope',
      [
        '--workload',
        'envelope',
        '--duration',
        '1200',
        '--mean-rate',
        '2',
        '--rates',
        join(ROOT, 'test/fixtures/traces/servegen-m-large-rates-2days.csv'),
      ],
      /ServeGen.*Apache-2\.0.* Trace: Azure/,
      undefined,
    ],
    ['bursts', ['--workload', 'bursty', '--duration', '900', '--quiet'], /Azure/, undefined],
  ])('%s runs from the CLI, with its attributions', async (_label, args, attribution, requests) => {
    const dir = mkdtempSync(join(tmpdir(), 'simulate-'));
    const res = await flockserve([
      ...args,
      '--json',
      '--min_workers',
      '2',
      '--max_workers',
      '4',
      '--timeline',
      join(dir, 't.csv'),
      '--chart',
      join(dir, 'c.svg'),
    ]);
    expect(res.exitCode, res.stderr).toBe(0);
    const j = JSON.parse(res.stdout) as {
      workload: string;
      attribution: string;
      summary: { requests: number; unfinished: number };
    };
    expect(j.attribution).toMatch(attribution);
    if (requests !== undefined) expect(j.summary.requests).toBe(requests);
    else expect(j.summary.requests).toBeGreaterThan(100);
    if (args.includes('--quiet')) expect(res.stderr).toBe('');
  });

  it('--help lists the simulation flags and the gateway options it uses, from the options table', async () => {
    const res = await flockserve(['--help']);
    expect(res.exitCode).toBe(0);
    expect(res.stdout).toMatch(/--provision-delay <number> \(default: 300\)/);
    expect(res.stdout).toMatch(/--target_queue_per_worker <number> \(default: 7\)/);
    expect(res.stdout).toMatch(/--autoscaler <string> \(default: slo\)/);
  });
});
