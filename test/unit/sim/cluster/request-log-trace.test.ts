import Database from 'better-sqlite3';
import { mkdtempSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../../src/core/clock.js';
import { planWorkload } from '../../../../src/sim/cluster/cli.js';
import { parseSimulateArgs, type SimArgs } from '../../../../src/sim/cluster/args.js';
import { TraceError, scanTrace, traceFormat, traceRequests, traceWindow } from '../../../../src/sim/cluster/trace.js';
import { RequestLog, type RequestLogRow } from '../../../../src/telemetry/request-log.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'request-log-trace-'));
const quiet = { warn: () => {}, info: () => {} };

/** A row as the gateway's request observer writes it: arrival `at` (ms since the epoch), its counts. */
function row(at: number, prompt: number | null, completion: number | null, status = 200): RequestLogRow {
  return {
    timestamp: new Date(at).toISOString(),
    route: '/v1/chat/completions',
    method: 'POST',
    transport: 'http',
    worker: 'skypilot-worker-1',
    status,
    execution_time: 0.5,
    ttft: 0.1,
    queue_wait: 0,
    prompt_tokens: prompt,
    completion_tokens: completion,
    user: null,
    stream: 0,
    trace_id: null,
    request_id: null,
    request: null,
    response: null,
  };
}

/** A request log written by the gateway's own RequestLog, rows in the order given (the order answers end in). */
function writeLog(rows: RequestLogRow[], name = 'requests.sqlite'): string {
  const path = join(tmp(), name);
  const log = new RequestLog({ path, clock: new VirtualClock(), log: quiet });
  for (const r of rows) log.add(r);
  log.close();
  return path;
}

const T0 = Date.UTC(2026, 11, 7, 2, 0, 0);

/** This process's open file descriptors on `file` (Linux). */
const openHandles = (file: string): number =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === file;
    } catch {
      return false;
    }
  }).length;

describe('a request log as a trace', () => {
  it('reads the rows in arrival order (the log holds them in the order answers ended), arrivals from the first', () => {
    // A long answer that arrived first ends last, and is written last.
    const file = writeLog([row(T0 + 1500, 40, 7), row(T0 + 2250, 12, 3), row(T0, 900, 300)]);
    expect(traceFormat(file)).toBe('request-log');
    expect([...traceRequests(file)].map((r) => [r.arrivalMs, r.promptTokens, r.outputTokens])).toEqual([
      [0, 900, 300],
      [1500, 40, 7],
      [2250, 12, 3],
    ]);
  });

  it('leaves out the rows without both counts, and counts them', () => {
    // A 503 before any worker, and a stream whose answer reported no usage (no prompt count).
    const file = writeLog([
      row(T0, 10, 5),
      row(T0 + 100, null, null, 503),
      row(T0 + 200, null, 9),
      row(T0 + 300, 8, 2),
    ]);
    expect([...traceRequests(file)].map((r) => r.arrivalMs)).toEqual([0, 300]);
    expect(scanTrace(file)).toEqual({ format: 'request-log', requests: 2, lastArrivalMs: 300, leftOut: 2 });
  });

  it('is known by its SQLite header whatever its name, and read whatever its name', () => {
    const file = writeLog([row(T0, 10, 5), row(T0 + 1000, 20, 6)], 'traffic.csv');
    expect(traceFormat(file)).toBe('request-log');
    expect(scanTrace(file).requests).toBe(2);
  });

  it('stops reading at a window’s end and closes the file', () => {
    const file = writeLog(Array.from({ length: 50 }, (_, i) => row(T0 + i * 1000, 10, 5)));
    const window = [...traceWindow(traceRequests(file), { startMs: 10_000, endMs: 20_000 })];
    expect(window.map((r) => r.arrivalMs)).toEqual(Array.from({ length: 10 }, (_, i) => i * 1000));
    // The reader's connection is closed: this process holds the file open no more.
    expect(openHandles(file)).toBe(0);
  });

  it('plans from it: `simulate --trace LOG` replays the log’s requests and says what it left out', () => {
    const file = writeLog([row(T0, 10, 5), row(T0 + 500, null, null, 503), row(T0 + 1000, 20, 6)]);
    const planned = planWorkload(parseSimulateArgs(['--trace', file]) as SimArgs);
    expect([...planned.requests!()].map((r) => r.arrivalMs)).toEqual([0, 1000]);
    expect(planned.workload.label).toBe(`${file} (1 of the log’s requests left out: no token counts)`);
  });
});

describe('a request log that cannot be a trace is a clear error naming the file', () => {
  const sqlite = (sql: string): string => {
    const path = join(tmp(), 'other.sqlite');
    const db = new Database(path);
    db.exec(sql);
    db.close();
    return path;
  };

  it.each([
    ['no requests table', 'CREATE TABLE t (x)', /other\.sqlite: a SQLite file without a "requests" table/],
    [
      'a requests table without the counts',
      'CREATE TABLE requests (timestamp TEXT, status INTEGER)',
      /other\.sqlite: the "requests" table has no prompt_tokens, completion_tokens column/,
    ],
    [
      'no rows',
      'CREATE TABLE requests (timestamp TEXT, prompt_tokens INTEGER, completion_tokens INTEGER)',
      /other\.sqlite: the request log has no requests/,
    ],
    [
      'no row with both counts',
      `CREATE TABLE requests (timestamp TEXT, prompt_tokens INTEGER, completion_tokens INTEGER);
       INSERT INTO requests VALUES ('2026-12-07T02:00:00.000Z', NULL, 4)`,
      /none of the request log's 1 requests has both token counts .*stream_options\.include_usage/,
    ],
    [
      'a timestamp the log does not write',
      `CREATE TABLE requests (timestamp TEXT, prompt_tokens INTEGER, completion_tokens INTEGER);
       INSERT INTO requests VALUES ('2026-12-07T02:00:00.000Z', 3, 4), ('yesterday', 3, 4)`,
      /other\.sqlite: requests row 2: expected timestamp like "2026-12-07T02:33:56\.123Z", got "yesterday"/,
    ],
    [
      'a count that is not a whole number',
      `CREATE TABLE requests (timestamp TEXT, prompt_tokens INTEGER, completion_tokens INTEGER);
       INSERT INTO requests VALUES ('2026-12-07T02:00:00.000Z', 3.5, 4)`,
      /requests row 1: expected prompt_tokens as a whole number from 0 to 10000000, got 3\.5/,
    ],
  ])('%s', (_, sql, message) => {
    const file = sqlite(sql);
    expect(() => scanTrace(file)).toThrow(TraceError);
    expect(() => scanTrace(file)).toThrow(message);
  });

  it('a file that only starts like one (a truncated copy)', () => {
    const file = join(tmp(), 'cut.sqlite');
    writeFileSync(file, Buffer.concat([Buffer.from('SQLite format 3\0', 'latin1'), Buffer.alloc(84)]));
    expect(() => scanTrace(file)).toThrow(/cut\.sqlite: cannot (open|read) the request log/);
  });
});
