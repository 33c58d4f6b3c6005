import { describe, expect, it } from 'vitest';
import { LinkedList, type Linked } from '../../../src/core/linked-list.js';

interface Item extends Linked<Item> {
  readonly id: number;
}
const item = (id: number): Item => ({ id, prev: undefined, next: undefined });
const ids = (l: LinkedList<Item>): number[] => [...l].map((i) => i.id);

function listOf(n: number): { list: LinkedList<Item>; items: Item[] } {
  const list = new LinkedList<Item>();
  const items = Array.from({ length: n }, (_, i) => item(i));
  for (const i of items) list.add(i);
  return { list, items };
}

describe('LinkedList', () => {
  it('keeps insertion order; first is the oldest', () => {
    const { list } = listOf(4);
    expect(ids(list)).toEqual([0, 1, 2, 3]);
    expect(list.size).toBe(4);
    expect(list.first?.id).toBe(0);
    expect(new LinkedList<Item>().first).toBeUndefined();
  });

  // [deleted, left]
  const deletions: [number[], number[]][] = [
    [[0], [1, 2, 3]], // head
    [[3], [0, 1, 2]], // tail
    [[1], [0, 2, 3]], // middle
    [
      [1, 2],
      [0, 3],
    ],
    [[0, 1, 2, 3], []],
    [
      [3, 0],
      [1, 2],
    ],
  ];
  it.each(deletions)('deleting %j leaves %j', (deleted, left) => {
    const { list, items } = listOf(4);
    for (const d of deleted) expect(list.delete(items[d]!)).toBe(true);
    expect(ids(list)).toEqual(left);
    expect(list.size).toBe(left.length);
    expect(list.first?.id).toBe(left[0]);
    // Adding after deletions appends at the real tail.
    list.add(item(9));
    expect(ids(list)).toEqual([...left, 9]);
  });

  it('a deleted item forgets its neighbours and is not deleted twice', () => {
    const { list, items } = listOf(3);
    expect(list.delete(items[1]!)).toBe(true);
    expect(items[1]!.prev).toBeUndefined();
    expect(items[1]!.next).toBeUndefined();
    expect(list.delete(items[1]!)).toBe(false);
    expect(list.delete(item(7))).toBe(false); // never added
    expect(list.size).toBe(2);
    list.add(items[1]!); // and may be added again, at the end
    expect(ids(list)).toEqual([0, 2, 1]);
  });

  it('the item just yielded may be deleted while iterating', () => {
    const { list } = listOf(5);
    const seen: number[] = [];
    for (const i of list) {
      seen.push(i.id);
      if (i.id % 2 === 0) list.delete(i);
    }
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    expect(ids(list)).toEqual([1, 3]);
  });

  it('insertAfter puts an item after another, first with none, last after the last', () => {
    const { list, items } = listOf(3);
    list.insertAfter(items[0], item(7));
    expect(ids(list)).toEqual([0, 7, 1, 2]);
    list.insertAfter(undefined, item(8));
    expect(ids(list)).toEqual([8, 0, 7, 1, 2]);
    list.insertAfter(list.last, item(9));
    expect(ids(list)).toEqual([8, 0, 7, 1, 2, 9]);
    expect(list.size).toBe(6);
    expect(list.first?.id).toBe(8);
    expect(list.last?.id).toBe(9);
    // The links hold both ways: deleting from the middle and the ends keeps the order.
    list.delete(items[1]!);
    list.delete(list.first!);
    list.delete(list.last!);
    expect(ids(list)).toEqual([0, 7, 2]);
    const empty = listOf(0).list;
    empty.insertAfter(undefined, item(5));
    expect(ids(empty)).toEqual([5]);
    expect(empty.last?.id).toBe(5);
  });
});
