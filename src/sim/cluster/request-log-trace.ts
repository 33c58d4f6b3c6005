import Database from 'better-sqlite3';
import { closeSync, openSync, readSync } from 'node:fs';
import { MAX_REQUEST_TOKENS, TraceError, type TraceRequest } from './trace-types.js';

/**
 * FlockServe's own request log (`--request_log`, a SQLite file with one row per request) read as
 * a trace: each row's arrival (`timestamp`) and its `prompt_tokens` and `completion_tokens`. So
 * `flockserve plan --trace requests.sqlite` sizes a fleet for the traffic the gateway served.
 *
 * A row whose counts are unknown cannot be replayed: the request failed before a worker answered,
 * or its answer reported no usage (a stream without `stream_options.include_usage` has no prompt
 * count). Those rows are left out and counted (requestLogScan), not guessed. Rows are read in
 * arrival order, one at a time: a log of millions of rows is never in memory at once.
 */

/** The first 16 bytes of every SQLite 3 database file. */
const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/** True when `file` is a SQLite database (by its header, whatever its name). */
export function isRequestLog(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const head = Buffer.alloc(SQLITE_MAGIC.length);
    return readSync(fd, head, 0, head.length, 0) === head.length && head.equals(SQLITE_MAGIC);
  } catch {
    return false; // unreadable: the trace reader says why
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** How many of the log's requests can be replayed, and how many are left out for unknown counts. */
export interface RequestLogScan {
  readonly replayable: number;
  readonly leftOut: number;
}

const COUNTED = 'prompt_tokens IS NOT NULL AND completion_tokens IS NOT NULL';

/** Opens the log read-only and checks it has the request log's table and columns. */
function openLog(file: string): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new TraceError(`${file}: cannot open the request log (${(err as Error).message})`, { cause: err });
  }
  try {
    const columns = new Set(
      (db.prepare(`SELECT name FROM pragma_table_info('requests')`).all() as { name: string }[]).map((c) => c.name),
    );
    const missing = ['timestamp', 'prompt_tokens', 'completion_tokens'].filter((c) => !columns.has(c));
    if (columns.size === 0)
      throw new TraceError(`${file}: a SQLite file without a "requests" table; expected FlockServe's request log`);
    if (missing.length > 0)
      throw new TraceError(
        `${file}: the "requests" table has no ${missing.join(', ')} column; expected FlockServe's request log`,
      );
    return db;
  } catch (err) {
    db.close();
    if (err instanceof TraceError) throw err;
    throw new TraceError(`${file}: cannot read the request log (${(err as Error).message})`, { cause: err });
  }
}

/** The log's replayable requests and the ones left out; a log with none to replay is a TraceError. */
export function requestLogScan(file: string): RequestLogScan {
  const db = openLog(file);
  try {
    const { replayable, leftOut } = db
      .prepare(`SELECT SUM(${COUNTED}) AS replayable, SUM(NOT (${COUNTED})) AS leftOut FROM requests`)
      .get() as { replayable: number | null; leftOut: number | null };
    if (!replayable)
      throw new TraceError(
        leftOut
          ? `${file}: none of the request log's ${leftOut} requests has both token counts (failed before a worker answered, or answered without usage: streams need stream_options.include_usage)`
          : `${file}: the request log has no requests`,
      );
    return { replayable, leftOut: leftOut ?? 0 };
  } finally {
    db.close();
  }
}

const isCount = (v: unknown): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_REQUEST_TOKENS;

/** "2026-12-07T02:33:56.123Z", as the request log writes it (Date.toISOString). */
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * The log's requests with both token counts, in arrival order, arrivals relative to the first;
 * `line` is the row's id. A row whose timestamp or counts are not what the log writes is a
 * TraceError naming it.
 */
export function* requestLogRequests(file: string): Generator<TraceRequest, void, undefined> {
  const db = openLog(file);
  try {
    const rows = db
      .prepare(
        `SELECT rowid AS id, timestamp, prompt_tokens AS prompt, completion_tokens AS completion FROM requests WHERE ${COUNTED} ORDER BY timestamp, rowid`,
      )
      .iterate() as IterableIterator<{ id: number; timestamp: unknown; prompt: unknown; completion: unknown }>;
    let origin: number | undefined;
    for (const r of rows) {
      // Messages are built only on the error paths: this loop runs once per request of the log.
      const where = (): string => `${file}: requests row ${r.id}`;
      const at = typeof r.timestamp === 'string' && ISO.test(r.timestamp) ? Date.parse(r.timestamp) : NaN;
      if (!Number.isFinite(at))
        throw new TraceError(
          `${where()}: expected timestamp like "2026-12-07T02:33:56.123Z", got ${JSON.stringify(r.timestamp)}`,
        );
      if (!isCount(r.prompt))
        throw new TraceError(
          `${where()}: expected prompt_tokens as a whole number from 0 to ${MAX_REQUEST_TOKENS}, got ${JSON.stringify(r.prompt)}`,
        );
      if (!isCount(r.completion))
        throw new TraceError(
          `${where()}: expected completion_tokens as a whole number from 0 to ${MAX_REQUEST_TOKENS}, got ${JSON.stringify(r.completion)}`,
        );
      origin ??= at;
      yield { arrivalMs: at - origin, promptTokens: r.prompt, outputTokens: r.completion, line: r.id };
    }
  } finally {
    db.close();
  }
}
