import type { TimelineRow } from './run.js';

export interface ChartText {
  readonly title: string;
  /** Lines under the plot (setup, attribution). */
  readonly notes: readonly string[];
}

const W = 960;
const PLOT_LEFT = 64;
const PLOT_RIGHT = W - 24;
const PANEL_H = 190;
const TOP1 = 56;
const TOP2 = TOP1 + PANEL_H + 48;

interface Series {
  readonly label: string;
  readonly color: string;
  readonly values: readonly number[];
  readonly step?: boolean;
  readonly width?: number;
}

/**
 * An SVG chart of a simulation timeline, drawn by hand (no chart library): the queue length
 * and its running mean above, the workers (existing and ready) below, on one time axis.
 */
export function renderChart(rows: readonly TimelineRow[], text: ChartText): string {
  const t = rows.map((r) => r.tS);
  const tMax = Math.max(1, t.at(-1) ?? 1);
  const notesH = 18 * text.notes.length;
  const H = TOP2 + PANEL_H + 44 + notesH;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${PLOT_LEFT}" y="24" font-size="15" font-weight="bold">${esc(text.title)}</text>`,
  ];
  parts.push(
    panel(TOP1, 'queue length (in flight + waiting)', t, tMax, {}, [
      { label: 'queue now', color: '#9aa5b1', values: rows.map((r) => r.queue), width: 1 },
      {
        label: 'running mean (what the autoscaler reads)',
        color: '#1f5fbf',
        values: rows.map((r) => r.queueMean),
        width: 2,
      },
    ]),
    panel(TOP2, 'workers', t, tMax, { integer: true }, [
      { label: 'existing (billed)', color: '#d9822b', values: rows.map((r) => r.workers), step: true, width: 2 },
      { label: 'ready', color: '#2e8b57', values: rows.map((r) => r.ready), step: true, width: 2 },
    ]),
  );
  const axisY = TOP2 + PANEL_H + 34;
  parts.push(
    `<text x="${(PLOT_LEFT + PLOT_RIGHT) / 2}" y="${axisY}" text-anchor="middle">time (simulated seconds)</text>`,
  );
  text.notes.forEach((n, i) => {
    parts.push(`<text x="${PLOT_LEFT}" y="${axisY + 20 + 18 * i}" fill="#444">${esc(n)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

function panel(
  top: number,
  title: string,
  t: readonly number[],
  tMax: number,
  axis: { readonly integer?: boolean },
  series: readonly Series[],
): string {
  // A loop, not Math.max(...values): a long run's rows are more arguments than a call may take.
  let highest = 1;
  for (const s of series) for (const v of s.values) if (v > highest) highest = v;
  const { yMax, steps } = yAxis(highest, axis.integer === true);
  const x = (v: number): number => PLOT_LEFT + ((PLOT_RIGHT - PLOT_LEFT) * v) / tMax;
  const y = (v: number): number => top + PANEL_H - (PANEL_H * v) / yMax;
  const out: string[] = [`<text x="${PLOT_LEFT}" y="${top - 8}" font-weight="bold">${esc(title)}</text>`];
  // Grid and axis labels: up to 5 steps on y, about 8 on x.
  for (let i = 0; i <= steps; i++) {
    const v = (yMax * i) / steps;
    out.push(
      `<line x1="${PLOT_LEFT}" x2="${PLOT_RIGHT}" y1="${f(y(v))}" y2="${f(y(v))}" stroke="#e5e5e5"/>`,
      `<text x="${PLOT_LEFT - 6}" y="${f(y(v) + 4)}" text-anchor="end">${fmt(v)}</text>`,
    );
  }
  const tStep = niceMax(tMax / 8);
  for (let v = 0; v <= tMax + 1e-9; v += tStep) {
    out.push(
      `<line x1="${f(x(v))}" x2="${f(x(v))}" y1="${top}" y2="${top + PANEL_H}" stroke="#f0f0f0"/>`,
      `<text x="${f(x(v))}" y="${top + PANEL_H + 14}" text-anchor="middle">${fmt(v)}</text>`,
    );
  }
  out.push(
    `<rect x="${PLOT_LEFT}" y="${top}" width="${PLOT_RIGHT - PLOT_LEFT}" height="${PANEL_H}" fill="none" stroke="#888"/>`,
  );
  for (const s of series) {
    const pts: string[] = [];
    s.values.forEach((v, i) => {
      const px = f(x(t[i]!));
      if (s.step && i > 0) pts.push(`${px},${f(y(s.values[i - 1]!))}`);
      pts.push(`${px},${f(y(v))}`);
    });
    out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="${s.width ?? 1.5}" points="${pts.join(' ')}"/>`);
  }
  // Legend, top right inside the panel, on white so lines under it do not cross the text.
  out.push(
    `<rect x="${PLOT_RIGHT - 296}" y="${top + 4}" width="290" height="${16 * series.length + 6}" fill="white" fill-opacity="0.85"/>`,
  );
  series.forEach((s, i) => {
    const ly = top + 16 + 16 * i;
    out.push(
      `<line x1="${PLOT_RIGHT - 290}" x2="${PLOT_RIGHT - 270}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="3"/>`,
      `<text x="${PLOT_RIGHT - 264}" y="${ly}">${esc(s.label)}</text>`,
    );
  });
  return out.join('\n');
}

/**
 * The y axis's top and its number of steps: 5 steps up to a round top; for a count (workers),
 * whole-number ticks only, e.g. a peak of 3 → top 3 in 3 steps (not 0.6, 1.2, ...), 13 → 15 in
 * 5 steps of 3, 7 → 8 in 4 steps of 2.
 */
export function yAxis(max: number, integer: boolean): { yMax: number; steps: number } {
  if (!integer) return { yMax: niceMax(max), steps: 5 };
  const top = Math.max(1, Math.ceil(max - 1e-9));
  if (top <= 5) return { yMax: top, steps: top };
  const step = niceMax(top / 5);
  const whole = Math.max(1, Math.ceil(step));
  const steps = Math.ceil(top / whole - 1e-9);
  return { yMax: steps * whole, steps };
}

/** The smallest "round" number (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k) at or above v. E.g. 207 → 250, 13 → 15. */
export function niceMax(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v * (1 - 1e-12)) return m * p;
  return 10 * p;
}

export const f = (v: number): string => v.toFixed(1);
export const fmt = (v: number): string => (Number.isInteger(v) ? String(v) : v.toFixed(1));

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
