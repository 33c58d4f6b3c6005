/**
 * What the virtual-time simulation sends: a workload issues requests on the simulation's
 * clock and hears how each one ended, so it can be open-loop (a trace's arrival times) or
 * closed-loop (a chat session sends turn k+1 after turn k's reply and a think time).
 */
import type { Clock } from '../../core/clock.js';
import { estimateTokens, generatedText } from '../fake-text.js';
import { chatPromptText } from '../openai-routes.js';
import { chatMessages, multiTurnSessions, type ChatMessage, type MultiTurnOptions } from '../workloads/multi-turn.js';
import type { TraceRequest } from './trace.js';

/** The request body's prompt, as a client sends it: the gateway and the engine each read it their way. */
export type SimPrompt = { readonly messages: readonly ChatMessage[] } | { readonly prompt: string };

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
 * A trace's arrivals, `timeScale` times faster. The trace has lengths, not text: each prompt
 * is unique text of its length (a distinct first block makes every chained block hash
 * distinct), so the engines' prefix caches and the prefix-cache policy see what they would
 * live — prompts that share nothing.
 */
export function traceWorkload(trace: readonly TraceRequest[], timeScale: number, label: string): SimWorkload {
  if (!(timeScale > 0)) throw new RangeError(`time scale must be > 0, got ${timeScale}`);
  let next = 0;
  return {
    label,
    size: trace.length,
    exhausted: () => next >= trace.length,
    start({ clock, send }) {
      const scheduleArrival = (): void => {
        const req = trace[next];
        if (!req) return;
        clock.setTimer(req.arrivalMs / timeScale - clock.now(), () => {
          next++;
          send({
            promptTokens: req.promptTokens,
            outputTokens: req.outputTokens,
            prompt: { prompt: uniquePrompt(req.line, req.promptTokens) },
          });
          scheduleArrival();
        });
      };
      scheduleArrival();
    },
  };
}

/** `tokens` tokens (4 characters each) of text no other line's prompt shares a block with. */
function uniquePrompt(line: number, tokens: number): string {
  return `[trace line ${line}] `.padEnd(tokens * 4, ' lorem ipsum');
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
