/** An item that knows where it sits in its heap (-1: not in it), so it can be re-keyed or removed in O(log n). */
export interface HeapItem {
  heapPos: number;
}

/**
 * A binary min-heap over `less`, with positions kept on the items: push, pop, peek, and
 * update/remove of any item in O(log n); heapify in O(n). The virtual clock's timers and
 * the engine-load policy's workers both live in one.
 */
export class IndexedHeap<T extends HeapItem> {
  readonly #items: T[] = [];
  readonly #less: (a: T, b: T) => boolean;

  constructor(less: (a: T, b: T) => boolean) {
    this.#less = less;
  }

  get size(): number {
    return this.#items.length;
  }

  peek(): T | undefined {
    return this.#items[0];
  }

  has(item: T): boolean {
    return item.heapPos >= 0;
  }

  push(item: T): void {
    item.heapPos = this.#items.length;
    this.#items.push(item);
    this.#siftUp(item.heapPos);
  }

  pop(): T | undefined {
    const top = this.#items[0];
    if (top) this.remove(top);
    return top;
  }

  /** Puts an item whose key changed where it belongs (pushes it if it is not in the heap). */
  update(item: T): void {
    if (item.heapPos < 0) return this.push(item);
    this.#siftUp(item.heapPos);
    this.#siftDown(item.heapPos);
  }

  remove(item: T): void {
    const i = item.heapPos;
    if (i < 0) return;
    item.heapPos = -1;
    const last = this.#items.pop()!;
    if (i === this.#items.length) return;
    this.#items[i] = last;
    last.heapPos = i;
    this.update(last);
  }

  /** Restores the heap order after many keys changed at once. */
  heapify(): void {
    for (let i = (this.#items.length >> 1) - 1; i >= 0; i--) this.#siftDown(i);
  }

  #siftUp(i: number): void {
    const h = this.#items;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[parent]!)) break;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #siftDown(i: number): void {
    const h = this.#items;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.#less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.#less(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      this.#swap(i, m);
      i = m;
    }
  }

  #swap(i: number, j: number): void {
    const h = this.#items;
    const a = h[i]!;
    const b = h[j]!;
    h[i] = b;
    h[j] = a;
    a.heapPos = j;
    b.heapPos = i;
  }
}
