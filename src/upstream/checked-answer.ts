import { GatewayError } from '../core/errors.js';
import { RepetitionGuard } from '../core/repetition-guard.js';
import { BodyStream } from './body-stream.js';
import type { Headers } from './client.js';
import { isJson } from './json-check.js';
import { errorEventMessage, workerStreamError } from './worker-error.js';

/** How a worker's answer is checked on its way through: SSE event by event, JSON whole, or not at all. */
export type BodyKind = 'sse' | 'json' | 'raw';

export function bodyKind(method: string, status: number, headers: Headers): BodyKind {
  const type = (headers['content-type'] ?? '').toLowerCase();
  if (type.startsWith('text/event-stream')) return 'sse';
  const ok = status >= 200 && status < 300 && status !== 204;
  if (ok && method !== 'HEAD' && /^application\/([a-z0-9.-]+\+)?json\b/.test(type)) return 'json';
  return 'raw';
}

export interface AnswerCheckOptions {
  readonly kind: BodyKind;
  readonly worker: string;
  /** Repetition guard limit for SSE answers (option repetition_guard); 0 turns it off. */
  readonly repetitionLimit: number;
  /**
   * An OpenAI stream: `data: [DONE]` is sent when the guard ends it, and an engine's error event
   * inside it (errorEventMessage) ends the answer with upstream_interrupted and the engine's
   * message, after the events before it: some vLLM versions send `{"object": "error", ...}`,
   * which OpenAI's clients read as one more chunk and end as if the answer were whole. TGI's
   * streams just end, and their error events are TGI's clients' to read.
   */
  readonly openaiStream: boolean;
  readonly onRepetition?: () => void;
  /** Turns a failure of the source (reset, timeout, abort) into the catalogue's error. */
  readonly mapError: (err: unknown) => GatewayError;
  /** An SSE event larger than this is malformed (bounds what is held per stream). Default 1 MiB. */
  readonly maxEventBytes?: number;
  /**
   * Hands on the JSON of the SSE events of each chunk as it is pushed, in order (`[DONE]` and
   * events without data left out), so a consumer that needs objects (the gRPC adapter) does not
   * parse the bytes a second time. Called only for events that pass the checks.
   */
  readonly onEvents?: (events: unknown[]) => void;
  /** Called once, when the worker's first chunk arrives (the engine has prefilled the prompt). */
  readonly onFirstChunk?: () => void;
  /**
   * Called once with the id of a Responses API answer (an engine may store it for later turns):
   * a JSON answer's `id`, or the `response.id` of a stream's first event that has one.
   */
  readonly onResponseId?: ((id: string) => void) | undefined;
}

const DONE = Buffer.from('data: [DONE]\n\n');
const EMPTY = Buffer.alloc(0);
const KNOWN_FIELDS = new Set(['data', 'event', 'id', 'retry']);

/**
 * A worker's answer, checked on its way to the client. SSE is cut into whole events, and
 * only whole, well-formed events are passed on (each `data:` is JSON or `[DONE]`), so an error
 * tail added after a failure never lands inside half an event; the whole events of one read
 * leave as one chunk (one write to the client instead of one per event). JSON answers are
 * held until complete, parsed, and passed on as one chunk. Nothing is buffered beyond one
 * event (SSE) or one answer (JSON), and the source is read only as fast as the consumer reads
 * (backpressure).
 *
 * Ending early — the consumer stops reading, a malformed event, the repetition guard — destroys
 * the source, which aborts the upstream request (the worker stops generating). A failure of
 * the source fails the result with `mapError` of it, after the events passed before it.
 */
export function checkedAnswer(source: BodyStream, o: AnswerCheckOptions): BodyStream {
  const check = o.kind === 'sse' ? sseCheck(o) : o.kind === 'json' ? jsonCheck(o) : undefined;
  // The answer is over for this side (failed, stopped or ended): later news of the source is moot.
  let over = false;
  let onFirstChunk = o.onFirstChunk;
  const out = new BodyStream({
    // Asked at the answer's high-water mark: the source holds nothing more on top of it.
    pause: () => source.halt(),
    resume: () => source.resume(),
    abort: () => {
      over = true;
      source.destroy();
    },
  });
  const fail = (err: unknown): void => {
    over = true;
    source.destroy();
    out.fail(err instanceof GatewayError ? err : o.mapError(err));
  };
  // Flowing starts with the consumer's first read: until then the source holds what comes, up to
  // its high-water mark, then pauses the worker.
  source.read({
    data(chunk) {
      if (onFirstChunk) {
        onFirstChunk();
        onFirstChunk = undefined;
      }
      if (over) return;
      let pass: Buffer | undefined = chunk;
      if (check) {
        try {
          const r = check.push(chunk);
          pass = r.pass;
          if (r.events && r.events.length > 0) o.onEvents?.(r.events);
          if (r.error) {
            // The whole events before a malformed one still reach the client, then the error.
            if (pass) out.push(pass);
            fail(r.error);
            return;
          }
          if (r.stop) {
            if (pass) out.push(pass);
            over = true;
            source.destroy();
            out.finish();
            return;
          }
        } catch (err) {
          fail(err);
          return;
        }
      }
      if (pass) out.push(pass);
    },
    end() {
      if (over) return;
      over = true;
      try {
        const last = check?.end();
        if (last) out.push(last);
      } catch (err) {
        fail(err);
        return;
      }
      out.finish();
    },
    error(err) {
      if (!over) fail(o.mapError(err));
    },
  });
  return out;
}

/** One way of checking a body: what of each chunk may pass now, and whether the answer is over. */
interface Check {
  push(chunk: Buffer): { pass: Buffer | undefined; stop?: boolean; error?: unknown; events?: unknown[] };
  end(): Buffer | undefined;
}

function jsonCheck(o: AnswerCheckOptions): Check {
  const seen: Buffer[] = [];
  return {
    push(chunk) {
      seen.push(chunk);
      return { pass: undefined };
    },
    end() {
      const whole = seen.length === 1 ? seen[0]! : Buffer.concat(seen);
      if (o.onResponseId ? !handsOnId(whole, o.onResponseId) : !isJson(whole)) {
        throw malformed(o.worker, `its JSON answer does not parse (${whole.toString('utf8').length} characters)`);
      }
      return whole;
    },
  };
}

/** Parses a JSON answer and hands on its `id`, if it has one; false when it does not parse. */
function handsOnId(whole: Buffer, onId: (id: string) => void): boolean {
  let answer: unknown;
  try {
    answer = JSON.parse(whole.toString('utf8'));
  } catch {
    return false;
  }
  const id = (answer as { id?: unknown } | null)?.id;
  if (typeof id === 'string') onId(id);
  return true;
}

function sseCheck(o: AnswerCheckOptions): Check {
  const max = o.maxEventBytes ?? 1024 * 1024;
  const guards = o.repetitionLimit > 0 ? new Map<number, RepetitionGuard>() : undefined;
  // The start of an event the last reads did not finish.
  let pending: Buffer = EMPTY;
  // Until the answer's id is found, every event is parsed to look for it.
  let onResponseId = o.onResponseId;
  return {
    push(chunk) {
      const buf = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      // Engines end events with LF LF; CRLF CRLF is looked for only in bytes that hold a CR.
      const mayHoldCrlf = buf.includes(0x0d);
      // The JSON of the events passed, only when someone takes it (o.onEvents).
      const jsons: unknown[] | undefined = o.onEvents ? [] : undefined;
      // Nobody needs the events' objects: the usual event is checked in place, without building them.
      const inPlace = !jsons && !guards && !mayHoldCrlf && !onResponseId;
      // Events are walked by offset (no view per event); the bytes before `from` have passed.
      let from = 0;
      for (;;) {
        if (inPlace) {
          const plain = plainEventEnd(buf, from, o.openaiStream);
          if (plain === UNFINISHED) break;
          if (plain >= 0) {
            from = plain;
            continue;
          }
        }
        const end = eventEnd(buf, from, mayHoldCrlf);
        if (end < 0) break;
        let parsed;
        try {
          parsed = parseEvent(buf.toString('utf8', from, end), o.worker);
        } catch (error) {
          return { pass: before(buf, from), error, events: jsons };
        }
        if (guards && parsed && repeats(guards, parsed.json, o.repetitionLimit)) {
          o.onRepetition?.();
          const passed = before(buf, from);
          const pass = o.openaiStream ? (passed ? Buffer.concat([passed, DONE]) : DONE) : passed;
          return { pass, stop: true, events: jsons };
        }
        const said =
          o.openaiStream && parsed && ERROR_KEY_FIRST.test(parsed.data) ? errorEventMessage(parsed.json) : undefined;
        if (said !== undefined) return { pass: before(buf, from), error: workerStreamError(said), events: jsons };
        if (jsons && parsed?.json !== undefined) jsons.push(parsed.json);
        if (onResponseId) {
          const id = (parsed?.json as { response?: { id?: unknown } } | null | undefined)?.response?.id;
          if (typeof id === 'string') {
            onResponseId(id);
            onResponseId = undefined;
          }
        }
        from = end;
      }
      pending = from === 0 ? buf : from === buf.length ? EMPTY : Buffer.from(buf.subarray(from));
      if (pending.length > max) {
        return {
          pass: before(buf, from),
          error: malformed(o.worker, `an event grew past ${max} bytes without ending`),
          events: jsons,
        };
      }
      // A read of exactly whole events (the usual case) passes as it came, without a new view.
      return { pass: from === chunk.length && buf === chunk ? chunk : before(buf, from), events: jsons };
    },
    end() {
      // The source ended: anything left but whitespace is half an event.
      if (pending.toString('utf8').trim() !== '') {
        throw malformed(o.worker, 'the stream ended in the middle of an event');
      }
      return undefined;
    },
  };
}

/** The first `bytes` of `buf`, or undefined for none. */
function before(buf: Buffer, bytes: number): Buffer | undefined {
  return bytes === 0 ? undefined : buf.subarray(0, bytes);
}

function malformed(worker: string, what: string): GatewayError {
  return new GatewayError('upstream_malformed', { message: `worker ${worker} sent a malformed answer: ${what}` });
}

/** plainEventEnd: the event's line has not ended in these bytes (nor, so, has the event). */
const UNFINISHED = -1;
/** plainEventEnd: some other event (several lines, a comment, no data) or a malformed one. */
const NOT_PLAIN = -2;

/**
 * The end of the event at `from` if it is the event every engine sends, one `data:` line of
 * valid JSON or `[DONE]` then LF LF (bytes without a CR); else UNFINISHED or NOT_PLAIN, and
 * parseEvent reads it (and rejects it, if it is malformed). With `errorsOut`, an event that may
 * be an error (errorKeyFirst) is NOT_PLAIN too, so it is parsed and looked at.
 */
function plainEventEnd(buf: Buffer, from: number, errorsOut: boolean): number {
  const lf = buf.indexOf(0x0a, from);
  // Without the LF that would end it, nothing ends here: a blank line is two LFs.
  if (lf < 0 || lf + 1 === buf.length) return UNFINISHED;
  if (buf[lf + 1] !== 0x0a || lf - from < 6) return NOT_PLAIN;
  for (let k = 0; k < DATA_FIELD.length; k++) if (buf[from + k] !== DATA_FIELD[k]) return NOT_PLAIN;
  const start = buf[from + 5] === 0x20 ? from + 6 : from + 5;
  if (errorsOut && errorKeyFirst(buf, start, lf)) return NOT_PLAIN;
  return isDone(buf, start, lf) || isJson(buf, start, lf) ? lf + 2 : NOT_PLAIN;
}

/**
 * Whether the JSON object in buf[start, end) opens with an `error` or `object` key, as an error
 * event does: OpenAI's and newer vLLM's `{"error": {...}}`, older vLLM's `{"object": "error",
 * ...}` (pydantic writes its fields in order). A chunk opens with its `id` or `type`, and is
 * passed over after two byte reads. The parsed path asks the same of an event's data
 * (ERROR_KEY_FIRST), so both judge an event alike.
 */
function errorKeyFirst(buf: Buffer, start: number, end: number): boolean {
  if (buf[start] !== 0x7b) return false; // {
  let i = start + 1;
  while (i < end && (buf[i] === 0x20 || buf[i] === 0x09)) i++;
  const c = buf[i + 1];
  if (buf[i] !== 0x22 || (c !== 0x65 && c !== 0x6f)) return false; // "e, "o
  return bytesAt(buf, i, ERROR_KEY) || bytesAt(buf, i, OBJECT_KEY);
}

function bytesAt(buf: Buffer, at: number, bytes: Buffer): boolean {
  return buf.length - at >= bytes.length && buf.compare(bytes, 0, bytes.length, at, at + bytes.length) === 0;
}

const ERROR_KEY = Buffer.from('"error"');
const OBJECT_KEY = Buffer.from('"object"');
/** errorKeyFirst for an event's data as text. */
const ERROR_KEY_FIRST = /^\{[ \t]*"(error|object)"/;

/** Whether buf[start, end) is `[DONE]`. */
function isDone(buf: Buffer, start: number, end: number): boolean {
  return end - start === DONE_DATA.length && bytesAt(buf, start, DONE_DATA);
}

const DATA_FIELD = Buffer.from('data:');
const DONE_DATA = Buffer.from('[DONE]');

/**
 * The end (exclusive) of the event starting at `from`, at whichever blank line comes first
 * (LF LF, or CRLF CRLF when the bytes may hold one), or -1.
 */
function eventEnd(buf: Buffer, from: number, mayHoldCrlf: boolean): number {
  const lf = buf.indexOf('\n\n', from);
  const crlf = mayHoldCrlf ? buf.indexOf('\r\n\r\n', from) : -1;
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return crlf + 4;
  return lf < 0 ? -1 : lf + 2;
}

/**
 * The data of one SSE event (its `data:` lines joined by LF) and, unless it is `[DONE]`, its
 * JSON; undefined for an event without data (a comment or keep-alive). Throws
 * upstream_malformed for an unknown line or data that is neither JSON nor `[DONE]`.
 */
export function parseEvent(event: string, worker: string): { data: string; json?: unknown } | undefined {
  // Fast path: one `data:` line, as engines send each event (`data: {...}\n\n`).
  const body = event.endsWith('\r\n\r\n') ? event.slice(0, -4) : event.endsWith('\n\n') ? event.slice(0, -2) : event;
  if (body.startsWith('data:') && !body.includes('\n') && !body.includes('\r')) {
    return dataOf(body.charCodeAt(5) === 0x20 ? body.slice(6) : body.slice(5), worker);
  }
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
  return dataOf(data.join('\n'), worker);
}

function dataOf(text: string, worker: string): { data: string; json?: unknown } {
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
 * (`choices[].delta.content`), completions (`choices[].text`), the Responses API's text deltas
 * (`delta` of `response.output_text.delta`, by output item), TGI tokens (`token.text`).
 */
function repeats(guards: Map<number, RepetitionGuard>, obj: unknown, limit: number): boolean {
  if (typeof obj !== 'object' || obj === null) return false;
  const feed = (index: number, text: unknown): boolean => {
    if (typeof text !== 'string' || text === '') return false;
    let g = guards.get(index);
    if (!g) guards.set(index, (g = new RepetitionGuard(limit)));
    return g.feed(text);
  };
  const o = obj as {
    choices?: unknown;
    token?: { text?: unknown; special?: unknown };
    type?: unknown;
    delta?: unknown;
    output_index?: unknown;
  };
  if (o.type === 'response.output_text.delta')
    return feed(typeof o.output_index === 'number' ? o.output_index : 0, o.delta);
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
