import { extname } from 'node:path';
import { fileLines, textLines, type NumberedLine } from './lines.js';
import { isRequestLog, requestLogRequests, requestLogScan } from './request-log-trace.js';
import { MAX_REQUEST_TOKENS, TraceError, type TraceRequest } from './trace-types.js';

/**
 * The formats read: the Azure LLM inference CSV (`TIMESTAMP,ContextTokens,GeneratedTokens`,
 * the 2023 and 2024 releases), BurstGPT's CSV (`Timestamp` in seconds, `Request tokens`,
 * `Response tokens`, other columns ignored), the Mooncake JSON lines (`timestamp` ms,
 * `input_length`, `output_length`, `hash_ids`) and FlockServe's own request log (SQLite,
 * `--request_log`: request-log-trace.ts).
 */
export const TRACE_FORMATS = ['azure-csv', 'burstgpt-csv', 'mooncake', 'request-log'] as const;
export type TraceFormat = (typeof TRACE_FORMATS)[number];

/** Tokens per Mooncake hash block. */
export const MOONCAKE_BLOCK_TOKENS = 512;

export { TraceError, type TraceRequest };

/** A CSV trace's columns: which header names hold the arrival time and the two lengths, and how a time reads. */
interface CsvDialect {
  readonly format: TraceFormat;
  /** The header names of the arrival time, the prompt's tokens and the output's, as the trace spells them. */
  readonly columns: readonly [time: string, prompt: string, output: string];
  /** The whole header, for messages. */
  readonly header: string;
  /** Whole ms and the fraction of a ms of a time cell (any origin: arrivals are relative), or undefined. */
  readonly time: (cell: string) => { ms: number; frac: number } | undefined;
  /** What a time cell should be, for messages. */
  readonly timeWanted: string;
}

const CSV_DIALECTS: readonly CsvDialect[] = [
  {
    format: 'azure-csv',
    columns: ['TIMESTAMP', 'ContextTokens', 'GeneratedTokens'],
    header: 'TIMESTAMP,ContextTokens,GeneratedTokens',
    time: parseTimestamp,
    timeWanted: 'a timestamp like "2023-11-16 18:15:46.6805900" or "2024-05-10 00:00:00.009930+00:00"',
  },
  {
    format: 'burstgpt-csv',
    columns: ['Timestamp', 'Request tokens', 'Response tokens'],
    header: 'Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type',
    time: parseSeconds,
    timeWanted: "seconds >= 0 (as BurstGPT's Timestamp)",
  },
];

/** The dialect whose columns a CSV header names (any order, any case), or undefined. */
function dialectOf(header: readonly string[]): CsvDialect | undefined {
  return CSV_DIALECTS.find((d) => missingColumns(d, header).length === 0);
}

/** The columns of `d` a (lower-cased) header lacks. */
const missingColumns = (d: CsvDialect, header: readonly string[]): string[] =>
  d.columns.filter((c) => !header.includes(c.toLowerCase()));

const splitHeader = (text: string): string[] =>
  text
    .replace(/^\uFEFF/, '')
    .split(',')
    .map((h) => h.trim().toLowerCase());

// "2023-11-16 18:15:46.6805900" (the 2023 Azure traces: UTC, 7 fraction digits) or
// "2024-05-10 00:00:00.009930+00:00" (2024: a UTC offset); the fraction and the zone optional.
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:Z|[+-]\d{2}:?\d{2})?$/;

/**
 * The requests of a trace file, read lazily (a million rows are never in memory at once) and
 * checked as they are read: a bad line is a TraceError naming the file and line, never
 * skipped. The format comes from the extension (.jsonl/.json: Mooncake, .csv: Azure), else
 * from the first line (`{` starts a Mooncake line). Arrival times must not decrease and are
 * relative to the first request.
 */
export function* traceRequests(file: string): Generator<TraceRequest, void, undefined> {
  if (isRequestLog(file)) return yield* requestLogRequests(file);
  const lines = fileLines(file);
  let first: IteratorResult<NumberedLine, void>;
  try {
    first = lines.next();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory' : (err as Error).message;
    throw new TraceError(`${file}: cannot read the trace (${why})`, { cause: err });
  }
  yield* parseLines(first, lines, file, formatByName(file));
}

/** All the requests of a trace file (see traceRequests); for traces small enough to hold. */
export function readTrace(file: string): Promise<TraceRequest[]> {
  try {
    return Promise.resolve([...traceRequests(file)]);
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

/** Parses a trace's text (either format, told apart by its first line); `file` names it in messages. */
export function parseTrace(text: string, file: string): TraceRequest[] {
  const lines = textLines(text);
  return [...parseLines(lines.next(), lines, file, formatByName(file))];
}

/** What a pass over the whole file finds: every line checked, nothing kept. */
export interface TraceScan {
  readonly format: TraceFormat;
  readonly requests: number;
  /** The last request's arrival, ms after the first's. */
  readonly lastArrivalMs: number;
  /** Requests the file holds but cannot replay: a request log's rows without token counts (0 for the others). */
  readonly leftOut: number;
}

/** A part of a trace: the requests arriving from startMs (after its first request) until endMs. */
export interface TraceWindow {
  readonly startMs: number;
  /** Infinity: to the trace's end. */
  readonly endMs: number;
}

export const WHOLE_TRACE: TraceWindow = { startMs: 0, endMs: Infinity };

/**
 * The requests of `window`, their arrivals counted from its start; reading stops at its end (a
 * trace is sorted by time). The whole trace passes through as it is.
 */
export function* traceWindow(
  requests: Iterable<TraceRequest>,
  window: TraceWindow,
): Generator<TraceRequest, void, undefined> {
  if (window.startMs === 0 && window.endMs === Infinity) return yield* requests;
  for (const r of requests) {
    if (r.arrivalMs >= window.endMs) return;
    if (r.arrivalMs >= window.startMs) yield { ...r, arrivalMs: r.arrivalMs - window.startMs };
  }
}

/**
 * Reads the trace once up to the window's end, checking every line, so a bad line late in a
 * long trace stops a run before it starts, and the run knows how many requests and how long
 * its part of the trace is. A window without a request is a TraceError.
 */
export function scanTrace(file: string, window: TraceWindow = WHOLE_TRACE): TraceScan {
  // A request log is checked first: its own errors (no table, no row with counts) say more.
  const leftOut = isRequestLog(file) ? requestLogScan(file).leftOut : 0;
  let requests = 0;
  let lastArrivalMs = 0;
  for (const r of traceWindow(traceRequests(file), window)) {
    requests++;
    lastArrivalMs = r.arrivalMs;
  }
  if (requests === 0)
    throw new TraceError(
      `${file}: no request from ${window.startMs / 1000} s${window.endMs === Infinity ? ' on' : ` to ${window.endMs / 1000} s`} after the trace's first`,
    );
  return { format: traceFormat(file), requests, lastArrivalMs, leftOut };
}

/** The format of a trace file, by its extension or else its first line (a CSV's dialect by its header). */
export function traceFormat(file: string): TraceFormat {
  if (isRequestLog(file)) return 'request-log';
  const byName = formatByName(file);
  if (byName === 'mooncake') return byName;
  for (const { text } of fileLines(file)) if (text.trim() !== '') return formatByLine(text, byName);
  return 'azure-csv';
}

/** JSON lines or CSV by the extension; a CSV's dialect comes from its header. */
function formatByName(file: string): 'mooncake' | 'csv' | undefined {
  const ext = extname(file).toLowerCase();
  if (ext === '.jsonl' || ext === '.json' || ext === '.ndjson') return 'mooncake';
  if (ext === '.csv') return 'csv';
  return undefined;
}

const kindByLine = (text: string): 'mooncake' | 'csv' => (text.trimStart().startsWith('{') ? 'mooncake' : 'csv');

/** The format a first line makes a file of this kind: Mooncake, or the CSV dialect its header names (Azure's by default). */
function formatByLine(text: string, kind = kindByLine(text)): TraceFormat {
  return kind === 'mooncake' ? 'mooncake' : (dialectOf(splitHeader(text))?.format ?? 'azure-csv');
}

function* parseLines(
  first: IteratorResult<NumberedLine, void>,
  rest: Iterator<NumberedLine, void>,
  file: string,
  kind: 'mooncake' | 'csv' | undefined,
): Generator<TraceRequest, void, undefined> {
  const blankFirst = !first.done && first.value.text.trim() === '';
  if (first.done || (blankFirst && onlyBlank(rest))) {
    throw new TraceError(
      `${file}: the trace is empty; expected a CSV header line (${csvHeaders()}) and request rows, or Mooncake JSON lines`,
    );
  }
  if (blankFirst) throw new TraceError(`${file}:1: empty line; expected a CSV header or a JSON object`);
  const rows = { [Symbol.iterator]: () => rest };
  if ((kind ?? kindByLine(first.value.text)) === 'mooncake') yield* mooncakeRows(first.value, rows, file);
  else yield* csvRows(first.value, rows, file);
}

/** The CSV headers read, for messages. */
const csvHeaders = (): string => CSV_DIALECTS.map((d) => `"${d.header}"`).join(' or ');

/** True when nothing but blank lines is left. */
function onlyBlank(rest: Iterator<NumberedLine, void>): boolean {
  for (let r = rest.next(); !r.done; r = rest.next()) if (r.value.text.trim() !== '') return false;
  return true;
}

function* csvRows(
  headerLine: NumberedLine,
  rows: Iterable<NumberedLine>,
  file: string,
): Generator<TraceRequest, void, undefined> {
  const header = splitHeader(headerLine.text);
  const dialect = dialectOf(header);
  if (!dialect) {
    // Name the columns missing from the dialect the header comes closest to.
    const missing = CSV_DIALECTS.map((d) => missingColumns(d, header)).reduce((a, b) => (b.length < a.length ? b : a));
    throw new TraceError(
      `${file}:1: expected the header ${csvHeaders()}, got "${excerpt(headerLine.text)}" (no ${missing.join(', ')} column)`,
    );
  }
  const [TIME, PROMPT, OUTPUT] = dialect.columns;
  const [tCol, pCol, oCol] = dialect.columns.map((c) => header.indexOf(c.toLowerCase())) as [number, number, number];
  // Whole milliseconds since the epoch (~1.7e12) and the fraction apart: their sum would keep
  // only ~0.0002 ms of the fraction; the differences between requests keep it all.
  let origin: { ms: number; frac: number } | undefined;
  let prevMs = -Infinity;
  let prevFrac = 0;
  let prevLine = 0;
  let prevStamp = '';
  for (const { text: raw, line } of rows) {
    // Messages are built only on the error paths: this loop runs once per request of the trace.
    const where = (): string => `${file}:${line}`;
    if (raw.trim() === '')
      throw new TraceError(`${where()}: empty line; expected a request row under "${dialect.header}"`);
    const cells = raw.split(',');
    if (cells.length !== header.length) {
      throw new TraceError(
        `${where()}: expected ${header.length} comma-separated fields (${excerpt(headerLine.text.trim())}), got ${cells.length}: "${excerpt(raw)}"`,
      );
    }
    const stamp = cells[tCol]!.trim();
    const at = dialect.time(stamp);
    if (at === undefined)
      throw new TraceError(
        `${where()}: expected ${TIME} as ${dialect.timeWanted}, got ${stamp === '' ? 'none' : `"${stamp}"`}`,
      );
    const prompt = parseCount(cells[pCol]!);
    if (prompt === undefined)
      throw new TraceError(
        `${where()}: expected ${PROMPT} as a whole number from 0 to ${MAX_REQUEST_TOKENS}, got "${cells[pCol]}"`,
      );
    const output = parseCount(cells[oCol]!);
    if (output === undefined)
      throw new TraceError(
        `${where()}: expected ${OUTPUT} as a whole number from 0 to ${MAX_REQUEST_TOKENS}, got "${cells[oCol]}"`,
      );
    if (at.ms < prevMs || (at.ms === prevMs && at.frac < prevFrac)) {
      throw new TraceError(
        `${where()}: timestamp ${stamp} is earlier than line ${prevLine}'s (${prevStamp}); the trace must be sorted by time`,
      );
    }
    prevMs = at.ms;
    prevFrac = at.frac;
    prevLine = line;
    prevStamp = stamp;
    origin ??= at;
    yield {
      arrivalMs: at.ms - origin.ms + (at.frac - origin.frac),
      promptTokens: prompt,
      outputTokens: output,
      line,
    };
  }
  if (origin === undefined) throw new TraceError(`${file}: the trace has a header but no requests`);
}

function* mooncakeRows(
  firstLine: NumberedLine,
  rows: Iterable<NumberedLine>,
  file: string,
): Generator<TraceRequest, void, undefined> {
  let origin: number | undefined;
  let prev = { ms: -Infinity, line: 0 };
  const one = function* (): Generator<NumberedLine> {
    yield firstLine;
    yield* rows;
  };
  for (const { text, line } of one()) {
    const where = `${file}:${line}`;
    if (text.trim() === '') throw new TraceError(`${where}: empty line; expected one JSON object per line`);
    let o: unknown;
    try {
      o = JSON.parse(text);
    } catch (err) {
      throw new TraceError(`${where}: not JSON (${(err as Error).message}): "${excerpt(text)}"`, { cause: err });
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o)) {
      throw new TraceError(
        `${where}: expected a JSON object {"timestamp", "input_length", "output_length", "hash_ids"}, got ${excerpt(text)}`,
      );
    }
    const r = o as Record<string, unknown>;
    const field = (name: string): unknown => {
      if (!Object.hasOwn(r, name)) throw new TraceError(`${where}: missing "${name}"`);
      return r[name];
    };
    const ts = field('timestamp');
    if (typeof ts !== 'number' || !Number.isFinite(ts) || ts < 0)
      throw new TraceError(`${where}: expected "timestamp" as milliseconds >= 0, got ${JSON.stringify(ts)}`);
    const count = (name: string): number => {
      const v = field(name);
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_REQUEST_TOKENS)
        throw new TraceError(
          `${where}: expected "${name}" as a whole number from 0 to ${MAX_REQUEST_TOKENS}, got ${JSON.stringify(v)}`,
        );
      return v;
    };
    const promptTokens = count('input_length');
    const outputTokens = count('output_length');
    const ids = field('hash_ids');
    if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'number' || !Number.isInteger(id) || id < 0))
      throw new TraceError(`${where}: expected "hash_ids" as an array of whole numbers >= 0`);
    if (ts < prev.ms) {
      throw new TraceError(
        `${where}: timestamp ${ts} is earlier than line ${prev.line}'s (${prev.ms}); the trace must be sorted by time`,
      );
    }
    prev = { ms: ts, line };
    origin ??= ts;
    yield { arrivalMs: ts - origin, promptTokens, outputTokens, line, hashIds: ids as number[] };
  }
}

const excerpt = (s: string): string => (s.length > 60 ? `${s.slice(0, 57)}...` : s);

/** Whole ms since the epoch and the fraction of a ms, or undefined if `s` is not a valid timestamp. */
function parseTimestamp(s: string): { ms: number; frac: number } | undefined {
  // Consecutive rows share their minute: the date is checked once per minute, the seconds each row.
  const minute = s.slice(0, 16);
  let base = minuteCache.get(minute);
  if (base === undefined) {
    const m = TIMESTAMP.exec(s);
    if (!m) return undefined;
    const [, y, mo, d, h, mi, sec] = m;
    const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec));
    // Date.UTC rolls over impossible dates (Feb 30 → Mar 2): reject them instead.
    const back = new Date(ms);
    const same =
      back.getUTCMonth() === Number(mo) - 1 &&
      back.getUTCDate() === Number(d) &&
      back.getUTCHours() === Number(h) &&
      back.getUTCMinutes() === Number(mi) &&
      back.getUTCSeconds() === Number(sec);
    if (!same) return undefined;
    base = ms - Number(sec) * 1000;
    if (minuteCache.size > 1024) minuteCache.clear();
    minuteCache.set(minute, base);
  }
  // The seconds and the fraction, by hand (this runs once per row): ":SS", then "." and 1–9 digits, then the zone, each optional but the seconds.
  const zone = zoneOf(s);
  if (zone === undefined) return undefined;
  const { end } = zone;
  if (end < 19 || s.charCodeAt(16) !== 58 /* : */) return undefined;
  const sec = digitAt(s, 17) * 10 + digitAt(s, 18);
  if (!(sec <= 59)) return undefined;
  const digits = end - 20;
  if (end > 19 && (s.charCodeAt(19) !== 46 /* . */ || digits < 1 || digits > 9)) return undefined;
  let fraction = 0;
  for (let i = 20; i < end; i++) fraction = fraction * 10 + digitAt(s, i);
  if (Number.isNaN(fraction)) return undefined;
  // "6805900" → 680 whole ms + 0.59 ms. The integer over its power of ten is the correctly rounded
  // value of the decimal fraction, as Number("0.6805900") is: the same double.
  const micro = end > 19 ? (fraction / POWERS_OF_TEN[digits]!) * 1000 : 0;
  return { ms: base - zone.offsetMs + sec * 1000 + Math.floor(micro), frac: micro - Math.floor(micro) };
}

/**
 * Where a timestamp's zone starts and its offset from UTC: "Z", "+HH:MM" or "+HHMM" (or "-"),
 * after the seconds; none is UTC. Undefined for a zone that is not one.
 */
function zoneOf(s: string): { end: number; offsetMs: number } | undefined {
  const n = s.length;
  if (s.charCodeAt(n - 1) === 90 /* Z */) return { end: n - 1, offsetMs: 0 };
  for (const colon of [true, false]) {
    const at = n - (colon ? 6 : 5);
    const sign = s.charCodeAt(at);
    if (at < 19 || (sign !== 43 /* + */ && sign !== 45) /* - */) continue;
    if (colon && s.charCodeAt(at + 3) !== 58 /* : */) return undefined;
    const hours = digitAt(s, at + 1) * 10 + digitAt(s, at + 2);
    const minutes = digitAt(s, n - 2) * 10 + digitAt(s, n - 1);
    if (!(hours <= 23 && minutes <= 59)) return undefined;
    return { end: at, offsetMs: (sign === 45 ? -1 : 1) * (hours * 60 + minutes) * 60_000 };
  }
  return { end: n, offsetMs: 0 };
}

/** Seconds as a decimal number >= 0 ("45", "0.000001", "5270414.0"): whole ms and the fraction of a ms. */
function parseSeconds(cell: string): { ms: number; frac: number } | undefined {
  if (!/^\d+(?:\.\d*)?$/.test(cell)) return undefined;
  const ms = Number(cell) * 1000;
  return { ms: Math.floor(ms), frac: ms - Math.floor(ms) };
}

/** "YYYY-MM-DD HH:MM" → that minute's ms since the epoch, for minutes already checked. */
const minuteCache = new Map<string, number>();
const POWERS_OF_TEN = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9] as const;

/** The digit at `i`, or NaN if it is not an ASCII digit. */
function digitAt(s: string, i: number): number {
  const d = s.charCodeAt(i) - 48;
  return d >= 0 && d <= 9 ? d : NaN;
}

function parseCount(s: string): number | undefined {
  const t = s.trim();
  if (!/^\d+$/.test(t)) return undefined;
  const n = Number(t);
  return n <= MAX_REQUEST_TOKENS ? n : undefined;
}

/** The token lengths of a trace's requests, in file order, packed (8 bytes a request). */
export interface TraceLengths {
  readonly file: string;
  readonly count: number;
  readonly promptTokens: Uint32Array;
  readonly outputTokens: Uint32Array;
}

/** Reads only the lengths of a trace (either format), for workloads that draw lengths from one. */
export function readLengths(file: string): TraceLengths {
  let prompt: Uint32Array = new Uint32Array(1024);
  let output: Uint32Array = new Uint32Array(1024);
  let count = 0;
  for (const r of traceRequests(file)) {
    if (count === prompt.length) {
      const grow = (a: Uint32Array): Uint32Array => {
        const b = new Uint32Array(a.length * 2);
        b.set(a);
        return b;
      };
      prompt = grow(prompt);
      output = grow(output);
    }
    prompt[count] = r.promptTokens;
    output[count] = r.outputTokens;
    count++;
  }
  return { file, count, promptTokens: prompt.subarray(0, count), outputTokens: output.subarray(0, count) };
}
