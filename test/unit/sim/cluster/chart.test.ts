import { describe, expect, it } from 'vitest';
import { renderChart, yAxis } from '../../../../src/sim/cluster/chart.js';
import type { TimelineRow } from '../../../../src/sim/cluster/run.js';

describe('chart axes', () => {
  it.each([
    // [peak, integer axis, top, steps]
    [1, true, 1, 1],
    [3, true, 3, 3],
    [2.5, true, 3, 3],
    [5, true, 5, 5],
    [7, true, 8, 4],
    [13, true, 15, 5],
    [20, true, 20, 5],
    [23, true, 25, 5],
    [3, false, 3, 5],
    [207, false, 250, 5],
  ])('peak %d, integer %s → top %d in %d steps', (max, integer, top, steps) => {
    expect(yAxis(max, integer)).toEqual({ yMax: top, steps });
    // Every tick of a count is a whole number.
    if (integer) for (let i = 0; i <= steps; i++) expect(Number.isInteger((top * i) / steps)).toBe(true);
  });

  it('the workers panel is labelled in whole workers; the queue panel may have fractions', () => {
    const rows: TimelineRow[] = [0, 10, 20, 30].map((tS, i) => ({
      tS,
      workers: [1, 3, 3, 2][i]!,
      ready: [1, 1, 3, 2][i]!,
      launching: 0,
      queue: [0, 1.5, 3, 0][i]!,
      waiting: 0,
      queueMean: [0, 0.5, 1, 1][i]!,
    }));
    const svg = renderChart(rows, { title: 't', notes: [] });
    const labels = [...svg.matchAll(/<text x="58" y="[\d.]+" text-anchor="end">([^<]+)<\/text>/g)].map((m) => m[1]!);
    // Queue panel first (0, 0.6, ..., 3), then workers (0, 1, 2, 3).
    expect(labels.slice(0, 6)).toEqual(['0', '0.6', '1.2', '1.8', '2.4', '3']);
    expect(labels.slice(6)).toEqual(['0', '1', '2', '3']);
  });

  it('a run of more rows than a call takes arguments (two weeks at 10 s) is charted, its peak on the axis', () => {
    const rows: TimelineRow[] = Array.from({ length: 200_000 }, (_, i) => ({
      tS: i * 10,
      workers: i === 123_456 ? 9 : 2,
      ready: 2,
      launching: 0,
      queue: 1,
      waiting: 0,
      queueMean: 1,
    }));
    const svg = renderChart(rows, { title: 't', notes: [] });
    const labels = [...svg.matchAll(/<text x="58" y="[\d.]+" text-anchor="end">([^<]+)<\/text>/g)].map((m) => m[1]!);
    expect(labels.at(-1)).toBe('10');
  });
});
