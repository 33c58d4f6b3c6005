import type { Readable } from 'node:stream';
import { GatewayError } from '../core/errors.js';
import { RepetitionGuard } from '../core/repetition-guard.js';
import type { Headers } from './client.js';

/** How a worker's answer is checked on its way through: SSE event by event, JSON whole, or not at all. */
export type BodyKind = 'sse' | 'json' | 'raw';

export function bodyKind(method: string, status: number, headers: Headers): BodyKind {
  const type = (headers['content-type'] ?? '').toLowerCase();
  if (type.startsWith('text/event-stream')) return 'sse';
  const ok = status >= 200 && status < 300 && status !== 204;
  if (ok && method !== 'HEAD' && /^application\/([a-z0-9.-]+\+)?json\b/.test(type)) return 'json';
  return 'raw';
}

export interface CheckOptions {
  readonly kind: BodyKind;
  readonly worker: string;
  /** Repetition guard limit for SSE answers (option repetition_guard); 0 turns it off. */
  readonly repetitionLimit: number;
  /** Send `data: [DONE]` when the guard ends a stream (OpenAI streams end so; TGI's just end). */
  readonly doneEvent: boolean;
  readonly onRepetition?: () => void;
  /** Turns a failure of the source (reset, timeout, abort) into the catalogue's error. */
  readonly mapError: (err: unknown) => GatewayError;
  /** An SSE event larger than this is malformed (bounds what is held per stream). Default 1 MiB. */
  readonly maxEventBytes?: number;
}

const DONE = Buffer.from('data: [DONE]\n\n');
const KNOWN_FIELDS = new Set(['data', 'event', 'id', 'retry']);

/**
 * A worker's answer, checked on its way to the client. SSE is cut into whole events, and
 * only whole, well-formed events are passed on (each `data:` is JSON or `[DONE]`), so an error
 * tail added after a failure never lands inside half an event. JSON answers are passed on as
 * they come and parsed once complete. Nothing is buffered beyond one event (SSE) or one answer
 * (JSON), and the source is read only as fast as the consumer reads (backpressure).
 *
 * Ending early — the consumer stops reading, a malformed event, the repetition guard — destroys
 * the source, which aborts the upstream request (the worker stops generating).
 */
export async function* checkedBody(source: Readable, o: CheckOptions): AsyncGenerator<Buffer, void, undefined> {
  const it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const next = async (): Promise<IteratorResult<Buffer>> => {
    try {
      return await it.next();
    } catch (err) {
      throw o.mapError(err);
    }
  };
  let finished = false;
  try {
    if (o.kind === 'raw') {
      for (let r = await next(); !r.done; r = await next()) yield r.value;
    } else if (o.kind === 'json') {
      const seen: Buffer[] = [];
      for (let r = await next(); !r.done; r = await next()) {
        seen.push(r.value);
        yield r.value;
      }
      const text = Buffer.concat(seen).toString('utf8');
      try {
        JSON.parse(text);
      } catch {
        throw malformed(o.worker, `its JSON answer does not parse (${text.length} characters)`);
      }
    } else {
      const split = new SseSplitter(o.maxEventBytes ?? 1024 * 1024, o.worker);
      const guards = o.repetitionLimit > 0 ? new Map<number, RepetitionGuard>() : undefined;
      for (let r = await next(); !r.done; r = await next()) {
        for (const event of split.push(r.value)) {
          const parsed = parseEvent(event.toString('utf8'), o.worker);
          if (guards && parsed && repeats(guards, parsed.json, o.repetitionLimit)) {
            o.onRepetition?.();
            if (o.doneEvent) yield DONE;
            return;
          }
          yield event;
        }
      }
      split.end();
    }
    finished = true;
  } finally {
    if (!finished) await it.return?.();
  }
}

function malformed(worker: string, what: string): GatewayError {
  return new GatewayError('upstream_malformed', { message: `worker ${worker} sent a malformed answer: ${what}` });
}

/** Cuts bytes into SSE events at blank lines (LF LF or CRLF CRLF), holding at most `max` bytes of one event. */
export class SseSplitter {
  #pending: Buffer = Buffer.alloc(0);
  readonly #max: number;
  readonly #worker: string;

  constructor(max: number, worker: string) {
    this.#max = max;
    this.#worker = worker;
  }

  push(chunk: Buffer): Buffer[] {
    const buf = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const events: Buffer[] = [];
    let from = 0;
    for (;;) {
      const lf = buf.indexOf('\n\n', from);
      const crlf = buf.indexOf('\r\n\r\n', from);
      let end: number;
      if (lf < 0 && crlf < 0) break;
      if (crlf >= 0 && (lf < 0 || crlf < lf)) end = crlf + 4;
      else end = lf + 2;
      events.push(buf.subarray(from, end));
      from = end;
    }
    this.#pending = from === 0 ? buf : Buffer.from(buf.subarray(from));
    if (this.#pending.length > this.#max) {
      throw malformed(this.#worker, `an event grew past ${this.#max} bytes without ending`);
    }
    return events;
  }

  /** The source ended: anything left but whitespace is half an event. */
  end(): void {
    if (this.#pending.toString('utf8').trim() !== '') {
      throw malformed(this.#worker, 'the stream ended in the middle of an event');
    }
  }
}

/**
 * The data of one SSE event (its `data:` lines joined by LF) and, unless it is `[DONE]`, its
 * JSON; undefined for an event without data (a comment or keep-alive). Throws
 * upstream_malformed for an unknown line or data that is neither JSON nor `[DONE]`.
 */
export function parseEvent(event: string, worker: string): { data: string; json?: unknown } | undefined {
  const data: string[] = [];
  for (const line of event.split(/\r?\n/)) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    if (!KNOWN_FIELDS.has(field)) throw malformed(worker, `an event line is not an SSE field: ${clip(line)}`);
    if (field !== 'data') continue;
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    data.push(value);
  }
  if (data.length === 0) return undefined;
  const text = data.join('\n');
  if (text === '[DONE]') return { data: text };
  try {
    return { data: text, json: JSON.parse(text) as unknown };
  } catch {
    throw malformed(worker, `an event's data is not JSON: ${clip(text)}`);
  }
}

function clip(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

/**
 * Feeds the generated text of one event to the guard of its choice: OpenAI chat deltas
 * (`choices[].delta.content`), completions (`choices[].text`), TGI tokens (`token.text`).
 */
function repeats(guards: Map<number, RepetitionGuard>, obj: unknown, limit: number): boolean {
  if (typeof obj !== 'object' || obj === null) return false;
  const feed = (index: number, text: unknown): boolean => {
    if (typeof text !== 'string' || text === '') return false;
    let g = guards.get(index);
    if (!g) guards.set(index, (g = new RepetitionGuard(limit)));
    return g.feed(text);
  };
  const o = obj as { choices?: unknown; token?: { text?: unknown; special?: unknown } };
  if (Array.isArray(o.choices)) {
    for (const c of o.choices as { index?: unknown; text?: unknown; delta?: { content?: unknown } }[]) {
      if (typeof c !== 'object' || c === null) continue;
      const index = typeof c.index === 'number' ? c.index : 0;
      if (feed(index, c.delta?.content ?? c.text)) return true;
    }
  }
  if (o.token && o.token.special !== true && feed(0, o.token.text)) return true;
  return false;
}
