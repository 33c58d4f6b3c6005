import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IndexedHeap, type HeapItem } from '../../../src/core/heap.js';

interface Item extends HeapItem {
  key: number;
  id: number;
}

const byKey = (a: Item, b: Item): boolean => a.key < b.key || (a.key === b.key && a.id < b.id);

describe('IndexedHeap', () => {
  it('pops in order after any mix of push, re-key and remove (checked against a sorted list)', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('push' as const), key: fc.integer({ min: 0, max: 50 }) }),
      fc.record({ kind: fc.constant('rekey' as const), pick: fc.nat(), key: fc.integer({ min: 0, max: 50 }) }),
      fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const heap = new IndexedHeap<Item>(byKey);
        const live: Item[] = [];
        let id = 0;
        for (const o of ops) {
          if (o.kind === 'push') {
            const item = { key: o.key, id: id++, heapPos: -1 };
            heap.push(item);
            live.push(item);
          } else if (live.length > 0) {
            const item = live[o.pick % live.length]!;
            if (o.kind === 'rekey') {
              item.key = o.key;
              heap.update(item);
            } else {
              heap.remove(item);
              live.splice(live.indexOf(item), 1);
              expect(heap.has(item)).toBe(false);
            }
          }
        }
        expect(heap.size).toBe(live.length);
        const want = [...live].sort((a, b) => (byKey(a, b) ? -1 : 1)).map((i) => i.id);
        const got: number[] = [];
        for (let top = heap.pop(); top; top = heap.pop()) got.push(top.id);
        expect(got).toEqual(want);
      }),
      { numRuns: 300, seed: 7 },
    );
  });

  it('heapify restores the order after keys changed behind its back', () => {
    const heap = new IndexedHeap<Item>(byKey);
    const items = [5, 3, 8, 1].map((key, id) => ({ key, id, heapPos: -1 }));
    for (const i of items) heap.push(i);
    items[2]!.key = 0; // 8 → 0 without telling the heap
    heap.heapify();
    expect(heap.peek()?.id).toBe(2);
  });
});
