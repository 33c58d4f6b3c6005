import { describe, expect, it } from 'vitest';
import { progressReporter } from '../../../../src/sim/cluster/progress.js';

/** A reporter on a stepped wall clock, writing into an array. */
function reporter(o: { tty: boolean; spanS?: number; total?: number }) {
  const out: string[] = [];
  let wall = 0;
  const p = progressReporter({ ...o, write: (t) => out.push(t), now: () => wall });
  return { out, p, advance: (ms: number) => (wall += ms) };
}

describe('simulation progress', () => {
  it('elsewhere than a terminal: one plain line per tenth of the span, nothing to clear', () => {
    const { out, p, advance } = reporter({ tty: false, spanS: 1000 });
    for (let t = 60; t <= 1000; t += 60) {
      advance(100);
      p.update(t, t * 2);
    }
    p.done();
    expect(out).toHaveLength(9); // 10% … 90%; the minute steps reach 960 s, not 1000
    expect(out[0]).toBe('simulate: 10%, 120 of 1,000 simulated s, 240 requests sent, 0.2 s wall\n');
    expect(out.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true);
  });

  it('past the span (the queued requests draining), the time is not "of" the span', () => {
    const { out, p } = reporter({ tty: false, spanS: 175 });
    p.update(120, 14_000);
    p.update(180, 19_366);
    expect(out.map((l) => l.split(', ').slice(0, 2).join(', '))).toEqual([
      'simulate: 60%, 120 of 175 simulated s',
      'simulate: 100%, 180 simulated s (traffic over at 175 s',
    ]);
  });

  it('on a terminal: a bar redrawn in place, at most every 200 ms of wall time, cleared at the end', () => {
    const { out, p, advance } = reporter({ tty: true, spanS: 86_400 });
    p.update(60, 10);
    p.update(120, 20); // 0 ms later: not redrawn
    advance(250);
    p.update(43_200, 5000);
    p.done();
    expect(out).toHaveLength(3);
    const CLEAR = '\r\x1b[2K';
    expect(out.slice(0, 2).every((l) => l.startsWith(CLEAR))).toBe(true);
    expect(out[0]!.slice(CLEAR.length)).toMatch(
      /^simulating \[\.{30}\] {3}0% 60 of 86,400 simulated s, 10 requests sent/,
    );
    expect(out[1]!.slice(CLEAR.length)).toMatch(
      /^simulating \[#{15}\.{15}\] {2}50% 43,200 of 86,400 simulated s, 5,000 requests sent, 0\.3 s wall$/,
    );
    expect(out[2]).toBe(CLEAR);
  });

  it('with no known span, the requests sent of the total measure it; with neither, a line per simulated hour', () => {
    const byCount = reporter({ tty: false, total: 100 });
    byCount.p.update(60, 55);
    expect(byCount.out).toEqual([expect.stringMatching(/^simulate: 50%, 60 simulated s, 55 requests sent/)]);
    const open = reporter({ tty: false });
    for (let t = 600; t <= 7200; t += 600) open.p.update(t, t);
    expect(open.out.map((l) => l.split(' simulated')[0])).toEqual(['simulate: 3,600', 'simulate: 7,200']);
  });
});
