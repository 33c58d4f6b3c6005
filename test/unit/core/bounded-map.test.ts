import { describe, expect, it } from 'vitest';
import { BoundedMap } from '../../../src/core/bounded-map.js';

describe('BoundedMap', () => {
  it('past its capacity forgets the entry set longest ago; setting a key again makes it the newest', () => {
    const m = new BoundedMap<string, number>(2);
    m.set('a', 1);
    m.set('b', 2);
    m.set('a', 3); // b is now the oldest
    m.set('c', 4);
    expect([m.get('a'), m.get('b'), m.get('c'), m.size]).toEqual([3, undefined, 4, 2]);
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses a capacity of %s', (capacity) => {
    expect(() => new BoundedMap(capacity)).toThrow(RangeError);
  });
});
