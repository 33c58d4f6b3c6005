/**
 * Which keys came recently: a fixed table of `slots` 32-bit keys, one per slot, the slot
 * chosen by the key's low bits; a key is remembered until another key takes its slot. Fixed
 * memory (4 bytes a slot) and O(1) per question, whatever the traffic.
 *
 * Worked example, 65,536 slots: a key asked about again after 10,000 other distinct keys is
 * still there with probability (1 − 1/65,536)^10,000 ≈ 86%; after 65,536, ≈ 37%. Two keys
 * that share a slot push each other out (each then counts as new); two different keys are
 * never taken for one another, unless equal in all 32 bits.
 */
export class RecentKeys {
  readonly #keys: Uint32Array;
  readonly #mask: number;

  /** `slots` is a power of two. */
  constructor(slots: number) {
    if (!(Number.isInteger(slots) && slots >= 1 && (slots & (slots - 1)) === 0))
      throw new RangeError(`slots must be a power of two, got ${slots}`);
    this.#keys = new Uint32Array(slots);
    this.#mask = slots - 1;
  }

  /** Whether `key` (an unsigned 32-bit hash) was seen since its slot last changed hands; remembers it. */
  seen(key: number): boolean {
    // An empty slot holds 0, so key 0 is stored as 1: it then shares one tag with key 1.
    const tag = key === 0 ? 1 : key >>> 0;
    const slot = key & this.#mask;
    if (this.#keys[slot] === tag) return true;
    this.#keys[slot] = tag;
    return false;
  }
}
