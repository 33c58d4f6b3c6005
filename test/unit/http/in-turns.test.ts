import { setImmediate as turn } from 'node:timers/promises';
import { expect, it } from 'vitest';
import { InTurns } from '../../../src/http/in-turns.js';

it('runs jobs in order, perTurn per turn of the event loop, and starts again when more come', async () => {
  const q = new InTurns(64);
  const done: number[] = [];
  for (let i = 0; i < 200; i++) q.add(() => done.push(i));
  // [turns waited, jobs done by then]: 64, 128, 192, 200
  const timeline: [number, number][] = [];
  for (let t = 1; t <= 5; t++) {
    await turn();
    timeline.push([t, done.length]);
  }
  expect(timeline).toEqual([
    [1, 64],
    [2, 128],
    [3, 192],
    [4, 200],
    [5, 200],
  ]);
  expect(done).toEqual(Array.from({ length: 200 }, (_, i) => i));
  q.add(() => done.push(200));
  expect(done.length).toBe(200);
  await turn();
  expect(done.at(-1)).toBe(200);
});
