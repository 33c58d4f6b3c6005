/** An item of a LinkedList: the list keeps its neighbours on the item itself. */
export interface Linked<T> {
  prev: T | undefined;
  next: T | undefined;
}

/**
 * Items in the order they were put (add appends, insertAfter places) with O(1) add, insert,
 * delete from anywhere, and size; for the per-request sets of the data path (requests running,
 * requests waiting for a slot).
 *
 * Why not a Set: a Set that sees one add and one delete per request rehashes its table every
 * few dozen requests, and a table the GC has already moved to the old generation still points
 * at the items it held. Until the next full GC those stale pointers keep each request's objects
 * (and everything they reach) alive through young-generation collections, which then promote
 * them: at about 5,000 requests/s a Set of running requests alone promotes about 330 bytes per
 * request and brings 3–4 full GCs per 10 s instead of 1 (bench/results/datapath-profile.md). Here a deleted item is unlinked and forgets its
 * neighbours, so nothing stale points at a young item.
 */
export class LinkedList<T extends Linked<T>> {
  #head: T | undefined;
  #tail: T | undefined;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** The first item. */
  get first(): T | undefined {
    return this.#head;
  }

  /** The last item. */
  get last(): T | undefined {
    return this.#tail;
  }

  /** Puts `item`, which must not be in a list, right after `ref` (in this list), or first when `ref` is undefined. */
  insertAfter(ref: T | undefined, item: T): void {
    if (ref === this.#tail) {
      this.add(item);
      return;
    }
    const next = ref ? ref.next : this.#head;
    item.prev = ref;
    item.next = next;
    if (ref) ref.next = item;
    else this.#head = item;
    next!.prev = item;
    this.#size++;
  }

  /** Appends `item`, which must not be in a list. */
  add(item: T): void {
    item.prev = this.#tail;
    item.next = undefined;
    if (this.#tail) this.#tail.next = item;
    else this.#head = item;
    this.#tail = item;
    this.#size++;
  }

  /** Removes `item`, which must be in this list or in none; false when it is in none. */
  delete(item: T): boolean {
    if (item.prev === undefined && this.#head !== item) return false;
    if (item.prev) item.prev.next = item.next;
    else this.#head = item.next;
    if (item.next) item.next.prev = item.prev;
    else this.#tail = item.prev;
    item.prev = undefined;
    item.next = undefined;
    this.#size--;
    return true;
  }

  /** First to last. Deleting the item just yielded is safe; deleting others while iterating is not. */
  *[Symbol.iterator](): IterableIterator<T> {
    let item = this.#head;
    while (item) {
      const next = item.next;
      yield item;
      item = next;
    }
  }
}
