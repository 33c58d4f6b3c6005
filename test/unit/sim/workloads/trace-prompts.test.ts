import { describe, expect, it } from 'vitest';
import { promptBlockHashes } from '../../../../src/core/hashing.js';
import { readTrace } from '../../../../src/sim/cluster/trace.js';
import {
  MOONCAKE_BLOCK_CHARS,
  blockText,
  mooncakePrompt,
  tracePrompt,
  uniquePrompt,
} from '../../../../src/sim/workloads/trace-prompts.js';

/** Leading engine block hashes two prompts share. */
function sharedBlocks(a: string, b: string): number {
  const ha = promptBlockHashes(a);
  const hb = promptBlockHashes(b);
  let n = 0;
  while (n < ha.length && n < hb.length && ha[n] === hb[n]) n++;
  return n;
}

const ENGINE_BLOCKS_PER_MOONCAKE_BLOCK = MOONCAKE_BLOCK_CHARS / 64;

describe('Mooncake prompt synthesis', () => {
  it('is 4 characters per token, the last block cut to the input length’s remainder', () => {
    const p = mooncakePrompt([7, 8], 700, 1);
    expect(p).toHaveLength(2800);
    expect(p.slice(0, 2048)).toBe(blockText(7));
    expect(p.slice(2048)).toBe(blockText(8).slice(0, 752));
  });

  it('equal ids give equal text, hence equal engine block hashes: 32 per shared 512-token block', () => {
    const a = mooncakePrompt([1, 2, 3], 1536, 10);
    const b = mooncakePrompt([1, 2, 9], 1536, 11);
    expect(ENGINE_BLOCKS_PER_MOONCAKE_BLOCK).toBe(32);
    expect(sharedBlocks(a, b)).toBe(2 * 32);
    expect(sharedBlocks(a, mooncakePrompt([1, 2, 3], 1536, 99))).toBe(3 * 32);
    // A different first id: nothing shared, from the first engine block on.
    expect(sharedBlocks(a, mooncakePrompt([4, 2, 3], 1536, 10))).toBe(0);
  });

  it('different ids differ from their first characters, even in a short trailing block', () => {
    const ids = Array.from({ length: 2000 }, (_, i) => i);
    const heads = new Set(ids.map((id) => blockText(id).slice(0, 64)));
    expect(heads.size).toBe(ids.length);
    expect(mooncakePrompt([5], 10, 1)).not.toBe(mooncakePrompt([6], 10, 1));
  });

  it('is deterministic, and pads with text unique to the line when the ids cover too little', () => {
    expect(mooncakePrompt([3, 4], 900, 1)).toBe(mooncakePrompt([3, 4], 900, 1));
    const short = mooncakePrompt([3], 600, 42);
    expect(short).toHaveLength(2400);
    expect(short.slice(0, 2048)).toBe(blockText(3));
    expect(short.slice(2048)).not.toBe(mooncakePrompt([3], 600, 43).slice(2048));
    expect(mooncakePrompt([], 5, 1)).toHaveLength(20);
  });

  it('on the committed Mooncake slice: requests the trace says share blocks share engine block hashes', async () => {
    const t = await readTrace('test/fixtures/traces/mooncake-synthetic-head.jsonl');
    let pairs = 0;
    // Each request against the last earlier one with the same first block (a conversation's turns).
    const lastByFirst = new Map<number, (typeof t)[number]>();
    for (const b of t) {
      const first = b.hashIds![0];
      const a = first === undefined ? undefined : lastByFirst.get(first);
      if (first !== undefined) lastByFirst.set(first, b);
      if (!a) continue;
      let k = 0;
      while (k < a.hashIds!.length && k < b.hashIds!.length && a.hashIds![k] === b.hashIds![k]) k++;
      const fullA = Math.floor(a.promptTokens / 512);
      const fullB = Math.floor(b.promptTokens / 512);
      const want = Math.min(k, fullA, fullB) * 32;
      const got = sharedBlocks(tracePrompt(a), tracePrompt(b));
      // Whole shared blocks are all shared; a shared partial block adds at most its own engine blocks.
      expect(got).toBeGreaterThanOrEqual(want);
      expect(got).toBeLessThanOrEqual(k * 32);
      if (k > 0) pairs++;
    }
    expect(pairs).toBeGreaterThanOrEqual(10);
  });

  it('a trace request with lengths only gets unique text of its length', () => {
    const a = tracePrompt({ arrivalMs: 0, promptTokens: 100, outputTokens: 1, line: 2 });
    expect(a).toBe(uniquePrompt(2, 100));
    expect(a).toHaveLength(400);
    expect(sharedBlocks(a, tracePrompt({ arrivalMs: 0, promptTokens: 100, outputTokens: 1, line: 3 }))).toBe(0);
  });
});
