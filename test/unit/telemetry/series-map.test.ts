import { describe, expect, it } from 'vitest';
import { SeriesMap } from '../../../src/telemetry/series-map.js';

const cells = (names: string[], limit?: number) => new SeriesMap(names, (attributes) => ({ attributes, n: 0 }), limit);

describe('SeriesMap', () => {
  it('one series per combination of values; the attributes are made once, as text', () => {
    const m = cells(['route', 'status', 'worker']);
    m.get('/generate', 200, 'w-0').n++;
    m.get('/generate', 200, 'w-0').n++;
    m.get('/generate', 503, 'w-0').n++;
    m.get('/generate', 200, 'w-1').n++;
    m.get('/v1/completions', 200, 'w-0').n++;
    expect([...m.entries()].map(([a, c]) => [a, c.n])).toEqual([
      [{ route: '/generate', status: '200', worker: 'w-0' }, 2],
      [{ route: '/generate', status: '503', worker: 'w-0' }, 1],
      [{ route: '/generate', status: '200', worker: 'w-1' }, 1],
      [{ route: '/v1/completions', status: '200', worker: 'w-0' }, 1],
    ]);
    expect(m.get('/generate', 200, 'w-1').attributes).toBe([...m.entries()][2]![0]);
  });

  it('no attributes: one series', () => {
    const m = cells([]);
    m.get().n++;
    m.get().n++;
    expect([...m.entries()]).toEqual([[{}, { attributes: {}, n: 2 }]]);
  });

  it('past its limit, new combinations share the overflow series; known ones keep theirs', () => {
    const m = cells(['worker'], 2);
    m.get('w-0').n++;
    m.get('w-1').n++;
    m.get('w-2').n++;
    m.get('w-3').n++;
    m.get('w-0').n++;
    expect([...m.entries()].map(([a, c]) => [a, c.n])).toEqual([
      [{ worker: 'w-0' }, 2],
      [{ worker: 'w-1' }, 1],
      [{ 'otel.metric.overflow': true }, 2],
    ]);
  });

  it('five attributes, each its own level', () => {
    const m = cells(['route', 'status', 'worker', 'transport', 'model']);
    m.get('/generate', 200, 'w-0', 'http', 'a').n++;
    m.get('/generate', 200, 'w-0', 'http', 'b').n++;
    m.get('/generate', 200, 'w-0', 'http', 'a').n++;
    expect([...m.entries()].map(([a, c]) => [a['model'], c.n])).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
  });

  it('more than five attributes is refused', () => {
    expect(() => cells(['a', 'b', 'c', 'd', 'e', 'f'])).toThrow(/at most five/);
  });
});
