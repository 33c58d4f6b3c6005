import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { chatMessages, multiTurnSessions } from '../../../src/sim/workloads/multi-turn.js';
import { simStats, startGateway, type TestGateway } from '../../helpers/gateway.js';

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** Which worker each request tagged "[session N turn T]" reached, from the simulators' records. */
async function placements(gw: TestGateway): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const w of gw.gw.workers()) {
    for (const r of (await simStats(w.url!)).lastRequests) {
      const tag = JSON.stringify(r.body).match(/\[session (\d+) turn/)?.[1];
      if (tag === undefined) continue;
      out.set(tag, (out.get(tag) ?? new Set()).add(w.name));
    }
  }
  return out;
}

describe('LLM-aware balancing through the gateway (local provisioner, 2 simulator workers, openai client)', () => {
  it('prefix-cache keeps each conversation on one worker, and the engines serve the history from cache', async () => {
    t = await startGateway({ loadBalancer: 'prefix-cache', seed: 3 });
    const openai = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const sessions = multiTurnSessions({
      seed: 2,
      sessions: 4,
      turns: [4, 4],
      systemPromptTokens: 200,
      replyTokens: [3, 3],
    });
    await Promise.all(
      sessions.map(async (s) => {
        const replies: string[] = [];
        for (let turn = 0; turn < s.turns.length; turn++) {
          const res = await openai.chat.completions.create({
            model: 'sim',
            messages: chatMessages(s, turn, replies),
            max_tokens: s.turns[turn]!.maxTokens,
          });
          replies.push(res.choices[0]!.message.content ?? '');
        }
      }),
    );
    const placed = await placements(t);
    expect([...placed.keys()].sort()).toEqual(['0', '1', '2', '3']);
    for (const workers of placed.values()) expect(workers.size).toBe(1);

    let hits = 0;
    for (const w of t.gw.workers()) {
      const text = await (await fetch(`${w.url}/metrics`)).text();
      hits += Number(text.match(/^vllm:prefix_cache_hits_total\S* (\S+)/m)?.[1] ?? 0);
    }
    // 4 sessions × 3 follow-up turns, each re-sending at least the system prompt (~200 tokens).
    expect(hits).toBeGreaterThan(12 * 150);
  });

  it('session-affinity keeps a user (body field or x-session-id header) on one worker', async () => {
    t = await startGateway({ loadBalancer: 'session-affinity', seed: 4 });
    const openai = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    for (let turn = 0; turn < 4; turn++) {
      for (let s = 0; s < 4; s++) {
        const content = `[session ${s} turn ${turn}] hello`;
        if (s % 2 === 0) {
          await openai.chat.completions.create({
            model: 'sim',
            messages: [{ role: 'user', content }],
            max_tokens: 2,
            user: `u${s}`,
          });
        } else {
          await openai.chat.completions.create(
            { model: 'sim', messages: [{ role: 'user', content }], max_tokens: 2 },
            { headers: { 'x-session-id': `u${s}` } },
          );
        }
      }
    }
    const placed = await placements(t);
    expect(placed.size).toBe(4);
    for (const workers of placed.values()) expect(workers.size).toBe(1);
  });
});
