/**
 * `flockserve plan`'s chart: cost (worker-hours) across, p99 queue wait up; the fixed fleets as
 * a line of points (the frontier a user could buy), the clairvoyant bound as a vertical line,
 * each policy as a point (filled: cold start, hollow: warm). Drawn by hand, as the simulation's.
 */
import { esc, f, fmt, niceMax } from '../cluster/chart.js';
import type { PlanResult } from './plan.js';

const W = 960;
const H = 560;
const LEFT = 72;
const RIGHT = W - 260;
const TOP = 56;
const BOTTOM = H - 110;

/** Policy colours, by the order the policies were given. */
const COLORS = ['#1f5fbf', '#d9822b', '#2e8b57', '#b03a8f', '#7a5c2e', '#3a9bb0'];

export function renderPlanChart(r: PlanResult, text: { title: string; notes: readonly string[] }): string {
  const points = [...r.fixed, ...r.policies];
  const xMax = niceMax(Math.max(r.bound.workerHours, ...points.map((p) => p.workerHours)) * 1.05);
  const yMax = niceMax(Math.max(1, ...points.map((p) => p.summary.queueWaitS.p99)) * 1.05);
  const x = (v: number): number => LEFT + ((RIGHT - LEFT) * v) / xMax;
  const y = (v: number): number => BOTTOM - ((BOTTOM - TOP) * v) / yMax;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${LEFT}" y="24" font-size="15" font-weight="bold">${esc(text.title)}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const vy = (yMax * i) / 5;
    const vx = (xMax * i) / 5;
    out.push(
      `<line x1="${LEFT}" x2="${RIGHT}" y1="${f(y(vy))}" y2="${f(y(vy))}" stroke="#e5e5e5"/>`,
      `<text x="${LEFT - 6}" y="${f(y(vy) + 4)}" text-anchor="end">${fmt(vy)}</text>`,
      `<line x1="${f(x(vx))}" x2="${f(x(vx))}" y1="${TOP}" y2="${BOTTOM}" stroke="#f0f0f0"/>`,
      `<text x="${f(x(vx))}" y="${BOTTOM + 16}" text-anchor="middle">${fmt(vx)}</text>`,
    );
  }
  out.push(
    `<rect x="${LEFT}" y="${TOP}" width="${RIGHT - LEFT}" height="${BOTTOM - TOP}" fill="none" stroke="#888"/>`,
    `<text x="${(LEFT + RIGHT) / 2}" y="${BOTTOM + 34}" text-anchor="middle">cost (worker-hours)</text>`,
    `<text x="18" y="${(TOP + BOTTOM) / 2}" text-anchor="middle" transform="rotate(-90 18 ${(TOP + BOTTOM) / 2})">p99 queue wait (s)</text>`,
  );
  // The bound.
  const bx = f(x(r.bound.workerHours));
  out.push(
    `<line x1="${bx}" x2="${bx}" y1="${TOP}" y2="${BOTTOM}" stroke="#c0392b" stroke-dasharray="6 4" stroke-width="1.5"/>`,
    `<text x="${bx}" y="${TOP - 6}" text-anchor="middle" fill="#c0392b">bound ${r.bound.workerHours.toFixed(2)}</text>`,
  );
  // The frontier.
  const fixedPts = r.fixed.map((p) => `${f(x(p.workerHours))},${f(y(p.summary.queueWaitS.p99))}`).join(' ');
  out.push(`<polyline fill="none" stroke="#555" stroke-width="1.5" points="${fixedPts}"/>`);
  for (const p of r.fixed) {
    const px = x(p.workerHours);
    const py = y(p.summary.queueWaitS.p99);
    out.push(
      `<rect x="${f(px - 4)}" y="${f(py - 4)}" width="8" height="8" fill="#555"/>`,
      `<text x="${f(px + 6)}" y="${f(py - 6)}" fill="#555">${p.initialWorkers}</text>`,
    );
  }
  // Policies.
  const names = [...new Set(r.policies.map((p) => p.policy))];
  for (const p of r.policies) {
    const color = COLORS[names.indexOf(p.policy) % COLORS.length]!;
    const fill = p.start === 'cold' ? color : 'white';
    out.push(
      `<circle cx="${f(x(p.workerHours))}" cy="${f(y(p.summary.queueWaitS.p99))}" r="5.5" fill="${fill}" stroke="${color}" stroke-width="2"/>`,
    );
  }
  // Legend.
  const legend: [string, string][] = [
    ['#555', 'fixed fleet (workers)'],
    ['#c0392b', 'clairvoyant bound'],
    ...names.map((n, i): [string, string] => [COLORS[i % COLORS.length]!, n]),
  ];
  legend.forEach(([color, label], i) => {
    const ly = TOP + 14 + 18 * i;
    out.push(
      `<circle cx="${RIGHT + 24}" cy="${ly - 4}" r="5" fill="${color}"/>`,
      `<text x="${RIGHT + 36}" y="${ly}">${esc(label)}</text>`,
    );
  });
  const ly = TOP + 14 + 18 * legend.length + 8;
  out.push(
    `<circle cx="${RIGHT + 24}" cy="${ly - 4}" r="5" fill="#888" stroke="#888" stroke-width="2"/>`,
    `<text x="${RIGHT + 36}" y="${ly}">cold start</text>`,
    `<circle cx="${RIGHT + 24}" cy="${ly + 14}" r="5" fill="white" stroke="#888" stroke-width="2"/>`,
    `<text x="${RIGHT + 36}" y="${ly + 18}">warm start</text>`,
  );
  text.notes.forEach((n, i) => out.push(`<text x="${LEFT}" y="${BOTTOM + 58 + 16 * i}" fill="#444">${esc(n)}</text>`));
  out.push('</svg>');
  return out.join('\n') + '\n';
}
