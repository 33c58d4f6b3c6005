/**
 * Generated traces in the Mooncake format (hash_ids of 512-token blocks; equal ids = a shared
 * prefix), for the shapes prefix sharing takes besides the one Mooncake file: multi-turn chat
 * under a shared system prompt, RAG over popular documents, and one hot system prompt most of
 * the traffic shares. Seeded and pure: the same options give the same requests. They replay
 * like a Mooncake file (traceWorkload synthesises each prompt from its ids) and write out as
 * one (toMooncakeLines), so `flockserve simulate --trace` reads them too.
 *
 * Ids: a block shared by several requests has one id; a block holding text of one request only
 * (a question, a chat's newest turn, the partial last block) gets an id no other request has.
 * Shared parts are whole blocks (512-token multiples), as a real shared prefix is cached only in
 * whole engine blocks anyway.
 */
import { seededRandom, type Random } from '../../core/clock.js';
import { MOONCAKE_BLOCK_TOKENS, type TraceRequest } from '../cluster/trace.js';
import { between, unitExponential } from './random.js';

type Range = readonly [min: number, max: number];

interface Common {
  readonly seed: number;
  /** Tokens of each reply (uniform). */
  readonly outputTokens: Range;
}

/** Hands out block ids, never the same twice. */
class Ids {
  #next = 0;
  take(n: number): number[] {
    return Array.from({ length: n }, () => this.#next++);
  }
}

/** Blocks of `tokens` tokens: whole ones and a last partial one. */
const blocksFor = (tokens: number): number => Math.ceil(tokens / MOONCAKE_BLOCK_TOKENS);

/** Poisson arrival times (ms) at `rate` per second, `n` of them. */
function poisson(random: Random, rate: number, n: number): number[] {
  if (!(rate > 0)) throw new RangeError(`rate must be > 0 per second, got ${rate}`);
  const out: number[] = [];
  let t = 0;
  for (let i = 0; i < n; i++) {
    t += (unitExponential(random) / rate) * 1000;
    out.push(t);
  }
  return out;
}

/** What an open-loop trace's request is made from: a draw source, the id source and the shared system prompt's ids. */
interface Draw {
  readonly random: Random;
  readonly ids: Ids;
  readonly system: readonly number[];
}

/**
 * The frame of the open-loop traces: `o.requests` Poisson arrivals at `o.ratePerSecond`, each
 * request (lengths and ids) made by `make`; `prepare` runs first, on the same draws (e.g. the
 * documents a RAG trace picks from).
 */
function openLoop<T>(
  o: {
    readonly seed: number;
    readonly requests: number;
    readonly ratePerSecond: number;
    readonly systemBlocks: number;
  },
  prepare: (d: Draw) => T,
  make: (d: Draw, prepared: T) => Omit<TraceRequest, 'line' | 'arrivalMs'>,
): TraceRequest[] {
  const random = seededRandom(o.seed);
  const ids = new Ids();
  const d: Draw = { random, ids, system: ids.take(o.systemBlocks) };
  const prepared = prepare(d);
  return finish(poisson(random, o.ratePerSecond, o.requests).map((arrivalMs) => ({ arrivalMs, ...make(d, prepared) })));
}

/** Requests in arrival order, numbered as lines of a file, arrivals relative to the first. */
function finish(requests: Omit<TraceRequest, 'line'>[]): TraceRequest[] {
  requests.sort((a, b) => a.arrivalMs - b.arrivalMs);
  const t0 = requests[0]?.arrivalMs ?? 0;
  return requests.map((r, i) => ({ ...r, arrivalMs: r.arrivalMs - t0, line: i + 1 }));
}

export interface HotPrefixOptions extends Common {
  readonly requests: number;
  readonly ratePerSecond: number;
  /** Share of requests that start with the hot system prompt. */
  readonly hotShare: number;
  /** Whole 512-token blocks of the hot system prompt. */
  readonly systemBlocks: number;
  /** Tokens of the user turn after it (under one block). */
  readonly userTokens: Range;
  /** Tokens of the other requests' prompts, which share nothing. */
  readonly otherTokens: Range;
}

export const HOT_PREFIX_DEFAULTS: Omit<HotPrefixOptions, 'seed'> = {
  requests: 3000,
  ratePerSecond: 4,
  hotShare: 0.8,
  systemBlocks: 4,
  userTokens: [20, 400],
  otherTokens: [200, 4000],
  outputTokens: [20, 300],
};

/**
 * One long system prompt (2,048 tokens by default) and a short user turn: `hotShare` of the
 * requests; the rest share nothing. The hot-spot test: a cache-aware router must not send most
 * of the traffic to the one worker holding that prompt.
 */
export function hotPrefixTrace(o: HotPrefixOptions): TraceRequest[] {
  const systemTokens = o.systemBlocks * MOONCAKE_BLOCK_TOKENS;
  return openLoop(
    o,
    () => undefined,
    ({ random, ids, system }) => {
      const outputTokens = between(random, o.outputTokens);
      if (random() < o.hotShare) {
        const user = between(random, o.userTokens);
        return { promptTokens: systemTokens + user, outputTokens, hashIds: [...system, ...ids.take(1)] };
      }
      const tokens = between(random, o.otherTokens);
      return { promptTokens: tokens, outputTokens, hashIds: ids.take(blocksFor(tokens)) };
    },
  );
}

export interface ChatOptions extends Common {
  readonly sessions: number;
  readonly sessionsPerSecond: number;
  /** Whole 512-token blocks of the system prompt every session starts with (0: none). */
  readonly systemBlocks: number;
  readonly turns: Range;
  readonly userTokens: Range;
  /** Mean seconds between a reply and the next turn (exponential), reading and typing included. */
  readonly thinkS: number;
}

export const CHAT_DEFAULTS: Omit<ChatOptions, 'seed'> = {
  sessions: 400,
  sessionsPerSecond: 0.5,
  systemBlocks: 2,
  turns: [2, 10],
  userTokens: [50, 1500],
  outputTokens: [50, 600],
  thinkS: 20,
};

/**
 * Multi-turn chat: each turn resends the session's whole history (system prompt, every user
 * turn and reply so far) plus its new user turn, so turn k+1 shares all the whole blocks of
 * turn k's prompt and reply. Open loop, as a trace is: a turn arrives a think time after the
 * previous one's arrival plus 1 s per 100 reply tokens (the time the reply took to stream).
 */
export function chatTrace(o: ChatOptions): TraceRequest[] {
  const random = seededRandom(o.seed);
  const ids = new Ids();
  const system = ids.take(o.systemBlocks);
  const out: Omit<TraceRequest, 'line'>[] = [];
  for (const start of poisson(random, o.sessionsPerSecond, o.sessions)) {
    const turns = between(random, o.turns);
    const whole: number[] = []; // ids of the history's whole blocks so far
    let history = 0; // tokens of history after the system prompt
    let at = start;
    for (let t = 0; t < turns; t++) {
      history += between(random, o.userTokens);
      const full = Math.floor(history / MOONCAKE_BLOCK_TOKENS);
      whole.push(...ids.take(full - whole.length));
      const partial = history % MOONCAKE_BLOCK_TOKENS > 0 ? ids.take(1) : [];
      const outputTokens = between(random, o.outputTokens);
      out.push({
        arrivalMs: at,
        promptTokens: o.systemBlocks * MOONCAKE_BLOCK_TOKENS + history,
        outputTokens,
        hashIds: [...system, ...whole, ...partial],
      });
      history += outputTokens;
      at += (outputTokens / 100 + unitExponential(random) * o.thinkS) * 1000;
    }
  }
  return finish(out);
}

export interface RagOptions extends Common {
  readonly requests: number;
  readonly ratePerSecond: number;
  /** Whole 512-token blocks of the system prompt every request starts with (0: none). */
  readonly systemBlocks: number;
  readonly documents: number;
  /** Zipf exponent of document popularity: document k (1-based) is drawn ∝ 1/k^s. */
  readonly zipf: number;
  /** Whole 512-token blocks per document. */
  readonly documentBlocks: Range;
  readonly questionTokens: Range;
}

export const RAG_DEFAULTS: Omit<RagOptions, 'seed'> = {
  requests: 3000,
  ratePerSecond: 3,
  systemBlocks: 1,
  documents: 400,
  zipf: 0.9,
  documentBlocks: [2, 24],
  questionTokens: [20, 300],
  outputTokens: [20, 400],
};

/**
 * RAG-like: a short system prompt, then one retrieved document of 1k–12k tokens (popularity
 * Zipf-distributed, so a few documents are asked about often and most rarely), then a
 * question of the request's own.
 */
export function ragTrace(o: RagOptions): TraceRequest[] {
  return openLoop(
    o,
    ({ random, ids }) => {
      const docs = Array.from({ length: o.documents }, () => ids.take(between(random, o.documentBlocks)));
      const cumulative: number[] = [];
      let sum = 0;
      for (let k = 0; k < docs.length; k++) cumulative.push((sum += 1 / Math.pow(k + 1, o.zipf)));
      return { docs, cumulative, sum };
    },
    ({ random, ids, system }, { docs, cumulative, sum }) => {
      // The document whose cumulative weight first reaches a uniform draw (binary search).
      const x = random() * sum;
      let lo = 0;
      let hi = cumulative.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cumulative[mid]! < x) lo = mid + 1;
        else hi = mid;
      }
      const doc = docs[lo]!;
      const question = between(random, o.questionTokens);
      return {
        promptTokens: (o.systemBlocks + doc.length) * MOONCAKE_BLOCK_TOKENS + question,
        outputTokens: between(random, o.outputTokens),
        hashIds: [...system, ...doc, ...ids.take(blocksFor(question))],
      };
    },
  );
}

/** A trace as Mooncake JSON lines (`timestamp` ms, `input_length`, `output_length`, `hash_ids`). */
export function* toMooncakeLines(requests: Iterable<TraceRequest>): Generator<string, void, undefined> {
  for (const r of requests) {
    yield JSON.stringify({
      timestamp: Math.round(r.arrivalMs),
      input_length: r.promptTokens,
      output_length: r.outputTokens,
      hash_ids: r.hashIds ?? [],
    });
  }
}
