import Database from 'better-sqlite3';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/core/clock.js';
import { RequestLog, type RequestLogRow } from '../../../src/telemetry/request-log.js';

const dirs: string[] = [];
const dir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'flockserve-reqlog-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) {
    chmodSync(d, 0o700); // a case makes its directory read-only
    rmSync(d, { recursive: true, force: true });
  }
});

function row(i: number, over: Partial<RequestLogRow> = {}): RequestLogRow {
  return {
    timestamp: new Date(1_700_000_000_000 + i).toISOString(),
    route: '/v1/chat/completions',
    method: 'POST',
    transport: 'http',
    worker: 'w-0',
    status: 200,
    execution_time: 0.5,
    ttft: null,
    queue_wait: 0,
    prompt_tokens: 3,
    completion_tokens: i,
    user: null,
    stream: 0,
    trace_id: null,
    request_id: `req-${i}`,
    request: null,
    response: null,
    ...over,
  };
}

function recorder() {
  const lines: { level: string; msg: string }[] = [];
  return {
    lines,
    log: {
      warn: (_o: object, msg: string) => lines.push({ level: 'warn', msg }),
      info: (_o: object, msg: string) => lines.push({ level: 'info', msg }),
    },
  };
}

const count = (path: string): number => {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM requests').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

describe('RequestLog', () => {
  it('writes rows on the flush timer, not when they are added (timeline)', () => {
    const clock = new VirtualClock();
    const path = join(dir(), 'requests.db');
    const { log } = recorder();
    const rl = new RequestLog({ path, clock, log, flushIntervalMs: 1000 });
    rl.add(row(1));
    rl.add(row(2, { user: 'alice', stream: 1, ttft: 0.1 }));
    expect(count(path)).toBe(0); //      t=0: buffered
    clock.advance(999);
    expect(count(path)).toBe(0); //      t=999 ms
    clock.advance(1);
    expect(count(path)).toBe(2); //      t=1 s: flushed
    expect(rl.stats).toEqual({ written: 2, dropped: 0, buffered: 0 });
    rl.close();
    const db = new Database(path, { readonly: true });
    const got = db
      .prepare('SELECT route, worker, status, completion_tokens, user, stream, ttft FROM requests ORDER BY id')
      .all();
    db.close();
    expect(got).toEqual([
      {
        route: '/v1/chat/completions',
        worker: 'w-0',
        status: 200,
        completion_tokens: 1,
        user: null,
        stream: 0,
        ttft: null,
      },
      {
        route: '/v1/chat/completions',
        worker: 'w-0',
        status: 200,
        completion_tokens: 2,
        user: 'alice',
        stream: 1,
        ttft: 0.1,
      },
    ]);
  });

  it('a full batch is written on the next timer turn; close() writes the rest', () => {
    const clock = new VirtualClock();
    const path = join(dir(), 'r.db');
    const rl = new RequestLog({ path, clock, log: recorder().log, maxBatch: 3, flushIntervalMs: 60_000 });
    for (let i = 0; i < 4; i++) rl.add(row(i));
    expect(count(path)).toBe(0);
    clock.advance(0);
    expect(count(path)).toBe(4);
    rl.add(row(9));
    rl.close();
    expect(count(path)).toBe(5);
    rl.add(row(10)); // after close: ignored, no throw
  });

  it('bounded memory: past maxBuffered rows are dropped and counted, one warning', () => {
    const clock = new VirtualClock();
    const path = join(dir(), 'r.db');
    const { log, lines } = recorder();
    const rl = new RequestLog({ path, clock, log, maxBuffered: 5, maxBatch: 100 });
    for (let i = 0; i < 8; i++) rl.add(row(i));
    expect(rl.stats).toEqual({ written: 0, dropped: 3, buffered: 5 });
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1);
    clock.advance(1000);
    expect(count(path)).toBe(5);
    rl.close();
  });

  it('an unwritable path: logged, rows dropped and counted, nothing thrown', () => {
    const clock = new VirtualClock();
    const d = dir();
    chmodSync(d, 0o500);
    const { log, lines } = recorder();
    const rl = new RequestLog({ path: join(d, 'sub', 'r.db'), clock, log });
    for (let i = 0; i < 3; i++) rl.add(row(i));
    clock.advance(1000);
    rl.add(row(4));
    clock.advance(1000);
    expect(rl.stats).toEqual({ written: 0, dropped: 4, buffered: 0 });
    // One warning for the episode, not one per flush.
    expect(lines.filter((l) => l.level === 'warn' && l.msg.includes('cannot be opened'))).toHaveLength(1);
    rl.close();
  });

  it('a database locked by another process: rows wait and are written once it is free', () => {
    const clock = new VirtualClock();
    const path = join(dir(), 'r.db');
    const { log, lines } = recorder();
    const rl = new RequestLog({ path, clock, log, busyTimeoutMs: 1 });
    const other = new Database(path);
    other.exec('BEGIN EXCLUSIVE');
    rl.add(row(1));
    clock.advance(1000);
    expect(rl.stats).toMatchObject({ written: 0, dropped: 0, buffered: 1 });
    expect(lines.some((l) => l.msg.includes('locked'))).toBe(true);
    other.exec('COMMIT');
    other.close();
    clock.advance(1000);
    expect(rl.stats).toMatchObject({ written: 1, buffered: 0 });
    expect(lines.at(-1)?.msg).toBe('request log is writing again');
    rl.close();
  });

  it('an older FlockServe table gets the missing columns added', () => {
    const path = join(dir(), 'flockserve.db');
    const old = new Database(path);
    old.exec(
      'CREATE TABLE requests (id INTEGER PRIMARY KEY, timestamp TEXT, request TEXT, response TEXT, execution_time REAL, user TEXT)',
    );
    old.exec("INSERT INTO requests (timestamp, execution_time) VALUES ('2024-01-01', 1.0)");
    old.close();
    const clock = new VirtualClock();
    const rl = new RequestLog({ path, clock, log: recorder().log });
    rl.add(row(1));
    rl.close();
    expect(count(path)).toBe(2);
  });

  it('a table from before request ids gets the column: old rows read as null, new rows carry the id', () => {
    const path = join(dir(), 'flockserve.db');
    const before = new RequestLog({ path, clock: new VirtualClock(), log: recorder().log });
    before.close();
    const old = new Database(path);
    old.exec('ALTER TABLE requests DROP COLUMN request_id');
    old.exec("INSERT INTO requests (timestamp, route, status) VALUES ('2024-01-01', '/v1/completions', 200)");
    old.close();
    const rl = new RequestLog({ path, clock: new VirtualClock(), log: recorder().log });
    rl.add(row(7));
    rl.close();
    const db = new Database(path, { readonly: true });
    const ids = db.prepare('SELECT request_id FROM requests ORDER BY id').all();
    db.close();
    expect(ids).toEqual([{ request_id: null }, { request_id: 'req-7' }]);
  });
});
