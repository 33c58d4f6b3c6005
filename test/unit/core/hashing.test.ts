import { describe, expect, it } from 'vitest';
import { ROUTE_BLOCK_BYTES, hashString, prefixPoints, promptBlockHashes } from '../../../src/core/hashing.js';

describe('prefixPoints (prefix-cache’s view of a prompt)', () => {
  /** [label, prompt bytes, expected ends (in blocks of 64 bytes)] */
  const ladders: [string, number, number[]][] = [
    ['a partial block has no point', 63, []],
    ['every block up to 16 (1 KiB)', 64 * 3 + 5, [1, 2, 3]],
    [
      'then 4 points per doubling: every 4th block to 32, every 8th to 64, every 16th to 128',
      64 * 130,
      [...Array.from({ length: 16 }, (_, i) => i + 1), 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128],
    ],
    [
      'the last point is the ladder step at or before the end: 750 blocks end at 640',
      64 * 750 + 9,
      [...Array.from({ length: 16 }, (_, i) => i + 1), 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128].concat([
        160, 192, 224, 256, 320, 384, 448, 512, 640,
      ]),
    ],
  ];
  it.each(ladders)('%s', (_label, bytes, blocks) => {
    const p = prefixPoints('x'.repeat(bytes));
    expect(p.ends).toEqual(blocks.map((b) => b * ROUTE_BLOCK_BYTES));
    expect(p.hashes).toHaveLength(blocks.length);
    expect(p.bytes).toBe(bytes);
  });

  it('a 12k-token prompt (48,000 characters) has 37 points', () => {
    expect(prefixPoints('y'.repeat(48_000)).hashes).toHaveLength(37);
  });

  it('prompts of any length (odd ones too) grow the buffer it encodes into', () => {
    for (const n of [50_001, 100_003, 200_005]) expect(prefixPoints('x'.repeat(n)).bytes).toBe(n);
  });

  it('the text after the last point changes no point, the text before it every point from there', () => {
    const base = 'y'.repeat(64 * 700);
    const p = prefixPoints(base);
    expect(prefixPoints(base + 'tail').hashes).toEqual(p.hashes);
    expect(prefixPoints(base.slice(0, 64 * 639) + 'z' + base.slice(64 * 639 + 1)).hashes.slice(0, -1)).toEqual(
      p.hashes.slice(0, -1),
    );
    expect(prefixPoints(base.slice(0, 64 * 639) + 'z' + base.slice(64 * 639 + 1)).hashes.at(-1)).not.toBe(
      p.hashes.at(-1),
    );
  });

  it('two prompts share exactly the points inside their common prefix', () => {
    const common = 'the same system prompt and document. '.repeat(80); // 2,960 chars
    const a = prefixPoints(common + 'question one? '.repeat(100));
    const b = prefixPoints(common + 'and another question. '.repeat(100));
    let shared = 0;
    while (a.hashes[shared] === b.hashes[shared]) shared++;
    expect(a.ends[shared - 1]).toBeLessThanOrEqual(common.length);
    expect(a.ends[shared]).toBeGreaterThan(common.length);
  });

  it('reads UTF-8: characters beyond Latin-1 count by their bytes and are told apart', () => {
    const p = prefixPoints('é'.repeat(64)); // 128 bytes
    expect(p.bytes).toBe(128);
    expect(p.ends).toEqual([64, 128]);
    // U+0100 and U+0200 differ only above the low byte.
    expect(prefixPoints('Ā'.repeat(64)).hashes).not.toEqual(prefixPoints('Ȁ'.repeat(64)).hashes);
  });

  it('gives small integers (unboxed in V8), the same for the same text, call after call', () => {
    const text = 'z'.repeat(5000);
    const first = prefixPoints(text).hashes;
    prefixPoints('another prompt that overwrites the scratch buffer'.repeat(200));
    expect(prefixPoints(text).hashes).toEqual(first);
    for (const h of first) expect(Number.isInteger(h) && h >= 0 && h < 2 ** 30).toBe(true);
  });
});

describe('hashString and promptBlockHashes', () => {
  it('hashString is a fixed function of the text (no per-process seed): gateway replicas agree', () => {
    // Pinned values: a change here would send a key to different workers from replicas running different versions.
    expect(hashString('session-1')).toBe(599268235);
    expect(hashString('gw-1#0')).toBe(3205705079);
    expect(hashString('abcdef', 3)).toBe(hashString('abc'));
    expect(hashString('abc', 100)).toBe(hashString('abc'));
    expect(hashString('w1#0')).not.toBe(hashString('w1#1'));
  });

  it('hashString reads long texts as their UTF-16 code units, surrogate pairs cut or not', () => {
    /** FNV-1a and the finaliser, one charCodeAt at a time: what hashString computes. */
    const reference = (text: string): number => {
      let h = 0x811c9dc5;
      for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
      h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
      h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
      return (h ^ (h >>> 16)) >>> 0;
    };
    const text = 'prompt é € 😀 \ud800 Ā '.repeat(400); // lone surrogates and pairs, 8,400 code units
    const plain = 'plain ASCII prompt, read from its UTF-8 bytes. '.repeat(200);
    for (const t of [text, plain, plain + 'é'])
      for (const to of [1, 63, 64, 65, 4095, 4096, 4097, t.length])
        expect(hashString(t, to), `first ${to}`).toBe(reference(t.slice(0, to)));
  });

  it('promptBlockHashes: one 32-bit integer per whole 64-character block, chained', () => {
    const a = promptBlockHashes('x'.repeat(130));
    expect(a).toHaveLength(2);
    for (const h of a) expect(h).toBe(h | 0);
    expect(promptBlockHashes('y' + 'x'.repeat(129))[1]).not.toBe(a[1]); // block 2 depends on block 1
  });
});
