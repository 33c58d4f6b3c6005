import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TraceError, parseTrace, readTrace } from '../../../../src/sim/cluster/trace.js';

const HEADER = 'TIMESTAMP,ContextTokens,GeneratedTokens';

describe('parseTrace', () => {
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

  it('accepts CRLF line ends and sorts rows given out of order (stable), keeping their line numbers', () => {
    const t = parseTrace(
      `${HEADER}\r\n2023-11-16 18:00:05,1,1\r\n2023-11-16 18:00:00,2,2\r\n2023-11-16 18:00:05,3,3\r\n`,
      'x.csv',
    );
    expect(t.map((r) => [r.arrivalMs, r.promptTokens, r.line])).toEqual([
      [0, 2, 3],
      [5000, 1, 2],
      [5000, 3, 4],
    ]);
  });

  const bad: [string, string, RegExp][] = [
    ['empty file', '', /^t\.csv: the trace is empty; expected a header/],
    ['header only', `${HEADER}\n`, /^t\.csv: the trace has a header but no requests/],
    [
      'wrong header',
      'time,in,out\n2023-11-16 18:00:00,1,1',
      /^t\.csv:1: expected the header "TIMESTAMP,ContextTokens,GeneratedTokens", got "time,in,out"/,
    ],
    [
      'too few fields',
      `${HEADER}\n2023-11-16 18:00:00,1,1\n2023-11-16 18:00:01,5`,
      /^t\.csv:3: expected 3 comma-separated fields .* got 2: "2023-11-16 18:00:01,5"/,
    ],
    [
      'bad timestamp',
      `${HEADER}\nyesterday,1,1`,
      /^t\.csv:2: expected a timestamp like "2023-11-16 18:15:46.6805900", got "yesterday"/,
    ],
    ['impossible date', `${HEADER}\n2023-02-30 18:00:00,1,1`, /^t\.csv:2: expected a timestamp/],
    ['minute 61', `${HEADER}\n2023-02-03 18:61:00,1,1`, /^t\.csv:2: expected a timestamp/],
    [
      'negative tokens',
      `${HEADER}\n2023-11-16 18:00:00,-4,1`,
      /^t\.csv:2: expected ContextTokens as a whole number >= 0, got "-4"/,
    ],
    [
      'fractional tokens',
      `${HEADER}\n2023-11-16 18:00:00,4,1.5`,
      /^t\.csv:2: expected GeneratedTokens as a whole number >= 0, got "1.5"/,
    ],
    [
      'blank line in the middle',
      `${HEADER}\n2023-11-16 18:00:00,4,1\n\n2023-11-16 18:00:01,4,1`,
      /^t\.csv:3: empty line/,
    ],
  ];
  it.each(bad)('%s → an error naming the file and line', (_label, text, message) => {
    expect(() => parseTrace(text, 't.csv')).toThrow(TraceError);
    expect(() => parseTrace(text, 't.csv')).toThrow(message);
  });
});

describe('readTrace', () => {
  it('names a missing file', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'trace-')), 'nope.csv');
    await expect(readTrace(path)).rejects.toThrow(`${path}: cannot read the trace (no such file)`);
  });

  it('reads the committed slice of the Azure conversation trace: 1000 requests over about 3.5 minutes', async () => {
    const t = await readTrace('test/fixtures/traces/azure-llm-2023-conv-head.csv');
    expect(t).toHaveLength(1000);
    expect(t[0]).toEqual({ arrivalMs: 0, promptTokens: 374, outputTokens: 44, line: 2 });
    expect(t.at(-1)!.arrivalMs / 1000).toBeCloseTo(216.03, 1);
  });

  it('reads a file it writes itself (round trip through the file system)', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'trace-')), 't.csv');
    writeFileSync(path, `${HEADER}\n2023-11-16 18:00:00,10,20`);
    expect(await readTrace(path)).toEqual([{ arrivalMs: 0, promptTokens: 10, outputTokens: 20, line: 2 }]);
  });
});
