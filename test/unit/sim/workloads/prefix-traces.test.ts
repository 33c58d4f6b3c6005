import { describe, expect, it } from 'vitest';
import { MOONCAKE_BLOCK_TOKENS, parseTrace, type TraceRequest } from '../../../../src/sim/cluster/trace.js';
import {
  CHAT_DEFAULTS,
  HOT_PREFIX_DEFAULTS,
  RAG_DEFAULTS,
  chatTrace,
  hotPrefixTrace,
  ragTrace,
  toMooncakeLines,
} from '../../../../src/sim/workloads/prefix-traces.js';

const small = {
  hot: (seed: number) => hotPrefixTrace({ ...HOT_PREFIX_DEFAULTS, requests: 500, seed }),
  chat: (seed: number) => chatTrace({ ...CHAT_DEFAULTS, sessions: 60, seed }),
  rag: (seed: number) => ragTrace({ ...RAG_DEFAULTS, requests: 500, seed }),
};

/** Leading ids two requests share. */
const shared = (a: TraceRequest, b: TraceRequest): number => {
  let n = 0;
  while (n < a.hashIds!.length && a.hashIds![n] === b.hashIds![n]) n++;
  return n;
};

describe.each(Object.entries(small))('%s trace', (_name, make) => {
  it('is a valid Mooncake trace: sorted arrivals from 0, one id per started 512-token block, lines numbered', () => {
    const t = make(1);
    expect(t[0]!.arrivalMs).toBe(0);
    t.forEach((r, i) => {
      expect(r.line).toBe(i + 1);
      if (i > 0) expect(r.arrivalMs).toBeGreaterThanOrEqual(t[i - 1]!.arrivalMs);
      expect(r.hashIds).toHaveLength(Math.ceil(r.promptTokens / MOONCAKE_BLOCK_TOKENS));
    });
  });

  it('the same seed gives the same trace, another seed another one; it round-trips through the reader', () => {
    expect(make(2)).toEqual(make(2));
    expect(make(3)).not.toEqual(make(2));
    const t = make(2);
    const back = parseTrace([...toMooncakeLines(t)].join('\n'), 'generated.jsonl');
    expect(back.map((r) => [r.promptTokens, r.outputTokens, r.hashIds])).toEqual(
      t.map((r) => [r.promptTokens, r.outputTokens, r.hashIds]),
    );
  });
});

describe('what each trace shares', () => {
  it('hot prefix: ~80% of requests start with the same 4 blocks, the rest share nothing', () => {
    const t = small.hot(1);
    const hot = t.filter((r) => r.hashIds!.length > 4 && t.some((o) => o !== r && shared(o, r) >= 4));
    expect(hot.length / t.length).toBeGreaterThan(0.75);
    expect(hot.length / t.length).toBeLessThan(0.85);
    const others = t.filter((r) => !hot.includes(r));
    for (const r of others) expect(t.every((o) => o === r || shared(o, r) === 0)).toBe(true);
  });

  it('chat: every session starts with the system prompt; turn k+1 holds all of turn k’s whole blocks', () => {
    const t = chatTrace({ ...CHAT_DEFAULTS, sessions: 30, systemBlocks: 2, seed: 4 });
    for (const r of t) expect(r.hashIds!.slice(0, 2)).toEqual(t[0]!.hashIds!.slice(0, 2));
    // Group turns by their first history block; within a session each turn extends the previous one's whole blocks.
    let extended = 0;
    for (const r of t) {
      const prev = t.filter(
        (o) => o.arrivalMs < r.arrivalMs && o.hashIds![2] === r.hashIds![2] && o.hashIds!.length > 2,
      );
      const last = prev.at(-1);
      if (!last) continue;
      const whole = Math.floor(last.promptTokens / MOONCAKE_BLOCK_TOKENS);
      expect(shared(last, r)).toBeGreaterThanOrEqual(whole);
      extended++;
    }
    expect(extended).toBeGreaterThan(30);
  });

  it('RAG: documents are Zipf-popular; requests about one document share system prompt + document', () => {
    const t = ragTrace({ ...RAG_DEFAULTS, requests: 2000, seed: 5 });
    const byDoc = new Map<number, TraceRequest[]>();
    for (const r of t) byDoc.set(r.hashIds![1]!, [...(byDoc.get(r.hashIds![1]!) ?? []), r]);
    const counts = [...byDoc.values()].map((rs) => rs.length).sort((a, b) => b - a);
    expect(counts[0]!).toBeGreaterThan(10 * counts[Math.floor(counts.length / 2)]!);
    for (const rs of byDoc.values()) {
      const docBlocks = Math.floor(rs[0]!.promptTokens / MOONCAKE_BLOCK_TOKENS);
      for (const r of rs.slice(1)) expect(shared(rs[0]!, r)).toBe(docBlocks);
    }
  });
});
