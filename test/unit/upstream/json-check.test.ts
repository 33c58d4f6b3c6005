import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isJson } from '../../../src/upstream/json-check.js';

/** The reference: what the gateway did before, JSON.parse of the UTF-8 decoding. */
function parses(bytes: Buffer): boolean {
  try {
    JSON.parse(bytes.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

describe('isJson', () => {
  it.each([
    ['{}', true],
    ['[]', true],
    [' {"a": [1, -2.5e+3, true, false, null, "x\\n\\u00e9"]} ', true],
    ['"just a string"', true],
    ['0', true],
    ['-0.0e0', true],
    ['{"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":" worker"},"finish_reason":null}]}', true],
    ['', false],
    ['{', false],
    ['{"a":1,}', false],
    ['[1,]', false],
    ['{"a" 1}', false],
    ['{a:1}', false],
    ['01', false],
    ['1.', false],
    ['.5', false],
    ['1e', false],
    ['-', false],
    ['tru', false],
    ['nulls', false],
    ['"tab\there"', false],
    ['"bad \\x escape"', false],
    ['"\\u12G4"', false],
    ['"unterminated', false],
    ['{} {}', false],
    ['[1}', false],
    ['{"a":[1]]', false],
    ['\ufeff{}', false],
  ])('%j → %s, as JSON.parse says', (text, expected) => {
    const bytes = Buffer.from(text);
    expect(parses(bytes)).toBe(expected);
    expect(isJson(bytes)).toBe(expected);
  });

  it('reads only its range: bytes around it do not complete a text', () => {
    const buf = Buffer.from('x{"a":1}} trailing');
    expect(isJson(buf, 1, 7)).toBe(false); // {"a":1 without its brace
    expect(isJson(buf, 1, 8)).toBe(true);
    expect(isJson(buf.subarray(1, 7))).toBe(false); // a view reads the same
    // Cut inside a string, an escape, a number, a literal: what follows the end is not read.
    const cuts: [string, number][] = [
      ['"ab"', 3],
      ['"a\\n"', 3],
      ['"\\u0041"', 5],
      ['1.5e+10', 4],
      ['true', 3],
      ['[1,2]', 4],
    ];
    for (const [text, at] of cuts) {
      const b = Buffer.from(`${text} ${text}`);
      expect(isJson(b, 0, text.length)).toBe(true);
      expect(isJson(b, 0, at)).toBe(parses(b.subarray(0, at)));
    }
  });

  it('agrees with JSON.parse on generated JSON, on the same texts mutated, and on arbitrary strings', () => {
    const mutated = fc
      .tuple(
        fc.json(),
        fc.nat(),
        fc.constantFrom('', ',', '}', ']', '"', '\\', ' ', '0', '-', '.', 'e', '\n', '\u0001'),
        fc.boolean(),
      )
      .map(([text, at, ch, replace]) => {
        const i = text.length === 0 ? 0 : at % text.length;
        return text.slice(0, i) + ch + text.slice(replace ? i + 1 : i);
      });
    const text = fc.oneof(fc.json(), mutated, fc.string(), fc.string({ unit: 'binary' }));
    fc.assert(
      fc.property(text, (t) => {
        const bytes = Buffer.from(t);
        expect(isJson(bytes)).toBe(parses(bytes));
      }),
      { numRuns: 20_000, seed: 9 },
    );
  });

  it('a range inside other bytes answers as the same text alone', () => {
    const text = fc.oneof(fc.json(), fc.string());
    fc.assert(
      fc.property(text, fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 }), (t, before, after) => {
        const bytes = Buffer.from(t);
        const around = Buffer.concat([before, bytes, after]);
        expect(isJson(around, before.length, before.length + bytes.length)).toBe(parses(bytes));
      }),
      { numRuns: 20_000, seed: 9 },
    );
  });

  it('agrees on arbitrary bytes, invalid UTF-8 included', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (arr) => {
        const bytes = Buffer.from(arr);
        expect(isJson(bytes)).toBe(parses(bytes));
      }),
      { numRuns: 20_000, seed: 9 },
    );
  });
});
