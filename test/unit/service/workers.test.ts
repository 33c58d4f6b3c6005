import { describe, expect, it } from 'vitest';
import { workerNameFor } from '../../../src/service/workers.js';

describe('workerNameFor: the name of a worker an operator adds', () => {
  it.each([
    ['7', 'w-7'],
    ['007', 'w-7'],
    ['w-12', 'w-12'],
    [' 3 ', 'w-3'],
    // Every digit kept: a number past 2^53 is not rounded into another worker's name.
    ['99999999999999999999', 'w-99999999999999999999'],
    ['w-9007199254740993', 'w-9007199254740993'],
  ])('%j is %s', (asked, name) => expect(workerNameFor(asked, 'w')).toBe(name));

  it.each(['x-1', 'w-', 'w-1a', '-1', '1.5'])('%j is refused, naming the form adopted again after a restart', (asked) =>
    expect(() => workerNameFor(asked, 'w')).toThrow(/worker names are w-<n>/),
  );
});
