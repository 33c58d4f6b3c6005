import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/core/clock.js';
import { promptBlockHashes } from '../../../src/core/hashing.js';
import { DEFAULT_PROFILE, EngineModel, PREFIX_BLOCK_TOKENS } from '../../../src/sim/engine-model.js';
import type { EngineProfile, FinishReason } from '../../../src/sim/engine-model.js';

/** Round numbers so the expected times below can be read off by hand. */
const PROFILE: EngineProfile = {
  maxNumSeqs: 2,
  prefillTokensPerSecond: 1000, // 1 prompt token = 1 ms
  decodeStepMs: 10,
  decodeStepMsPerSeq: 0,
  kvCacheTokens: 1000,
};

interface Trace {
  tokens: number[];
  done?: { at: number; reason: FinishReason };
  error?: string;
}

function submit(
  model: EngineModel,
  clock: VirtualClock,
  promptTokens: number,
  maxTokens: number,
  outputTokens?: number,
): Trace & { cancel(): void } {
  const trace: Trace = { tokens: [] };
  const handle = model.submit({
    promptTokens,
    maxTokens,
    outputTokens,
    onToken: (i) => {
      expect(i).toBe(trace.tokens.length); // indices arrive in order
      trace.tokens.push(clock.now());
    },
    onDone: (reason) => (trace.done = { at: clock.now(), reason }),
    onError: (e) => (trace.error = e.message),
  });
  return Object.assign(trace, { cancel: () => handle.cancel() });
}

describe('EngineModel timeline', () => {
  it('one request: first token after its prefill step, then one token per decode step', () => {
    const clock = new VirtualClock();
    const model = new EngineModel(PROFILE, clock);
    const r = submit(model, clock, 100, 3);
    clock.advance(1000);
    // step 1 = 10 ms decode + 100 ms prefill = 110; then 10 ms steps.
    expect(r.tokens).toEqual([110, 120, 130]);
    expect(r.done).toEqual({ at: 130, reason: 'length' });
    expect(model.stats()).toMatchObject({ running: 0, waiting: 0, completed: 1, aborted: 0, received: 1 });
  });

  it('requests submitted at the same instant share a step (one prefill of both prompts)', () => {
    const clock = new VirtualClock();
    const model = new EngineModel(PROFILE, clock);
    const a = submit(model, clock, 100, 2);
    const b = submit(model, clock, 50, 2);
    clock.advance(1000);
    // step 1 = 10 + (100 + 50) = 160 ms for both.
    expect(a.tokens).toEqual([160, 170]);
    expect(b.tokens).toEqual([160, 170]);
  });

  it('a request arriving mid-step joins the next step and its prefill slows the running one', () => {
    const clock = new VirtualClock();
    const model = new EngineModel(PROFILE, clock);
    const a = submit(model, clock, 10, 4); // step 1: 0 → 20
    clock.advance(5);
    const b = submit(model, clock, 30, 2); // waits for step 2: 20 → 20 + 10 + 30 = 60
    clock.advance(1000);
    expect(a.tokens).toEqual([20, 60, 70, 80]);
    expect(b.tokens).toEqual([60, 70]);
  });

  it('beyond maxNumSeqs requests wait in FIFO order and are admitted as slots free', () => {
    const clock = new VirtualClock();
    const model = new EngineModel(PROFILE, clock);
    const r = [
      submit(model, clock, 10, 2),
      submit(model, clock, 10, 2),
      submit(model, clock, 10, 1),
      submit(model, clock, 10, 1),
    ];
    clock.advance(0);
    expect(model.stats()).toMatchObject({ running: 2, waiting: 2 });
    clock.advance(1000);
    // step 1: r0,r1 (10 + 20 = 30); step 2: decode (40) and r0, r1 finish;
    // step 3: r2,r3 admitted (40 + 10 + 20 = 70).
    expect(r.map((t) => t.tokens)).toEqual([[30, 40], [30, 40], [70], [70]]);
    expect(model.stats()).toMatchObject({ running: 0, waiting: 0, completed: 4 });
  });

  it('decode step time grows with the batch: base + perSeq × batch', () => {
    const clock = new VirtualClock();
    const model = new EngineModel({ ...PROFILE, maxNumSeqs: 8, decodeStepMsPerSeq: 1 }, clock);
    const r = Array.from({ length: 4 }, () => submit(model, clock, 0, 2));
    clock.advance(1000);
    // 10 + 1 × 4 = 14 ms per step.
    expect(r[0]!.tokens).toEqual([14, 28]);
  });

  it('cancel removes a running or a waiting sequence and counts it aborted', () => {
    const clock = new VirtualClock();
    const model = new EngineModel(PROFILE, clock);
    const a = submit(model, clock, 10, 5);
    const b = submit(model, clock, 10, 5);
    const waiting = submit(model, clock, 10, 5);
    clock.advance(35); // step 1 ends at 30
    expect(a.tokens).toEqual([30]);
    a.cancel();
    waiting.cancel();
    a.cancel(); // idempotent
    expect(model.stats()).toMatchObject({ running: 1, waiting: 0, aborted: 2 });
    clock.advance(1000);
    expect(a.tokens).toEqual([30]);
    expect(a.done).toBeUndefined();
    expect(waiting.tokens).toEqual([]);
    expect(b.done?.reason).toBe('length');
    expect(model.stats()).toMatchObject({ completed: 1, aborted: 2, received: 3, kvCacheUsage: 0 });
  });

  it('admits only what fits in the KV cache (prompt + max tokens) and reports usage', () => {
    const clock = new VirtualClock();
    const model = new EngineModel({ ...PROFILE, maxNumSeqs: 10 }, clock);
    const a = submit(model, clock, 500, 100); // 600 of 1000
    const b = submit(model, clock, 300, 200); // 500: does not fit beside a
    clock.advance(0);
    expect(model.stats()).toMatchObject({ running: 1, waiting: 1, kvCacheUsage: 0.6 });
    clock.advance(10_000);
    expect(a.done).toBeDefined();
    expect(b.tokens[0]).toBeGreaterThan(a.done!.at); // b admitted only after a freed its blocks
    expect(model.stats().kvCacheUsage).toBe(0);
  });

  it('rejects a request that can never fit, asynchronously, through onError', () => {
    const clock = new VirtualClock();
    const model = new EngineModel(PROFILE, clock);
    const r = submit(model, clock, 900, 200);
    expect(r.error).toBeUndefined(); // never inside submit
    clock.advance(0);
    expect(r.error).toMatch(/1100 KV cache tokens/);
    expect(model.stats()).toMatchObject({ rejected: 1, running: 0, waiting: 0 });
  });

  it.each([
    { outputTokens: undefined, tokens: 4, reason: 'length' },
    { outputTokens: 2, tokens: 2, reason: 'stop' },
    { outputTokens: 9, tokens: 4, reason: 'length' },
  ])('outputTokens $outputTokens of maxTokens 4 → $tokens tokens, $reason', ({ outputTokens, tokens, reason }) => {
    const clock = new VirtualClock();
    const model = new EngineModel(PROFILE, clock);
    const r = submit(model, clock, 1, 4, outputTokens);
    clock.advance(1000);
    expect(r.tokens).toHaveLength(tokens);
    expect(r.done?.reason).toBe(reason);
  });

  it('uses one timer for the whole batch, whatever the number of sequences', () => {
    const clock = new VirtualClock();
    const model = new EngineModel({ ...DEFAULT_PROFILE, maxNumBatchedTokens: 0 }, clock);
    for (let i = 0; i < 200; i++) submit(model, clock, 100, 50);
    clock.advance(0);
    expect(model.stats().running).toBe(200);
    expect(clock.pendingTimers).toBe(1);
    clock.advance(60_000);
    expect(clock.pendingTimers).toBe(0); // idle engine holds no timer
    expect(model.stats()).toMatchObject({ completed: 200, generationTokens: 200 * 50, promptTokens: 200 * 100 });
  });

  it('a callback that submits during a step end joins the next step', () => {
    const clock = new VirtualClock();
    const model = new EngineModel(PROFILE, clock);
    let follow: Trace | undefined;
    model.submit({
      promptTokens: 10,
      maxTokens: 1,
      onToken: () => {},
      onDone: () => (follow = submit(model, clock, 10, 1)),
    });
    clock.advance(1000);
    // first: 0 → 20; follow-up admitted at 20: 20 + 10 + 10 = 40.
    expect(follow?.tokens).toEqual([40]);
  });
});

describe('EngineModel with a token budget (chunked prefill)', () => {
  it("prefills prompts in chunks of the budget, FCFS: the worked example of 2 × 3000 tokens at the default 2048 (vLLM's on an A100)", () => {
    const clock = new VirtualClock();
    const model = new EngineModel(DEFAULT_PROFILE, clock);
    const a = submit(model, clock, 3000, 2);
    const b = submit(model, clock, 3000, 1);
    clock.advance(10_000);
    // step 1: A 2048 tokens, batch 1: 12 + 0.05 + 204.8 = 216.85
    // step 2: A 952 (done), B 1096, batch 2: 12 + 0.1 + 204.8 = 216.9 → A's first token at 433.75
    // step 3: A decodes, B 1904 (done): 12 + 0.1 + 190.4 = 202.5 → A's second and B's first at 636.25
    expect(a.tokens.map((t) => +t.toFixed(6))).toEqual([433.75, 636.25]);
    expect(b.tokens.map((t) => +t.toFixed(6))).toEqual([636.25]);
    expect(model.stats().prefillMs).toBeCloseTo(600, 9);
  });

  it('without a budget both wait for both prefills (the same two requests)', () => {
    const clock = new VirtualClock();
    const model = new EngineModel({ ...DEFAULT_PROFILE, maxNumBatchedTokens: 0 }, clock);
    const a = submit(model, clock, 3000, 1);
    const b = submit(model, clock, 3000, 1);
    clock.advance(10_000);
    expect(a.tokens[0]).toBeCloseTo(612.1, 9); // 12 + 0.1 + 600
    expect(b.tokens[0]).toBeCloseTo(612.1, 9);
  });

  /** A short request decoding, and a 300-token prompt arriving at 25 ms, with and without a budget of 100. */
  const stall: [string, number, number[], number[]][] = [
    // A: 0 → 20 (prefill 10), 20 → 30; B admitted at 30 with 99 tokens of budget left by A's decode:
    // 30 → 139, → 248, → 357 (99 each), → 370 (the last 3): A keeps a token a step.
    ['with a budget decodes keep flowing during a long prefill', 100, [20, 30, 139, 248, 357, 370], [370]],
    // B's whole prefill in one step, 30 → 30 + 10 + 300 = 340: A's tokens stall for it, B's first comes sooner.
    ['without one a long prefill stalls every running decode', 0, [20, 30, 340, 350, 360, 370], [340]],
  ];
  it.each(stall)('%s', (_label, maxNumBatchedTokens, aTokens, bTokens) => {
    const clock = new VirtualClock();
    const model = new EngineModel({ ...PROFILE, maxNumBatchedTokens }, clock);
    const a = submit(model, clock, 10, 6);
    clock.advance(25);
    const b = submit(model, clock, 300, 1);
    clock.advance(1000);
    expect(a.tokens).toEqual(aTokens);
    expect(b.tokens).toEqual(bTokens);
  });

  it('a budget at least every prompt gives the same timings as none when requests come one at a time', () => {
    const timings = (maxNumBatchedTokens: number): number[][] => {
      const clock = new VirtualClock();
      const model = new EngineModel({ ...DEFAULT_PROFILE, maxNumBatchedTokens }, clock);
      const out: number[][] = [];
      for (const [prompt, output] of [
        [3000, 4],
        [1, 2],
        [2048, 3],
        [700, 1],
      ] as const) {
        out.push(submit(model, clock, prompt, output).tokens);
        clock.advance(5000);
      }
      return out;
    };
    const none = timings(0);
    expect(none[0]![0]).toBeCloseTo(312.05, 9); // 12 + 0.05 + 300
    expect(timings(3000)).toEqual(none);
    expect(timings(1_000_000)).toEqual(none);
  });

  it('cached prefix blocks skip their tokens; the rest is chunked', () => {
    const clock = new VirtualClock();
    const model = new EngineModel({ ...PROFILE, maxNumSeqs: 8, maxNumBatchedTokens: 20 }, clock);
    const ttft = (blocks: number[]): number => {
      const start = clock.now();
      let at = -1;
      model.submit({
        promptTokens: 100,
        maxTokens: 1,
        promptBlocks: blocks,
        onToken: () => (at = clock.now() - start),
        onDone: () => {},
      });
      clock.advance(10_000);
      return at;
    };
    // 100 tokens in chunks of 20: 5 steps of 10 + 20 ms.
    expect(ttft([1, 2, 3, 9])).toBe(5 * 30);
    // 3 blocks (48 tokens) cached: 52 computed in chunks of 20, 20, 12.
    expect(ttft([1, 2, 3, 4])).toBe(3 * 10 + 52);
  });

  it('refuses a budget below maxNumSeqs, as vLLM does', () => {
    expect(() => new EngineModel({ ...PROFILE, maxNumBatchedTokens: 1 }, new VirtualClock())).toThrow(RangeError);
    expect(() => new EngineModel({ ...PROFILE, maxNumBatchedTokens: 2 }, new VirtualClock())).not.toThrow();
  });
});

describe('EngineModel prefix cache', () => {
  /** 1 prompt token = 1 ms of prefill; the cache holds 4 blocks of 16 tokens. */
  const CACHED: EngineProfile = { ...PROFILE, maxNumSeqs: 8, prefixCacheTokens: 4 * PREFIX_BLOCK_TOKENS };

  function firstToken(model: EngineModel, clock: VirtualClock, promptTokens: number, promptBlocks?: number[]) {
    const start = clock.now();
    let at = -1;
    model.submit({
      promptTokens,
      maxTokens: 1,
      promptBlocks,
      onToken: () => (at = clock.now() - start),
      onDone: () => {},
    });
    clock.advance(10_000);
    return at;
  }

  /** [label, blocks of the earlier prompt, blocks of the next, TTFT of the next (10 ms step + uncached tokens)] */
  const table: [string, number[] | undefined, number[] | undefined, number][] = [
    ['no earlier prompt: the whole prefill', undefined, [1, 2, 3, 4, 5], 10 + 100],
    ['a shared leading run of 3 blocks skips 48 tokens', [1, 2, 3, 9], [1, 2, 3, 4, 5], 10 + 100 - 48],
    ['only the leading run counts (block 1 differs)', [1, 2, 3], [7, 2, 3], 10 + 100],
    [
      '6 blocks seen, 4 kept: the root end of the prefix survives',
      [1, 2, 3, 4, 5, 6],
      [1, 2, 3, 4, 5, 6],
      10 + 100 - 64,
    ],
    ['without block hashes no lookup happens', [1, 2, 3], undefined, 10 + 100],
  ];
  it.each(table)('%s', (_label, earlier, next, ttft) => {
    const clock = new VirtualClock();
    const model = new EngineModel(CACHED, clock);
    if (earlier) firstToken(model, clock, 100, earlier);
    expect(firstToken(model, clock, 100, next)).toBe(ttft);
  });

  it('counts queried and hit tokens as vLLM does, never the whole prompt', () => {
    const clock = new VirtualClock();
    const model = new EngineModel(CACHED, clock);
    firstToken(model, clock, 40, [1, 2]); // 32 tokens in 2 blocks
    firstToken(model, clock, 32, [1, 2]); // all 32 cached, but one token is always computed
    expect(model.stats()).toMatchObject({ prefixCacheQueries: 72, prefixCacheHits: 31 });
  });

  it('evicts the least recently used blocks, round after round (a touched block moves to the back)', () => {
    const clock = new VirtualClock();
    const model = new EngineModel(CACHED, clock);
    const hits = (blocks: number[]): number => {
      const before = model.stats().prefixCacheHits;
      firstToken(model, clock, 100, blocks);
      return (model.stats().prefixCacheHits - before) / PREFIX_BLOCK_TOKENS;
    };
    for (let round = 0; round < 5; round++) {
      const [a, b, c] = [round * 100 + 1, round * 100 + 2, round * 100 + 3];
      hits([a, a + 10]);
      hits([b, b + 10]); // the cache is full: a, a+10, b, b+10 (plus leftovers of earlier rounds evicted)
      expect(hits([a, a + 10]), `round ${round}`).toBe(2); // touched: now the most recent
      hits([c, c + 10]); // evicts b, b+10, the least recently used
      expect(hits([b, b + 10]), `round ${round}`).toBe(0);
      expect(hits([b, b + 10]), `round ${round}`).toBe(2);
    }
  });

  it('running requests share their common blocks: one copy in the KV cache', () => {
    const clock = new VirtualClock();
    const model = new EngineModel({ ...PROFILE, maxNumSeqs: 8 }, clock); // 1000 KV tokens
    const blocks = Array.from({ length: 40 }, (_, i) => i + 1); // 640 tokens
    const run = () =>
      model.submit({ promptTokens: 640, maxTokens: 100, promptBlocks: blocks, onToken() {}, onDone() {} });
    run();
    run(); // 740 more without sharing (1480 > 1000); 100 of its own with it
    clock.advance(0);
    expect(model.stats()).toMatchObject({ running: 2, waiting: 0, kvCacheUsage: 0.84 });
  });

  /** [label, KV tokens, prefix cache tokens, blocks of r1 and r2 (20 each, run one after the other), r1's blocks hit again] */
  const bounds: [string, number, number | undefined, number][] = [
    // While r2 runs it holds 20 blocks and 1 token of output room: 9 of r1's 20 blocks fit beside it.
    ['the KV cache bounds the prefix cache (40 blocks seen, room for 30)', 30 * PREFIX_BLOCK_TOKENS, undefined, 9],
    ['prefixCacheTokens bounds it below that', 1000, 25 * PREFIX_BLOCK_TOKENS, 5],
    ['both fit', 1000, undefined, 20],
  ];
  it.each(bounds)('%s', (_label, kvCacheTokens, prefixCacheTokens, hitBlocks) => {
    const clock = new VirtualClock();
    const model = new EngineModel({ ...PROFILE, kvCacheTokens, prefixCacheTokens }, clock);
    const r1 = Array.from({ length: 20 }, (_, i) => i + 1);
    const r2 = Array.from({ length: 20 }, (_, i) => i + 101);
    const first = (blocks: number[]) => {
      model.submit({ promptTokens: 320, maxTokens: 1, promptBlocks: blocks, onToken() {}, onDone() {} });
      clock.advance(10_000);
    };
    first(r1);
    first(r2);
    expect(model.cachedPrefixBlocks(r1)).toBe(hitBlocks); // r1's root end survives
    expect(model.cachedPrefixBlocks(r2)).toBe(20);
  });

  /**
   * KV offload: [label, host tier tokens, TTFT of r1's second run]. KV 480 tokens (30 blocks);
   * r1 (20 blocks + 10 tokens) then r2 (20 other blocks): r2 running leaves room for 9 of r1's
   * blocks on the GPU, the deepest 11 go to the host tier (or away). Loading from the host runs
   * at 16 tokens/ms, computing at 1 token/ms.
   */
  const offload: [string, number, number][] = [
    ['no host tier: 9 blocks cached, 186 tokens computed', 0, 10 + 186],
    ['host tier: all 20 hit, 11 loaded back (11 ms), 10 tokens computed', 1000, 10 + 10 + 11],
    [
      'a host tier of 5 blocks keeps the 5 it got last: 14 hit, 5 loaded, 106 computed',
      5 * PREFIX_BLOCK_TOKENS,
      10 + 106 + 5,
    ],
  ];
  it.each(offload)('%s', (_label, offloadCacheTokens, ttft) => {
    const clock = new VirtualClock();
    const model = new EngineModel(
      { ...PROFILE, kvCacheTokens: 30 * PREFIX_BLOCK_TOKENS, offloadCacheTokens, offloadTokensPerSecond: 16_000 },
      clock,
    );
    const r1 = Array.from({ length: 20 }, (_, i) => i + 1);
    const r2 = Array.from({ length: 20 }, (_, i) => i + 101);
    const run = (blocks: number[]) => {
      const start = clock.now();
      let at = -1;
      model.submit({
        promptTokens: 330,
        maxTokens: 1,
        promptBlocks: blocks,
        onToken: () => (at = clock.now() - start),
        onDone() {},
      });
      clock.advance(10_000);
      return at;
    };
    run(r1);
    run(r2);
    expect(run(r1)).toBe(ttft);
    expect(model.stats().offloadCacheHits).toBe(offloadCacheTokens === 0 ? 0 : ttft === 31 ? 176 : 80);
  });

  it('a request that needs room evicts free cached blocks, least recently released first', () => {
    const clock = new VirtualClock();
    const model = new EngineModel({ ...PROFILE, maxNumSeqs: 8 }, clock); // 1000 KV tokens = 62 blocks
    const old = Array.from({ length: 40 }, (_, i) => i + 1);
    model.submit({ promptTokens: 640, maxTokens: 1, promptBlocks: old, onToken() {}, onDone() {} });
    clock.advance(10_000);
    expect(model.cachedPrefixBlocks(old)).toBe(40);
    // 500 private tokens (no blocks) leave room for 31 blocks: 9 of the old prompt's deepest go.
    const handle = model.submit({ promptTokens: 400, maxTokens: 100, onToken() {}, onDone() {} });
    clock.advance(0);
    expect(model.stats().kvCacheUsage).toBe(0.5);
    expect(model.cachedPrefixBlocks(old)).toBe(31);
    handle.cancel();
  });

  it('prefixCacheTokens 0 turns it off', () => {
    const clock = new VirtualClock();
    const model = new EngineModel({ ...CACHED, prefixCacheTokens: 0 }, clock);
    firstToken(model, clock, 100, [1, 2, 3]);
    expect(firstToken(model, clock, 100, [1, 2, 3])).toBe(110);
  });

  it('cuts text into the same blocks as the balancer (shared hashing)', () => {
    const clock = new VirtualClock();
    const model = new EngineModel(CACHED, clock);
    const text = 'a'.repeat(64 * 3 + 10); // 3 whole blocks
    firstToken(model, clock, 51, promptBlockHashes(text));
    expect(firstToken(model, clock, 51, promptBlockHashes(text + ' more'))).toBe(10 + 51 - 48);
  });
});

describe('EngineModel with firstTokenOnly', () => {
  /**
   * The same requests into an engine that calls onToken per token and one that calls it for the
   * first only: every first token and every end at the same time and in the same order, with
   * cancellations, submits from inside callbacks, a full batch and outputs of 0 and 1 tokens.
   */
  function run(
    firstTokenOnly: boolean,
    maxNumBatchedTokens?: number,
  ): { events: string[]; stats: ReturnType<EngineModel['stats']> } {
    const clock = new VirtualClock();
    const model = new EngineModel({ ...PROFILE, maxNumSeqs: 3, decodeStepMsPerSeq: 0.5, maxNumBatchedTokens }, clock, {
      firstTokenOnly,
    });
    const events: string[] = [];
    const handles = new Map<string, { cancel(): void }>();
    const send = (name: string, prompt: number, output: number, then?: () => void): void => {
      handles.set(
        name,
        model.submit({
          promptTokens: prompt,
          maxTokens: output + 1,
          outputTokens: output,
          onToken: (i) => {
            if (i === 0) events.push(`${clock.now()} ${name} first`);
          },
          onDone: (reason) => {
            events.push(`${clock.now()} ${name} done ${reason}`);
            then?.();
          },
        }),
      );
    };
    // name, at, prompt, output
    const table: [string, number, number, number][] = [
      ['a', 0, 40, 5],
      ['b', 0, 10, 1],
      ['c', 0, 20, 0],
      ['d', 3, 30, 12],
      ['e', 25, 15, 4],
      ['f', 25, 15, 9],
      ['g', 60, 200, 3],
      ['h', 61, 5, 30],
    ];
    for (const [name, at, prompt, output] of table)
      clock.setTimer(at, () => send(name, prompt, output, name === 'e' ? () => send('e2', 8, 2) : undefined));
    clock.setTimer(430, () => handles.get('h')!.cancel()); // running
    clock.setTimer(70, () => handles.get('f')!.cancel()); // running or waiting
    clock.advance(5000);
    return { events, stats: model.stats() };
  }

  it('calls back at the same times in the same order, and counts the same', () => {
    const every = run(false);
    const first = run(true);
    expect(first.events).toEqual(every.events);
    expect(first.events).toHaveLength(14); // every first token and end, but f's (cancelled waiting) and h's end (cancelled running)
    expect(first.stats).toEqual(every.stats);
    expect(first.stats).toMatchObject({ completed: 7, aborted: 2, running: 0, waiting: 0 });
  });

  it('the same with a token budget: chunks, a part-prefilled request cancelled', () => {
    const every = run(false, 25);
    const first = run(true, 25);
    expect(first.events).toEqual(every.events);
    expect(first.stats).toEqual(every.stats);
    expect(first.stats).toMatchObject({ completed: 7, aborted: 2, running: 0, waiting: 0 });
    // The budget moved the timings: this is not the run without one.
    expect(first.events).not.toEqual(run(true).events);
  });
});
