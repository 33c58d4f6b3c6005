import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  TraceError,
  parseTrace,
  readLengths,
  readTrace,
  scanTrace,
  traceFormat,
  traceRequests,
} from '../../../../src/sim/cluster/trace.js';

const HEADER = 'TIMESTAMP,ContextTokens,GeneratedTokens';
const BURSTGPT = 'Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type';
const MOONCAKE_HEAD = 'test/fixtures/traces/mooncake-synthetic-head.jsonl';
const CONV_HEAD = 'test/fixtures/traces/azure-llm-2023-conv-head.csv';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'trace-'));
const moon = (ts: number, input: number, output: number, ids: number[]): string =>
  JSON.stringify({ timestamp: ts, input_length: input, output_length: output, hash_ids: ids });

describe('parseTrace (Azure CSV)', () => {
  it('reads arrivals relative to the first request, with sub-millisecond timestamps', () => {
    const t = parseTrace(
      `${HEADER}\n2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.9951690,396,109\n2023-11-16 18:16:00,1,0\n`,
      'x.csv',
    );
    expect(t.map((r) => [r.arrivalMs, r.promptTokens, r.outputTokens, r.line])).toEqual([
      [0, 374, 44, 2],
      [expect.closeTo(4314.579, 6), 396, 109, 3],
      [expect.closeTo(13319.41, 6), 1, 0, 4],
    ]);
  });

  it('accepts CRLF line ends, equal timestamps, and the columns in any order', () => {
    const t = parseTrace(
      `GeneratedTokens,TIMESTAMP,ContextTokens\r\n1,2023-11-16 18:00:00,2\r\n3,2023-11-16 18:00:00,4\r\n5,2023-11-16 18:00:05,6\r\n`,
      'x.csv',
    );
    expect(t.map((r) => [r.arrivalMs, r.promptTokens, r.outputTokens, r.line])).toEqual([
      [0, 2, 1, 2],
      [0, 4, 3, 3],
      [5000, 6, 5, 4],
    ]);
  });
});

describe('parseTrace (Azure 2024 CSV: a UTC offset on every timestamp)', () => {
  it('reads "+00:00" timestamps, with and without a fraction, and converts other offsets to UTC', () => {
    const t = parseTrace(
      `${HEADER}\n2024-05-10 00:00:00.009930+00:00,2162,5\n2024-05-10 00:00:01+00:00,10,1\n2024-05-10 02:00:02.5+02:00,1,1\n2024-05-10 00:00:03Z,1,1\n2024-05-09 23:00:04-0100,1,1\n`,
      'AzureLLMInferenceTrace_code_1week.csv',
    );
    expect(t.map((r) => r.arrivalMs)).toEqual([
      0,
      expect.closeTo(990.07, 6),
      expect.closeTo(2490.07, 6),
      expect.closeTo(2990.07, 6),
      expect.closeTo(3990.07, 6),
    ]);
    expect(t[0]).toMatchObject({ promptTokens: 2162, outputTokens: 5, line: 2 });
  });
});

describe('parseTrace (BurstGPT CSV)', () => {
  it('reads Timestamp in seconds, Request and Response tokens; the other columns are ignored; times may start anywhere', () => {
    const t = parseTrace(
      `${BURSTGPT}\n5270414.0,ChatGPT,472,18,490,Conversation log\n5270414.25,GPT-4,1087,0,1087,API log\n5270459,ChatGPT,417,276,693,Conversation log\n`,
      'BurstGPT_2.csv',
    );
    expect(t.map((r) => [r.arrivalMs, r.promptTokens, r.outputTokens, r.line])).toEqual([
      [0, 472, 18, 2],
      [250, 1087, 0, 3],
      [45_000, 417, 276, 4],
    ]);
  });

  it('BurstGPT_3: the session and elapsed-time columns in between', () => {
    const t = parseTrace(
      'Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens,Log Type\n1,a,0.5,ChatGPT,10,20,30,Conversation log\n3,b,0.7,ChatGPT,11,21,32,Conversation log\n',
      'BurstGPT_3.csv',
    );
    expect(t.map((r) => [r.arrivalMs, r.promptTokens, r.outputTokens])).toEqual([
      [0, 10, 20],
      [2000, 11, 21],
    ]);
  });
});

describe('parseTrace (Mooncake JSON lines)', () => {
  it('reads timestamp (ms), lengths and block ids, told apart from CSV by the first line', () => {
    const t = parseTrace(`${moon(100, 600, 7, [1, 2])}\n${moon(100, 30, 1, [1])}\n${moon(350.5, 0, 2, [])}\n`, 'x');
    expect(t).toEqual([
      { arrivalMs: 0, promptTokens: 600, outputTokens: 7, line: 1, hashIds: [1, 2] },
      { arrivalMs: 0, promptTokens: 30, outputTokens: 1, line: 2, hashIds: [1] },
      { arrivalMs: 250.5, promptTokens: 0, outputTokens: 2, line: 3, hashIds: [] },
    ]);
  });

  it('reads the committed slice of the Mooncake synthetic trace: 200 requests, shared prefixes', async () => {
    const t = await readTrace(MOONCAKE_HEAD);
    expect(t).toHaveLength(200);
    expect(t[0]).toMatchObject({ arrivalMs: 0, promptTokens: 40160, outputTokens: 6, line: 1 });
    expect(t[0]!.hashIds).toHaveLength(79); // ⌈40,160 / 512⌉
    expect(t.at(-1)!.arrivalMs).toBe(58501);
    const seen = new Map<number, number>();
    for (const r of t) for (const id of r.hashIds!) seen.set(id, (seen.get(id) ?? 0) + 1);
    expect([...seen.values()].filter((n) => n > 1).length).toBeGreaterThan(100);
  });
});

/** A table of broken files → the message, for both formats; each read from a file, as a stream. */
const BROKEN: [label: string, name: string, text: string, message: RegExp][] = [
  ['empty file', 't.csv', '', /^F: the trace is empty; expected a CSV header/],
  ['empty file (jsonl)', 't.jsonl', '', /^F: the trace is empty/],
  ['blank lines only', 't', '\n\n', /^F: the trace is empty/],
  ['header only', 't.csv', `${HEADER}\n`, /^F: the trace has a header but no requests/],
  [
    'missing column',
    't.csv',
    'TIMESTAMP,ContextTokens\n2023-11-16 18:00:00,1',
    /^F:1: expected the header "TIMESTAMP,ContextTokens,GeneratedTokens" or "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type", got "TIMESTAMP,ContextTokens" \(no GeneratedTokens column\)/,
  ],
  [
    'too few fields',
    't.csv',
    `${HEADER}\n2023-11-16 18:00:00,1,1\n2023-11-16 18:00:01,5`,
    /^F:3: expected 3 comma-separated fields .* got 2: "2023-11-16 18:00:01,5"/,
  ],
  [
    'bad timestamp',
    't.csv',
    `${HEADER}\nyesterday,1,1`,
    /^F:2: expected TIMESTAMP as a timestamp like "2023-11-16 18:15:46.6805900" or "2024-05-10 00:00:00.009930\+00:00", got "yesterday"/,
  ],
  ['missing timestamp', 't.csv', `${HEADER}\n,1,1`, /^F:2: expected TIMESTAMP as a timestamp like .*, got none/],
  ['impossible date', 't.csv', `${HEADER}\n2023-02-30 18:00:00,1,1`, /^F:2: expected TIMESTAMP as a timestamp/],
  [
    'second 60 in a minute already read',
    't.csv',
    `${HEADER}\n2023-11-16 18:00:59,1,1\n2023-11-16 18:00:60,1,1`,
    /^F:3: expected TIMESTAMP as a timestamp like .*, got "2023-11-16 18:00:60"/,
  ],
  [
    'a zone that is not one',
    't.csv',
    `${HEADER}\n2024-05-10 00:00:01+00:00,1,1\n2024-05-10 00:00:02+25:00,1,1`,
    /^F:3: expected TIMESTAMP as a timestamp like .*, got "2024-05-10 00:00:02\+25:00"/,
  ],
  [
    'BurstGPT time not a number of seconds',
    't.csv',
    `${BURSTGPT}\n5,ChatGPT,1,1,2,Conversation log\n-3,ChatGPT,1,1,2,Conversation log`,
    /^F:3: expected Timestamp as seconds >= 0 \(as BurstGPT's Timestamp\), got "-3"/,
  ],
  [
    'BurstGPT tokens missing',
    't.csv',
    `${BURSTGPT}\n5,ChatGPT,,1,2,Conversation log`,
    /^F:2: expected Request tokens as a whole number from 0 to 10000000, got ""/,
  ],
  [
    'garbage after the seconds',
    't.csv',
    `${HEADER}\n2023-11-16 18:00:01,1,1\n2023-11-16 18:00:02.5s,1,1`,
    /^F:3: expected TIMESTAMP as a timestamp like .*, got "2023-11-16 18:00:02\.5s"/,
  ],
  [
    'unsorted timestamps',
    't.csv',
    `${HEADER}\n2023-11-16 18:00:05,1,1\n2023-11-16 18:00:04.9,1,1`,
    /^F:3: timestamp 2023-11-16 18:00:04\.9 is earlier than line 2's \(2023-11-16 18:00:05\); the trace must be sorted by time/,
  ],
  [
    'negative tokens',
    't.csv',
    `${HEADER}\n2023-11-16 18:00:00,-4,1`,
    /^F:2: expected ContextTokens as a whole number from 0 to 10000000, got "-4"/,
  ],
  [
    'non-numeric tokens',
    't.csv',
    `${HEADER}\n2023-11-16 18:00:00,4,many`,
    /^F:2: expected GeneratedTokens as a whole number from 0 to 10000000, got "many"/,
  ],
  [
    'blank line in the middle',
    't.csv',
    `${HEADER}\n2023-11-16 18:00:00,4,1\n\n2023-11-16 18:00:01,4,1`,
    /^F:3: empty line/,
  ],
  [
    'Mooncake line not JSON',
    't.jsonl',
    `${moon(0, 1, 1, [0])}\n{"timestamp": 5, oops}\n`,
    /^F:2: not JSON \(.*\): "\{"timestamp": 5, oops\}"/,
  ],
  ['Mooncake line not an object', 't.jsonl', '[1, 2, 3]\n', /^F:1: expected a JSON object .*, got \[1, 2, 3\]/],
  [
    'Mooncake missing timestamp',
    't.jsonl',
    '{"input_length": 1, "output_length": 1, "hash_ids": []}',
    /^F:1: missing "timestamp"/,
  ],
  [
    'Mooncake missing hash_ids',
    't.jsonl',
    '{"timestamp": 0, "input_length": 1, "output_length": 1}',
    /^F:1: missing "hash_ids"/,
  ],
  [
    'Mooncake negative length',
    't.jsonl',
    moon(0, -3, 1, []),
    /^F:1: expected "input_length" as a whole number from 0 to 10000000, got -3/,
  ],
  [
    'Mooncake length as a string',
    't.jsonl',
    '{"timestamp": 0, "input_length": 3, "output_length": "7", "hash_ids": []}',
    /^F:1: expected "output_length" as a whole number from 0 to 10000000, got "7"/,
  ],
  [
    'Mooncake bad block id',
    't.jsonl',
    '{"timestamp": 0, "input_length": 3, "output_length": 7, "hash_ids": [1, "x"]}',
    /^F:1: expected "hash_ids" as an array of whole numbers >= 0/,
  ],
  [
    'Mooncake unsorted',
    't.jsonl',
    `${moon(10, 1, 1, [0])}\n${moon(20, 1, 1, [1])}\n${moon(15, 1, 1, [2])}`,
    /^F:3: timestamp 15 is earlier than line 2's \(20\); the trace must be sorted by time/,
  ],
  [
    'tokens past any context (they would wrap at 2^32 where lengths are packed)',
    't.csv',
    `${HEADER}\n2023-11-16 18:00:00,4294967396,1`,
    /^F:2: expected ContextTokens as a whole number from 0 to 10000000, got "4294967396"/,
  ],
  [
    'Mooncake length past any context',
    't.jsonl',
    moon(0, 1e12, 1, []),
    /^F:1: expected "input_length" as a whole number from 0 to 10000000, got 1000000000000/,
  ],
  [
    'Mooncake negative timestamp',
    't.jsonl',
    moon(-1, 1, 1, []),
    /^F:1: expected "timestamp" as milliseconds >= 0, got -1/,
  ],
];

describe('broken traces', () => {
  it.each(BROKEN)('%s → a TraceError naming the file and line', (_label, name, text, message) => {
    const file = join(tmp(), name);
    writeFileSync(file, text);
    const want = new RegExp(message.source.replace(/^\^F/, `^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    expect(() => [...traceRequests(file)]).toThrow(TraceError);
    expect(() => [...traceRequests(file)]).toThrow(want);
    // parseTrace (text) reports the same.
    expect(() => parseTrace(text, name)).toThrow(
      new RegExp(message.source.replace(/^\^F/, `^${name.replace('.', '\\.')}`)),
    );
  });

  it('a bad line late in a file stops the read there, after the good lines before it were yielded', () => {
    const file = join(tmp(), 'late.jsonl');
    writeFileSync(file, [moon(0, 1, 1, []), moon(1, 1, 1, []), 'nope'].join('\n'));
    const it = traceRequests(file);
    expect(it.next().value).toMatchObject({ line: 1 });
    expect(it.next().value).toMatchObject({ line: 2 });
    expect(() => it.next()).toThrow(`${file}:3: not JSON`);
  });

  it('names a missing file and a directory', async () => {
    const dir = tmp();
    const path = join(dir, 'nope.csv');
    await expect(readTrace(path)).rejects.toThrow(`${path}: cannot read the trace (no such file)`);
    expect(() => [...traceRequests(dir)]).toThrow(`${dir}: cannot read the trace (a directory)`);
  });
});

describe('reading files', () => {
  it('reads the committed slice of the Azure conversation trace: 1000 requests over about 3.5 minutes', async () => {
    const t = await readTrace(CONV_HEAD);
    expect(t).toHaveLength(1000);
    expect(t[0]).toEqual({ arrivalMs: 0, promptTokens: 374, outputTokens: 44, line: 2 });
    expect(t.at(-1)!.arrivalMs / 1000).toBeCloseTo(216.03, 1);
    expect(scanTrace(CONV_HEAD)).toEqual({
      format: 'azure-csv',
      requests: 1000,
      lastArrivalMs: t.at(-1)!.arrivalMs,
      leftOut: 0,
    });
  });

  it('tells the formats apart by extension, else by the first line', () => {
    const dir = tmp();
    const noExt = join(dir, 'trace');
    writeFileSync(noExt, moon(0, 1, 1, [0]));
    expect(traceFormat(noExt)).toBe('mooncake');
    expect([...traceRequests(noExt)]).toHaveLength(1);
    writeFileSync(join(dir, 'b'), `${HEADER}\n2023-11-16 18:00:00,10,20`);
    expect(traceFormat(join(dir, 'b'))).toBe('azure-csv');
    expect(traceFormat(MOONCAKE_HEAD)).toBe('mooncake');
    writeFileSync(join(dir, 'burst.csv'), `${BURSTGPT}\n5,ChatGPT,10,20,30,Conversation log`);
    expect(traceFormat(join(dir, 'burst.csv'))).toBe('burstgpt-csv');
    expect(scanTrace(join(dir, 'burst.csv'))).toEqual({
      format: 'burstgpt-csv',
      requests: 1,
      lastArrivalMs: 0,
      leftOut: 0,
    });
  });

  it('readLengths packs the lengths of either format, in file order', () => {
    const moonLengths = readLengths(MOONCAKE_HEAD);
    expect(moonLengths.count).toBe(200);
    expect([...moonLengths.promptTokens.slice(0, 3)]).toEqual([40160, 36640, 23769]);
    const conv = readLengths(CONV_HEAD);
    expect(conv.count).toBe(1000);
    expect([conv.promptTokens[0], conv.outputTokens[0]]).toEqual([374, 44]);
  });

  it('a file without a final line end, and one whose lines span the 1 MiB read chunks, read whole', () => {
    const file = join(tmp(), 'big.csv');
    // ≈ 2.4 MB: several chunk edges fall inside lines.
    const rows = Array.from(
      { length: 60_000 },
      (_, i) =>
        `2023-11-16 18:${String(Math.floor(i / 1000)).padStart(2, '0')}:00.${String(i % 1000).padStart(3, '0')},${i},${i % 7}`,
    );
    writeFileSync(file, `${HEADER}\n${rows.join('\n')}`);
    let n = 0;
    for (const r of traceRequests(file)) {
      expect(r.promptTokens).toBe(n);
      n++;
    }
    expect(n).toBe(60_000);
  });

  it('streams a million-row trace with memory bounded (no array of requests is built)', () => {
    const file = join(tmp(), 'million.jsonl');
    const line = (i: number): string =>
      `{"timestamp": ${i}, "input_length": 700, "output_length": 5, "hash_ids": [${i}, ${i + 1}]}`;
    const chunk = (from: number): string => Array.from({ length: 100_000 }, (_, k) => line(from + k)).join('\n') + '\n';
    writeFileSync(file, '');
    for (let i = 0; i < 1_000_000; i += 100_000) writeFileSync(file, chunk(i), { flag: 'a' });
    const before = process.memoryUsage().heapUsed;
    let peak = before;
    let n = 0;
    for (const r of traceRequests(file)) {
      n++;
      if (n % 50_000 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed);
      if (r.line !== n) throw new Error(`line ${r.line} at ${n}`);
    }
    expect(n).toBe(1_000_000);
    // Holding the million requests would take well over 100 MB of heap; a stream needs a few chunks.
    expect((peak - before) / 2 ** 20).toBeLessThan(64);
  }, 30_000);
});

describe('files that are not a trace as they stand', () => {
  it('a gzip-compressed trace is named so', () => {
    const file = join(tmp(), 'g.jsonl');
    writeFileSync(file, gzipSync(moon(0, 1, 1, [])));
    expect(() => [...traceRequests(file)]).toThrow(/the file is gzip-compressed; decompress it first/);
  });

  it('a byte order mark before a JSON lines trace is dropped, as before a CSV header', () => {
    const file = join(tmp(), 'bom.jsonl');
    writeFileSync(file, '\uFEFF' + moon(0, 5, 1, []));
    expect([...traceRequests(file)]).toMatchObject([{ promptTokens: 5 }]);
  });

  it('a line over a MiB stops the read at once, without echoing it', () => {
    const file = join(tmp(), 'long.csv');
    writeFileSync(file, 'x'.repeat(3 << 20));
    let message = '';
    try {
      Array.from(traceRequests(file));
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/:1: a line over 1048576 characters; not a trace's row/);
    expect(message.length).toBeLessThan(300);
  });
});
