import { describe, expect, it } from 'vitest';
import { promptBlockHashes } from '../../../src/core/hashing.js';
import { promptTextOf } from '../../../src/routes/rules.js';
import { chatMessages, multiTurnSessions } from '../../../src/sim/workloads/multi-turn.js';

describe('multi-turn chat workload', () => {
  it('is the same for the same seed and different for another', () => {
    expect(multiTurnSessions({ seed: 3 })).toEqual(multiTurnSessions({ seed: 3 }));
    expect(multiTurnSessions({ seed: 4 })[0]!.turns[0]!.user).not.toBe(
      multiTurnSessions({ seed: 3 })[0]!.turns[0]!.user,
    );
  });

  it('shapes sessions as asked: turn counts, sizes, and arrivals at the mean rate', () => {
    const sessions = multiTurnSessions({
      seed: 5,
      sessions: 400,
      sessionsPerSecond: 4,
      turns: [2, 5],
      userTokens: [10, 20],
    });
    expect(sessions).toHaveLength(400);
    for (const s of sessions) {
      expect(s.turns.length).toBeGreaterThanOrEqual(2);
      expect(s.turns.length).toBeLessThanOrEqual(5);
      for (const t of s.turns) expect(t.user.length).toBeLessThan(20 * 4 + 12);
    }
    // 399 gaps at 4/s: about 100 s.
    expect(sessions.at(-1)!.startMs).toBeGreaterThan(85_000);
    expect(sessions.at(-1)!.startMs).toBeLessThan(115_000);
    expect(new Set(sessions.map((s) => s.system)).size).toBe(1);
  });

  it("resends a growing history: each turn's prompt text starts with the previous turn's whole prompt", () => {
    const [s] = multiTurnSessions({ seed: 6, sessions: 1, turns: [5, 5] });
    const replies: string[] = [];
    let previous = '';
    for (let t = 0; t < 5; t++) {
      const prompt = promptTextOf({ messages: chatMessages(s!, t, replies) })!;
      expect(prompt.startsWith(previous)).toBe(true);
      // So its block hashes extend the previous turn's.
      expect(promptBlockHashes(prompt).slice(0, promptBlockHashes(previous).length)).toEqual(
        promptBlockHashes(previous),
      );
      previous = prompt;
      replies.push(`reply ${t}`);
    }
  });

  it('refuses a turn whose earlier replies are missing', () => {
    const [s] = multiTurnSessions({ sessions: 1 });
    expect(() => chatMessages(s!, 2, ['only one'])).toThrow(/needs 2 earlier replies/);
  });
});
