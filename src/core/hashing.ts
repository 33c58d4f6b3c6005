/**
 * String hashing for the balancers, and prompt-block hashing in two cuts:
 *
 * - promptBlockHashes: the engine's blocks, as the engine simulator's prefix cache keys them
 *   (src/sim/engine-model.ts). A prompt is cut into blocks of PREFIX_BLOCK_CHARS characters;
 *   block i's hash covers blocks 0..i (each hash is seeded with the previous one), so equal
 *   hashes at position i mean equal prefixes of (i+1) blocks, as in vLLM's automatic prefix
 *   caching. A trailing partial block gets no hash (a partial block is never shared). 64
 *   characters ≈ 16 tokens at the usual ~4 characters per token: vLLM's default KV block size.
 * - prefixPoints: the router's view (src/core/balancer/prefix-cache.ts), chained the same way
 *   but read fast and kept sparse; see there.
 */
export const PREFIX_BLOCK_CHARS = 64;

/** Below this many characters, charCodeAt is cheaper than encoding the text first. */
const ENCODE_FROM_CHARS = 64;
const asciiEncoder = new TextEncoder();
let ascii = new Uint8Array(16 * 1024);

/**
 * FNV-1a, 32 bits, over the UTF-16 code units text.charCodeAt(0..to), starting from `seed`.
 * Deterministic on every platform.
 *
 * A long text is first encoded to UTF-8 in one native call: if its first `to` code units are all
 * ASCII, the bytes are those code units, and reading them from a typed array is twice as fast as
 * charCodeAt, which checks the string's representation on every call. Other text takes the
 * charCodeAt loop, with the same result.
 */
export function fnv1a(text: string, seed = 0x811c9dc5, to = text.length): number {
  const n = Math.min(to, text.length);
  let h = seed >>> 0;
  if (n >= ENCODE_FROM_CHARS) {
    if (ascii.length < n) ascii = new Uint8Array(Math.max(n, 2 * ascii.length));
    const { read, written } = asciiEncoder.encodeInto(text, ascii.subarray(0, n));
    if (read === n && written === n) {
      const b = ascii;
      for (let i = 0; i < n; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
      return h >>> 0;
    }
  }
  for (let i = 0; i < n; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * FNV-1a of the first `to` characters (default all) followed by murmur3's finaliser: FNV alone
 * leaves the high bits of short, similar strings ("w1#0", "w1#1", ...) correlated, which skews
 * a hash ring. The same on every platform and in every process (no seed), so gateway replicas
 * hashing the same text agree.
 */
export function hashString(text: string, to = text.length): number {
  let h = fnv1a(text, undefined, to);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Chained block hashes of `text`, one per full block: 32-bit signed integers, which V8 keeps
 * unboxed, so the engine simulator's cache maps of a million blocks stay fast (a wider hash is a
 * boxed double, and every Map operation on it about twice as slow). Two lanes are folded into each, so a false match
 * needs a 32-bit collision with a block cached on the same engine at the same depth of a
 * matching run: about (cached blocks) / 2³² per lookup, 6·10⁻⁶ for a full 440k-token cache.
 *
 *   promptBlockHashes('x'.repeat(130)).length === 2   (two full blocks of 64, 2 chars left over)
 */
export function promptBlockHashes(text: string, blockChars = PREFIX_BLOCK_CHARS): number[] {
  const out: number[] = [];
  // Both lanes in one pass over the characters: lane a is FNV-1a, lane b a multiply-xorshift
  // mix; each block's lanes start from the previous block's, which chains the prefix in.
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let end = blockChars; end <= text.length; end += blockChars) {
    for (let i = end - blockChars; i < end; i++) {
      const c = text.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
      b ^= b >>> 15;
    }
    out.push((a ^ Math.imul(b ^ (b >>> 16), 0x85ebca6b)) | 0);
  }
  return out;
}

/** Bytes of UTF-8 per router block: 16 tokens of English text, the engine's block size; 16 words, which prefixPoints reads unrolled. */
export const ROUTE_BLOCK_BYTES = 64;

/** Router blocks with a point each before the ladder thins out to 4 points per doubling of depth (16: 1 KiB). */
const DENSE_BLOCKS = 16;

/** A prompt's checkpoints: the chained hash of its first `ends[i]` UTF-8 bytes is `hashes[i]`. */
export interface PrefixPoints {
  /** 30-bit chained hashes (small integers: V8 keeps them unboxed, so Map lookups stay cheap). */
  readonly hashes: number[];
  /** Prefix length in bytes each hash covers, increasing. */
  readonly ends: number[];
  /** The whole prompt's length in bytes of UTF-8. */
  readonly bytes: number;
}

const encoder = new TextEncoder();
let scratch = new Uint8Array(64 * 1024);
let words = new Int32Array(scratch.buffer);

/** The deepest point at or before block `blocks`: every block up to DENSE_BLOCKS, then the ladder's last step. */
function lastPoint(blocks: number): number {
  if (blocks <= DENSE_BLOCKS) return blocks;
  let limit = DENSE_BLOCKS * 2;
  while (limit < blocks) limit *= 2;
  const step = limit / 8;
  return blocks - (blocks % step);
}

/**
 * Checkpoints of the chained prefix hash of `text`, for routing: one after each of the first
 * 16 blocks of ROUTE_BLOCK_BYTES, then 4 per doubling of depth (every 4th block up to 32, every
 * 8th up to 64, ...), so a 12k-token prompt (750 blocks) has 37 points and its match length is
 * known to within 1/4. Both ends of a match are on the same ladder, so two prompts sharing a
 * prefix share every point inside it.
 *
 * Speed is the reason for its shape: the text is encoded to UTF-8 in one native call and read
 * 4 bytes at a time in two independent lanes, a block's 16 words unrolled (~10 µs for 48k
 * characters where a charCodeAt loop takes ~150 µs); the bytes after the last point are not
 * hashed at all. The words are read in the platform's byte order: points are compared only
 * within one process (prefix-cache's own tree), never across gateways.
 *
 *   prefixPoints('x'.repeat(130)).ends  →  [64, 128]   (2 whole blocks; 2 bytes left over)
 */
export function prefixPoints(text: string): PrefixPoints {
  if (scratch.length < text.length * 3) {
    // A whole number of words (an Int32Array views it), room for 3 bytes of UTF-8 per code unit.
    const size = Math.max(text.length * 3, scratch.length * 2);
    scratch = new Uint8Array(size + (-size & 3));
    words = new Int32Array(scratch.buffer);
  }
  const bytes = encoder.encodeInto(text, scratch).written;
  const w = words;
  const hashes: number[] = [];
  const ends: number[] = [];
  const last = lastPoint(Math.floor(bytes / ROUTE_BLOCK_BYTES));
  let a = 0x811c9dc5 | 0;
  let b = 0x9747b28c | 0;
  // The next point, and the ladder's step and the depth up to which it holds: 1 up to 16, 4 up to 32, 8 up to 64, ...
  let next = 1;
  let step = 1;
  let limit = DENSE_BLOCKS;
  for (let d = 1, i = 0; d <= last; d++, i += ROUTE_BLOCK_BYTES / 4) {
    a = Math.imul(a ^ w[i]!, 0x01000193);
    b = Math.imul(b ^ w[i + 1]!, 0x5bd1e995);
    a = Math.imul(a ^ w[i + 2]!, 0x01000193);
    b = Math.imul(b ^ w[i + 3]!, 0x5bd1e995);
    a = Math.imul(a ^ w[i + 4]!, 0x01000193);
    b = Math.imul(b ^ w[i + 5]!, 0x5bd1e995);
    a = Math.imul(a ^ w[i + 6]!, 0x01000193);
    b = Math.imul(b ^ w[i + 7]!, 0x5bd1e995);
    a = Math.imul(a ^ w[i + 8]!, 0x01000193);
    b = Math.imul(b ^ w[i + 9]!, 0x5bd1e995);
    a = Math.imul(a ^ w[i + 10]!, 0x01000193);
    b = Math.imul(b ^ w[i + 11]!, 0x5bd1e995);
    a = Math.imul(a ^ w[i + 12]!, 0x01000193);
    b = Math.imul(b ^ w[i + 13]!, 0x5bd1e995);
    a = Math.imul(a ^ w[i + 14]!, 0x01000193);
    b = Math.imul(b ^ w[i + 15]!, 0x5bd1e995);
    // Fold lane b into a at every block, so each block's hash covers both lanes of all before it.
    a = Math.imul(a ^ (b >>> 15), 0x85ebca6b);
    a ^= a >>> 13;
    if (d === next) {
      hashes.push(a & 0x3fffffff);
      ends.push(d * ROUTE_BLOCK_BYTES);
      if (d === limit) {
        limit *= 2;
        step = limit / 8;
      }
      next = d + step;
    }
  }
  return { hashes, ends, bytes };
}
