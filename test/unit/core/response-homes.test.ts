import { describe, expect, it } from 'vitest';
import { ResponseHomes } from '../../../src/core/response-homes.js';

describe('ResponseHomes', () => {
  it('says which worker wrote an answer, and the latest word on an id wins', () => {
    const homes = new ResponseHomes();
    homes.remember('resp_a', 'w-1');
    homes.remember('resp_b', 'w-2');
    homes.remember('resp_a', 'w-3');
    expect([homes.homeOf('resp_a'), homes.homeOf('resp_b'), homes.homeOf('resp_c')]).toEqual(['w-3', 'w-2', undefined]);
    expect(homes.size).toBe(2);
  });

  it('forgets the least recently named id first, past its capacity', () => {
    const homes = new ResponseHomes(2);
    homes.remember('resp_a', 'w-1');
    homes.remember('resp_b', 'w-1');
    homes.homeOf('resp_a'); // named again: b is now the oldest
    homes.remember('resp_c', 'w-2');
    expect([homes.homeOf('resp_a'), homes.homeOf('resp_b'), homes.homeOf('resp_c')]).toEqual(['w-1', undefined, 'w-2']);
    expect(homes.size).toBe(2);
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses a capacity of %s', (capacity) => {
    expect(() => new ResponseHomes(capacity)).toThrow(RangeError);
  });
});
