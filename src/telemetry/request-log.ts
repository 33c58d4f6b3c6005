import Database from 'better-sqlite3';
import type { Clock, TimerHandle } from '../core/clock.js';

/**
 * FlockServe's SQLite request log: one row per request in the `requests` table.
 *
 * Rows are buffered and written in batches by a timer, never on the request path.
 * Memory is bounded: past `maxBuffered` rows new ones are dropped and counted. Nothing
 * here throws at a caller: a file that cannot be opened, a full disk or a locked
 * database is logged (once per episode), counted as dropped rows, and retried at the
 * next flush; requests go on.
 *
 * better-sqlite3 is synchronous, so a flush holds the event loop for the batch's
 * insert: about 1 ms per 500 rows in one transaction, and at most `busyTimeoutMs` when
 * another process holds the write lock.
 */

export interface RequestLogRow {
  /** ISO 8601, when the request arrived. */
  readonly timestamp: string;
  readonly route: string;
  readonly method: string;
  readonly transport: string;
  readonly worker: string | null;
  readonly status: number;
  /** Seconds from arrival to the end of the answer (FlockServe's column). */
  readonly execution_time: number;
  readonly ttft: number | null;
  readonly queue_wait: number | null;
  readonly prompt_tokens: number | null;
  readonly completion_tokens: number | null;
  readonly user: string | null;
  readonly stream: number;
  readonly trace_id: string | null;
  /** The `x-request-id` the client sent or the gateway gave it (sent back on the answer). */
  readonly request_id: string | null;
  /** Bodies only with request_log_bodies. */
  readonly request: string | null;
  readonly response: string | null;
}

/** Column → SQLite type; FlockServe's `id`, `timestamp`, `request`, `response`, `execution_time`, `user` kept. */
const COLUMNS: Readonly<Record<keyof RequestLogRow, string>> = {
  timestamp: 'TEXT',
  route: 'TEXT',
  method: 'TEXT',
  transport: 'TEXT',
  worker: 'TEXT',
  status: 'INTEGER',
  execution_time: 'REAL',
  ttft: 'REAL',
  queue_wait: 'REAL',
  prompt_tokens: 'INTEGER',
  completion_tokens: 'INTEGER',
  user: 'TEXT',
  stream: 'INTEGER',
  trace_id: 'TEXT',
  request_id: 'TEXT',
  request: 'TEXT',
  response: 'TEXT',
};
const NAMES = Object.keys(COLUMNS) as (keyof RequestLogRow)[];
const TABLE = 'requests';

export interface RequestLogOptions {
  readonly path: string;
  readonly clock: Clock;
  readonly log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  /** Time between flushes; a full batch is flushed sooner. Default 1000 ms. */
  readonly flushIntervalMs?: number;
  /** Rows per transaction. Default 500. */
  readonly maxBatch?: number;
  /** Rows held in memory at most; more are dropped. Default 10 000 (a few MB without bodies). */
  readonly maxBuffered?: number;
  /** How long a write waits for another process's lock. Default 50 ms. */
  readonly busyTimeoutMs?: number;
}

type Insert = (rows: readonly RequestLogRow[]) => void;

export class RequestLog {
  readonly #options: Required<Omit<RequestLogOptions, 'log' | 'clock' | 'path'>> & RequestLogOptions;
  #buffer: RequestLogRow[] = [];
  #db: Database.Database | undefined;
  #insert: Insert | undefined;
  #timer: TimerHandle | undefined;
  #soon = false;
  #written = 0;
  #dropped = 0;
  /** The problem being reported, so one episode logs once (and its end logs once). */
  #failing: string | undefined;
  #closed = false;

  constructor(options: RequestLogOptions) {
    this.#options = { flushIntervalMs: 1000, maxBatch: 500, maxBuffered: 10_000, busyTimeoutMs: 50, ...options };
    this.#open();
    this.#schedule(this.#options.flushIntervalMs);
  }

  get stats(): { written: number; dropped: number; buffered: number } {
    return { written: this.#written, dropped: this.#dropped, buffered: this.#buffer.length };
  }

  /** Queues a row; O(1), never throws, never writes. */
  add(row: RequestLogRow): void {
    if (this.#closed) return;
    if (this.#buffer.length >= this.#options.maxBuffered) {
      this.#dropped++;
      this.#problem('buffer_full', `request log buffer full (${this.#options.maxBuffered} rows); dropping rows`);
      return;
    }
    this.#buffer.push(row);
    if (this.#buffer.length >= this.#options.maxBatch && !this.#soon) {
      // A full batch is written on the next turn of the event loop, not in this request.
      this.#soon = true;
      this.#timer?.cancel();
      this.#schedule(0);
    }
  }

  /** Writes everything buffered now. Called by the timer and by close(). */
  flush(): void {
    if (this.#buffer.length === 0) return;
    if (!this.#db && !this.#open()) {
      this.#dropped += this.#buffer.length;
      this.#buffer = [];
      return;
    }
    while (this.#buffer.length > 0) {
      const batch = this.#buffer.slice(0, this.#options.maxBatch);
      try {
        this.#insert!(batch);
      } catch (err) {
        const code = (err as { code?: string }).code ?? '';
        if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
          // Locked by another process: keep the rows for the next flush (the buffer bound still holds).
          this.#problem(code, `request log ${this.#options.path} is locked; will retry`, err);
          return;
        }
        this.#buffer.splice(0, batch.length);
        this.#dropped += batch.length;
        this.#problem(
          code || 'write',
          `request log ${this.#options.path}: write failed; ${batch.length} rows dropped`,
          err,
        );
        if (code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY' || code.startsWith('SQLITE_IOERR'))
          this.#reopenLater();
        continue;
      }
      this.#buffer.splice(0, batch.length);
      this.#written += batch.length;
      this.#recovered();
    }
  }

  /** Flushes what is buffered and closes the file. */
  close(): void {
    if (this.#closed) return;
    this.#timer?.cancel();
    this.flush();
    this.#closed = true;
    try {
      this.#db?.close();
    } catch {
      /* closing a broken handle: nothing left to save */
    }
    this.#db = undefined;
  }

  #schedule(ms: number): void {
    this.#timer = this.#options.clock.setTimer(ms, () => {
      this.#soon = false;
      this.flush();
      if (!this.#closed) this.#schedule(this.#options.flushIntervalMs);
    });
  }

  #open(): boolean {
    try {
      const db = new Database(this.#options.path, { timeout: this.#options.busyTimeoutMs });
      try {
        db.pragma('journal_mode = WAL');
        const cols = NAMES.map((n) => `${n} ${COLUMNS[n]}`).join(', ');
        db.exec(`CREATE TABLE IF NOT EXISTS ${TABLE} (id INTEGER PRIMARY KEY, ${cols})`);
        // A table from an older FlockServe has fewer columns: add the missing ones, as its add_new_column did.
        const have = new Set((db.pragma(`table_info(${TABLE})`) as { name: string }[]).map((c) => c.name));
        for (const n of NAMES) if (!have.has(n)) db.exec(`ALTER TABLE ${TABLE} ADD COLUMN ${n} ${COLUMNS[n]}`);
        const stmt = db.prepare(
          `INSERT INTO ${TABLE} (${NAMES.join(', ')}) VALUES (${NAMES.map((n) => '@' + n).join(', ')})`,
        );
        this.#insert = db.transaction((rows: readonly RequestLogRow[]) => {
          for (const r of rows) stmt.run(r);
        });
      } catch (err) {
        db.close();
        throw err;
      }
      this.#db = db;
      this.#recovered();
      return true;
    } catch (err) {
      this.#problem('open', `request log ${this.#options.path} cannot be opened; rows are dropped until it can`, err);
      return false;
    }
  }

  #reopenLater(): void {
    try {
      this.#db?.close();
    } catch {
      /* already broken */
    }
    this.#db = undefined;
    this.#insert = undefined;
  }

  #problem(kind: string, msg: string, err?: unknown): void {
    if (this.#failing === kind) return;
    this.#failing = kind;
    this.#options.log.warn({ path: this.#options.path, err: err === undefined ? undefined : String(err) }, msg);
  }

  #recovered(): void {
    if (this.#failing === undefined) return;
    this.#failing = undefined;
    this.#options.log.info({ path: this.#options.path, dropped: this.#dropped }, 'request log is writing again');
  }
}
