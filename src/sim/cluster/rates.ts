import { fileLines, textLines, type NumberedLine } from './lines.js';
import { TraceError } from './trace.js';
import type { RateEnvelope } from '../workloads/envelope.js';

const REQUIRED = ['window_start_s', 'rate_rps'] as const;

/**
 * Reads a rate envelope: a CSV with a header naming at least `window_start_s` (seconds from
 * the start, one row per window, equally spaced from 0) and `rate_rps` (mean requests per second
 * in that window); other columns (ServeGen's day, hour_of_day, token means) are ignored.
 */
export function readRateEnvelope(file: string): RateEnvelope {
  let lines: Iterable<NumberedLine>;
  try {
    lines = [...fileLines(file)];
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TraceError(
      `${file}: cannot read the rate envelope (${code === 'ENOENT' ? 'no such file' : (err as Error).message})`,
      { cause: err },
    );
  }
  return parseRateEnvelope(lines, file);
}

/** Parses a rate envelope's text; `file` names it in messages. */
export function parseRateEnvelopeText(text: string, file: string): RateEnvelope {
  return parseRateEnvelope(textLines(text), file);
}

function parseRateEnvelope(lines: Iterable<NumberedLine>, file: string): RateEnvelope {
  let col: { start: number; rate: number; n: number } | undefined;
  const starts: number[] = [];
  const rates: number[] = [];
  for (const { text, line } of lines) {
    const where = `${file}:${line}`;
    if (col === undefined) {
      if (text.trim() === '') throw new TraceError(`${file}: the rate envelope is empty; expected a CSV header`);
      const header = text
        .replace(/^\uFEFF/, '')
        .split(',')
        .map((h) => h.trim());
      const missing = REQUIRED.filter((c) => !header.includes(c));
      if (missing.length > 0)
        throw new TraceError(`${where}: the header has no ${missing.join(', ')} column (got "${text}")`);
      col = { start: header.indexOf('window_start_s'), rate: header.indexOf('rate_rps'), n: header.length };
      continue;
    }
    if (text.trim() === '') throw new TraceError(`${where}: empty line`);
    const cells = text.split(',');
    if (cells.length !== col.n)
      throw new TraceError(`${where}: expected ${col.n} comma-separated fields, got ${cells.length}`);
    const start = number(cells[col.start]!);
    const rate = number(cells[col.rate]!);
    if (start === undefined || start < 0)
      throw new TraceError(`${where}: expected window_start_s as seconds >= 0, got "${cells[col.start]}"`);
    if (rate === undefined || rate < 0)
      throw new TraceError(`${where}: expected rate_rps as a number >= 0, got "${cells[col.rate]}"`);
    const i = starts.length;
    const expected = i === 0 ? 0 : i === 1 ? undefined : i * starts[1]!;
    if ((expected !== undefined && Math.abs(start - expected) > 1e-6) || (i === 1 && !(start > 0))) {
      throw new TraceError(
        `${where}: window_start_s ${start} breaks the spacing: windows must be equally spaced from 0 and sorted${i > 1 ? ` (expected ${expected})` : ''}`,
      );
    }
    starts.push(start);
    rates.push(rate);
  }
  if (col === undefined) throw new TraceError(`${file}: the rate envelope is empty; expected a CSV header`);
  if (rates.length < 2)
    throw new TraceError(
      `${file}: the rate envelope has ${rates.length} window(s); it needs at least 2 (their spacing is the window)`,
    );
  if (rates.every((r) => r === 0)) throw new TraceError(`${file}: every window's rate_rps is 0`);
  return { windowS: starts[1]!, rates };
}

function number(s: string): number | undefined {
  const t = s.trim();
  if (t === '') return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}
