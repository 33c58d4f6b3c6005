/**
 * A multi-turn chat workload, seeded: sessions that start at random (Poisson) times and send
 * a growing history — one shared system prompt, then every earlier user message and reply,
 * then the new user message — as chat clients do. The workload where prefix-cache routing
 * pays: turn k+1 repeats turn k's whole prompt.
 *
 * Pure and clock-free: it says what each session sends and when it starts; a driver (the live
 * benchmark, or a virtual-time simulation) sends turn k+1 once turn k's reply is back and the
 * think time has passed, putting the real reply into the history (`chatMessages`).
 *
 * Worked sizes with the defaults: system prompt 1,000 tokens, user messages 150–450, replies
 * up to 200, 4–8 turns: turn 6's prompt ≈ 1,000 + 5 × (300 + 200) + 300 ≈ 3,800 tokens, of
 * which all but the last user message (and the tail of the reply) was in turn 5's prompt.
 */
import { seededRandom, type Random } from '../../core/clock.js';

export interface MultiTurnOptions {
  readonly seed: number;
  /** Sessions started. */
  readonly sessions: number;
  /** Mean session starts per second (exponential gaps). */
  readonly sessionsPerSecond: number;
  readonly turns: readonly [min: number, max: number];
  readonly systemPromptTokens: number;
  readonly userTokens: readonly [min: number, max: number];
  /** max_tokens of each reply. */
  readonly replyTokens: readonly [min: number, max: number];
  /** Mean pause between a reply and the next user message, ms (exponential). */
  readonly thinkMs: number;
}

export const MULTI_TURN_DEFAULTS: MultiTurnOptions = {
  seed: 1,
  sessions: 60,
  sessionsPerSecond: 2,
  turns: [4, 8],
  systemPromptTokens: 1000,
  userTokens: [150, 450],
  replyTokens: [100, 200],
  thinkMs: 1500,
};

export interface ChatTurn {
  readonly user: string;
  readonly maxTokens: number;
  /** Pause before this turn is sent, after the previous reply (0 for the first turn). */
  readonly thinkMs: number;
}

export interface ChatSession {
  readonly id: string;
  /** When the first turn is sent, ms from the start of the run. */
  readonly startMs: number;
  readonly system: string;
  readonly turns: readonly ChatTurn[];
}

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

const WORDS = [
  'cluster', 'latency', 'token', 'request', 'cache', 'prefix', 'worker', 'gateway', 'queue', 'batch',
  'model', 'prompt', 'reply', 'session', 'history', 'engine', 'memory', 'block', 'route', 'policy',
  'please', 'explain', 'why', 'how', 'compare', 'summarise', 'the', 'a', 'of', 'with',
] as const; // prettier-ignore

/** Text of about `tokens` tokens (4 characters each, as the simulator counts them). */
function text(random: Random, tokens: number, tag: string): string {
  let s = tag;
  while (s.length < tokens * 4) s += ' ' + WORDS[Math.floor(random() * WORDS.length)]!;
  return s;
}

function between(random: Random, [lo, hi]: readonly [number, number]): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}

export function multiTurnSessions(options: Partial<MultiTurnOptions> = {}): ChatSession[] {
  const o = { ...MULTI_TURN_DEFAULTS, ...options };
  const random = seededRandom(o.seed);
  const system = text(seededRandom(o.seed ^ 0x5eed), o.systemPromptTokens, 'System: you are the FlockServe assistant.');
  const sessions: ChatSession[] = [];
  let at = 0;
  for (let i = 0; i < o.sessions; i++) {
    const turns: ChatTurn[] = [];
    const n = between(random, o.turns);
    for (let t = 0; t < n; t++) {
      turns.push({
        user: text(random, between(random, o.userTokens), `[session ${i} turn ${t}]`),
        maxTokens: between(random, o.replyTokens),
        thinkMs: t === 0 ? 0 : -Math.log(1 - random()) * o.thinkMs,
      });
    }
    sessions.push({ id: `session-${o.seed}-${i}`, startMs: at, system, turns });
    at += (-Math.log(1 - random()) / o.sessionsPerSecond) * 1000;
  }
  return sessions;
}

/** The messages of turn `turn` (0-based), given the replies to the turns before it. */
export function chatMessages(session: ChatSession, turn: number, replies: readonly string[]): ChatMessage[] {
  if (replies.length < turn) throw new RangeError(`turn ${turn} needs ${turn} earlier replies, got ${replies.length}`);
  const messages: ChatMessage[] = [{ role: 'system', content: session.system }];
  for (let t = 0; t <= turn; t++) {
    messages.push({ role: 'user', content: session.turns[t]!.user });
    if (t < turn) messages.push({ role: 'assistant', content: replies[t]! });
  }
  return messages;
}
