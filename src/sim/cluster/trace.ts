import { readFile } from 'node:fs/promises';

/** One request of a trace: when it arrives and how many tokens go in and come out. */
export interface TraceRequest {
  /** Milliseconds after the trace's first request. */
  readonly arrivalMs: number;
  readonly promptTokens: number;
  readonly outputTokens: number;
  /** 1-based line in the file, for messages. */
  readonly line: number;
}

/** A trace that cannot be used; the message names the file, the line and what was expected. */
export class TraceError extends Error {
  override readonly name = 'TraceError';
}

const HEADER = ['TIMESTAMP', 'ContextTokens', 'GeneratedTokens'] as const;

// "2023-11-16 18:15:46.6805900": the Azure LLM inference traces' format (UTC, up to 7 fraction digits).
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z?$/;

/** Reads an Azure-LLM-inference-style CSV trace (TIMESTAMP,ContextTokens,GeneratedTokens). */
export async function readTrace(file: string): Promise<TraceRequest[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TraceError(
      `${file}: cannot read the trace (${code === 'ENOENT' ? 'no such file' : ((err as Error).message ?? code)})`,
      { cause: err },
    );
  }
  return parseTrace(text, file);
}

/**
 * Parses the CSV text. Every data row must parse: a bad row is an error naming its line,
 * never skipped. Rows may come in any order; they are sorted by time (stable).
 * Arrival times are relative to the earliest request.
 */
export function parseTrace(text: string, file: string): TraceRequest[] {
  const lines = text.split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0 || (lines.length === 1 && lines[0]!.trim() === '')) {
    throw new TraceError(`${file}: the trace is empty; expected a header line "${HEADER.join(',')}" and request rows`);
  }
  const header = lines[0]!
    .replace(/^\uFEFF/, '')
    .split(',')
    .map((h) => h.trim());
  if (header.length !== HEADER.length || header.some((h, i) => h.toLowerCase() !== HEADER[i]!.toLowerCase())) {
    throw new TraceError(`${file}:1: expected the header "${HEADER.join(',')}", got "${lines[0]}"`);
  }
  if (lines.length === 1) throw new TraceError(`${file}: the trace has a header but no requests`);

  // Whole milliseconds since the epoch (~1.7e12) and the fraction apart: their sum would keep
  // only ~0.0002 ms of the fraction; the differences between requests keep it all.
  const rows: { ms: number; frac: number; prompt: number; output: number; line: number }[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = i + 1;
    const raw = lines[i]!;
    const where = `${file}:${line}`;
    if (raw.trim() === '')
      throw new TraceError(`${where}: empty line; expected "timestamp,context tokens,generated tokens"`);
    const cells = raw.split(',');
    if (cells.length !== 3) {
      throw new TraceError(
        `${where}: expected 3 comma-separated fields (${HEADER.join(',')}), got ${cells.length}: "${raw}"`,
      );
    }
    const at = parseTimestamp(cells[0]!.trim());
    if (at === undefined) {
      throw new TraceError(`${where}: expected a timestamp like "2023-11-16 18:15:46.6805900", got "${cells[0]}"`);
    }
    const prompt = parseCount(cells[1]!);
    if (prompt === undefined)
      throw new TraceError(`${where}: expected ContextTokens as a whole number >= 0, got "${cells[1]}"`);
    const output = parseCount(cells[2]!);
    if (output === undefined)
      throw new TraceError(`${where}: expected GeneratedTokens as a whole number >= 0, got "${cells[2]}"`);
    rows.push({ ...at, prompt, output, line });
  }
  rows.sort((a, b) => a.ms - b.ms || a.frac - b.frac);
  const first = rows[0]!;
  return rows.map((r) => ({
    arrivalMs: r.ms - first.ms + (r.frac - first.frac),
    promptTokens: r.prompt,
    outputTokens: r.output,
    line: r.line,
  }));
}

/** Whole ms since the epoch and the fraction of a ms, or undefined if `s` is not a valid timestamp. */
function parseTimestamp(s: string): { ms: number; frac: number } | undefined {
  const m = TIMESTAMP.exec(s);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, sec, frac] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec));
  // Date.UTC rolls over impossible dates (Feb 30 → Mar 2): reject them instead.
  const back = new Date(ms);
  const same =
    back.getUTCMonth() === Number(mo) - 1 &&
    back.getUTCDate() === Number(d) &&
    back.getUTCHours() === Number(h) &&
    back.getUTCMinutes() === Number(mi) &&
    back.getUTCSeconds() === Number(sec);
  if (!same) return undefined;
  // "6805900" → 680 whole ms + 0.59 ms.
  const micro = frac ? Number(`0.${frac}`) * 1000 : 0;
  return { ms: ms + Math.floor(micro), frac: micro - Math.floor(micro) };
}

function parseCount(s: string): number | undefined {
  const t = s.trim();
  if (!/^\d+$/.test(t)) return undefined;
  return Number(t);
}
