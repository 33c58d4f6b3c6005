import { describe, expect, it } from 'vitest';
import { RepetitionGuard } from '../../../src/core/repetition-guard.js';

const LINE = 'All work and no play makes Jack a dull boy.';

describe('RepetitionGuard', () => {
  // [label, limit, pieces fed in order, trips at piece index (or -1: never)]
  const table: [string, number, string[], number][] = [
    ['a line repeated limit+1 times trips on the last', 2, [`${LINE}\n`, `${LINE}\n`, `${LINE}\n`], 2],
    ['limit times is allowed', 3, [`${LINE}\n`, `${LINE}\n`, `${LINE}\n`], -1],
    ['lines of 10 characters or fewer never count', 1, ['0123456789\n', '0123456789\n', 'ok\n', 'ok\n'], -1],
    ['11 characters count', 1, ['01234567890\n', '01234567890\n'], 1],
    ['leading and trailing space is ignored', 1, [`  ${LINE}\n`, `${LINE}  \n`], 1],
    ['a line split over many pieces is one line', 1, ['All work ', 'and no play ', 'makes Jack\n', 'All work and no play makes Jack\n'], 3],
    ['different lines do not add up', 1, ['The first line is here.\n', 'The second line is here.\n'], -1],
    ['a line without its newline does not count yet', 1, [`${LINE}\n`, LINE], -1],
  ]; // prettier-ignore

  it.each(table)('%s', (_label, limit, pieces, tripsAt) => {
    const g = new RepetitionGuard(limit);
    const results = pieces.map((p) => g.feed(p));
    expect(results.indexOf(true)).toBe(tripsAt);
    expect(g.tripped).toBe(tripsAt >= 0);
  });

  it('stays tripped', () => {
    const g = new RepetitionGuard(1);
    g.feed(`${LINE}\n${LINE}\n`);
    expect(g.feed('anything')).toBe(true);
  });

  it('rejects a limit below 1', () => {
    expect(() => new RepetitionGuard(0)).toThrow(/limit/);
  });
});
