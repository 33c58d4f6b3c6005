/**
 * String hashing for the balancers, and the prompt-block hashing shared by the prefix-aware balancer (src/core/balancer/prefix-cache.ts) and the
 * engine simulator's prefix cache (src/sim/engine-model.ts), so both cut a prompt the same way.
 *
 * A prompt is cut into blocks of PREFIX_BLOCK_CHARS characters; block i's hash covers blocks
 * 0..i (each hash is seeded with the previous one), so equal hashes at position i mean equal
 * prefixes of (i+1) blocks, as in vLLM's automatic prefix caching. A trailing partial block
 * gets no hash (a partial block is never shared).
 *
 * 64 characters ≈ 16 tokens at the usual ~4 characters per token: vLLM's default KV block size.
 */
export const PREFIX_BLOCK_CHARS = 64;

/** FNV-1a, 32 bits, over text.charCodeAt(from..to), starting from `seed`. */
export function fnv1a(text: string, seed = 0x811c9dc5, from = 0, to = text.length): number {
  let h = seed >>> 0;
  for (let i = from; i < to; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * FNV-1a followed by murmur3's finaliser: FNV alone leaves the high bits of short, similar
 * strings ("w1#0", "w1#1", ...) correlated, which skews a hash ring.
 */
export function hashString(text: string): number {
  let h = fnv1a(text);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Chained block hashes of `text`, one per full block, each a safe integer (53 bits:
 * 32 bits of FNV-1a and 21 of a second mix), so collisions stay negligible: about
 * n²/2⁵⁴ for n distinct blocks, 5·10⁻⁷ for a hundred thousand.
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
    out.push((a >>> 0) * 0x200000 + (b >>> 11));
  }
  return out;
}
