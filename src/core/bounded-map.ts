/**
 * A map that keeps at most `capacity` entries: setting one past that forgets the entry set
 * longest ago, so its memory stays fixed whatever comes. Setting a key again makes it the newest.
 */
export class BoundedMap<K, V> {
  /** Insertion order is the order of the last set: the first key is the one to forget. */
  readonly #entries = new Map<K, V>();
  readonly #capacity: number;

  constructor(capacity: number) {
    if (!(Number.isInteger(capacity) && capacity >= 1))
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.#capacity = capacity;
  }

  get(key: K): V | undefined {
    return this.#entries.get(key);
  }

  /** Sets `key` as the newest entry, and forgets the oldest past the capacity. */
  set(key: K, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    if (this.#entries.size > this.#capacity) this.#entries.delete(this.#entries.keys().next().value!);
  }

  get size(): number {
    return this.#entries.size;
  }
}
