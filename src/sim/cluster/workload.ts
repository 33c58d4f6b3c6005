/**
 * What the virtual-time simulation sends: a workload issues requests on the simulation's
 * clock and hears how each one ended, so it can be open-loop (a trace's arrival times) or
 * closed-loop (a chat session sends turn k+1 after turn k's reply and a think time).
 */
import { seededRandom, type Clock, type Random } from '../../core/clock.js';
import { burstyArrivals, type BurstyOptions } from '../workloads/bursty.js';
import { envelopeArrivals, type EnvelopeOptions, type RateEnvelope } from '../workloads/envelope.js';
import { estimateTokens, generatedText } from '../fake-text.js';
import { chatPromptText } from '../prompt-text.js';
import { chatMessages, multiTurnSessions, type ChatMessage, type MultiTurnOptions } from '../workloads/multi-turn.js';
import { tracePrompt } from '../workloads/trace-prompts.js';
import type { TraceLengths, TraceRequest } from './trace.js';

/**
 * The request body's prompt, as a client sends it: the gateway and the engine each read it their
 * way. `unique`: no other request's prompt shares even its first block (a trace line's own text),
 * so an engine's prefix-cache lookup could not hit and is skipped (its tokens still count as
 * looked up); the engine's timing is the same either way.
 */
export type SimPrompt =
  { readonly messages: readonly ChatMessage[] } | { readonly prompt: string; readonly unique?: boolean };

export interface SimRequest {
  readonly promptTokens: number;
  readonly outputTokens: number;
  readonly prompt?: SimPrompt;
  /** The OpenAI `user` field or x-session-id: what session-affinity routes on. */
  readonly sessionKey?: string;
}

export type RequestOutcome = { readonly ok: true; readonly outputTokens: number } | { readonly ok: false };

export interface WorkloadDriver {
  /** Timers on the simulation's clock. */
  readonly clock: Clock;
  /** Sends one request now; `onEnd` hears when it completed or failed. */
  send(req: SimRequest, onEnd?: (outcome: RequestOutcome) => void): void;
}

export interface SimWorkload {
  /** What the report calls it: a trace file, or the generator and its knobs. */
  readonly label: string;
  /** Requests it will send, if known in advance. */
  readonly size?: number;
  start(driver: WorkloadDriver): void;
  /** True once it will send nothing more. */
  exhausted(): boolean;
}

/**
 * A trace's arrivals, `timeScale` times faster, pulled one at a time (a generator over a file
 * is read as the run reaches it: a million-row trace is never in memory). Each prompt is the
 * trace's text stand-in (tracePrompt): a Mooncake request's blocks, so equal block ids reach
 * the balancer and the engines' prefix caches as equal text; a request with lengths only gets
 * unique text of its length, so prompts share nothing, as they would live.
 */
export function traceWorkload(
  trace: Iterable<TraceRequest>,
  timeScale: number,
  label: string,
  size: number | undefined = Array.isArray(trace) ? trace.length : undefined,
): SimWorkload {
  if (!(timeScale > 0)) throw new RangeError(`time scale must be > 0, got ${timeScale}`);
  const it = trace[Symbol.iterator]();
  let next = it.next();
  return {
    label,
    ...(size === undefined ? {} : { size }),
    exhausted: () => next.done === true,
    start({ clock, send }) {
      const scheduleArrival = (): void => {
        if (next.done) return;
        const req = next.value;
        clock.setTimer(req.arrivalMs / timeScale - clock.now(), () => {
          next = it.next();
          send({
            promptTokens: req.promptTokens,
            outputTokens: req.outputTokens,
            prompt: new LazyTracePrompt(req),
          });
          scheduleArrival();
        });
      };
      scheduleArrival();
    },
  };
}

/**
 * A trace request's prompt, its text made on first read: a request of lengths only has a
 * unique prompt that no engine looks up, so unless the balancer reads prompts its text (about
 * 4 KB a request, gigabytes over a simulated day) is never made. A class, not an object literal
 * with a getter: one is made per request.
 */
class LazyTracePrompt {
  readonly unique: boolean;
  readonly #req: TraceRequest;
  #text: string | undefined;

  constructor(req: TraceRequest) {
    this.#req = req;
    this.unique = req.hashIds === undefined;
  }

  get prompt(): string {
    return (this.#text ??= tracePrompt(this.#req));
  }
}

/**
 * Generated arrivals (envelopeArrivals, burstyArrivals) as trace requests, each with lengths
 * drawn at random (seeded) from a real trace's requests: the arrival process from one source,
 * the prompt and reply sizes from another.
 */
export function withLengths(
  arrivalsMs: Iterable<number>,
  lengths: TraceLengths,
  random: Random,
): Generator<TraceRequest, void, undefined> {
  if (lengths.count === 0) throw new RangeError(`${lengths.file}: no requests to draw lengths from`);
  return (function* () {
    let line = 0;
    for (const arrivalMs of arrivalsMs) {
      const i = Math.floor(random() * lengths.count);
      line++;
      yield { arrivalMs, promptTokens: lengths.promptTokens[i]!, outputTokens: lengths.outputTokens[i]!, line };
    }
  })();
}

/**
 * The multi-turn chat workload (src/sim/workloads/multi-turn.ts), closed loop per session as
 * the live benchmark drives it: turn k+1 is sent once turn k's reply is back and its think
 * time has passed, with the reply in the history (the text the simulator generates for that
 * many tokens). A session whose turn failed stops, as a user would.
 */
export function multiTurnWorkload(options: Partial<MultiTurnOptions>): SimWorkload {
  const sessions = multiTurnSessions(options);
  let stopped = 0;
  const size = sessions.reduce((n, s) => n + s.turns.length, 0);
  return {
    label: `multi-turn (${sessions.length} sessions, ${size} turns)`,
    size,
    exhausted: () => stopped === sessions.length,
    start({ clock, send }) {
      for (const s of sessions) {
        const replies: string[] = [];
        const turn = (t: number): void => {
          const spec = s.turns[t]!;
          clock.setTimer(spec.thinkMs, () => {
            const messages = chatMessages(s, t, replies);
            // The last turn sent: the session will send nothing more.
            if (t === s.turns.length - 1) stopped++;
            send(
              {
                promptTokens: estimateTokens(chatPromptText(messages)),
                outputTokens: spec.maxTokens,
                prompt: { messages },
                sessionKey: s.id,
              },
              (outcome) => {
                if (t === s.turns.length - 1) return;
                if (!outcome.ok) return void stopped++;
                replies.push(generatedText(outcome.outputTokens));
                turn(t + 1);
              },
            );
          });
        };
        if (s.turns.length === 0) stopped++;
        else clock.setTimer(s.startMs, () => turn(0));
      }
    },
  };
}

/**
 * The diurnal workload: arrivals from a rate envelope scaled to `o.meanRate` (envelope.ts),
 * lengths drawn from `lengths`, generated as the run reaches them (a day at 5 req/s is
 * ≈ 430,000 requests, never held at once).
 */
export function envelopeWorkload(
  env: RateEnvelope,
  lengths: TraceLengths,
  o: EnvelopeOptions,
  label: string,
): SimWorkload {
  return traceWorkload(envelopeRequests(env, lengths, o), 1, label);
}

/** The diurnal workload's requests, as a stream (a fresh call gives the same requests again). */
export function envelopeRequests(
  env: RateEnvelope,
  lengths: TraceLengths,
  o: EnvelopeOptions,
): Generator<TraceRequest, void, undefined> {
  return withLengths(envelopeArrivals(env, o), lengths, lengthRandom(o.seed));
}

/** Bursts over a low base rate (bursty.ts), lengths drawn from `lengths`. */
export function burstyWorkload(lengths: TraceLengths, o: BurstyOptions, label: string): SimWorkload {
  return traceWorkload(burstyRequests(lengths, o), 1, label);
}

/** The bursty workload's requests, as a stream (a fresh call gives the same requests again). */
export function burstyRequests(lengths: TraceLengths, o: BurstyOptions): Generator<TraceRequest, void, undefined> {
  const arrivals = (function* () {
    for (const a of burstyArrivals(o)) yield a.atMs;
  })();
  return withLengths(arrivals, lengths, lengthRandom(o.seed));
}

/** The lengths' own stream, so drawing them does not shift the arrivals. */
const lengthRandom = (seed: number): Random => seededRandom((seed ^ 0x1e4a7c15) >>> 0);
