/**
 * Readable log lines for a terminal, from pino's JSON lines:
 *
 *   {"level":30,"time":1700000000000,"msg":"worker w-0 ready","worker":"w-0"}
 *   → 22:13:20.000 INFO  worker w-0 ready  worker=w-0
 *
 * A few lines of formatting instead of a pretty-printer dependency; JSON stays the
 * default anywhere that is not a terminal, for log collectors.
 */

const LEVELS: Readonly<Record<number, { name: string; color: string }>> = {
  10: { name: 'TRACE', color: '\x1b[90m' },
  20: { name: 'DEBUG', color: '\x1b[36m' },
  30: { name: 'INFO ', color: '\x1b[32m' },
  40: { name: 'WARN ', color: '\x1b[33m' },
  50: { name: 'ERROR', color: '\x1b[31m' },
  60: { name: 'FATAL', color: '\x1b[35m' },
};
const RESET = '\x1b[0m';
const DIM = '\x1b[2m';
/** pino's own fields, shown in the line's head or not at all. */
const HIDDEN = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'svc']);

export function formatLine(json: string, color: boolean): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const level = LEVELS[typeof o['level'] === 'number' ? o['level'] : 30] ?? { name: String(o['level']), color: '' };
  const time = typeof o['time'] === 'number' ? new Date(o['time']).toISOString().slice(11, 23) : '';
  const fields: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (HIDDEN.has(k) || v === undefined) continue;
    fields.push(`${k}=${fieldValue(v)}`);
  }
  const head = color ? `${DIM}${time}${RESET} ${level.color}${level.name}${RESET}` : `${time} ${level.name}`;
  const tail = fields.length === 0 ? '' : color ? `  ${DIM}${fields.join(' ')}${RESET}` : `  ${fields.join(' ')}`;
  return `${head} ${typeof o['msg'] === 'string' ? o['msg'] : ''}${tail}\n`;
}

function fieldValue(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  if (v && typeof v === 'object' && typeof (v as { message?: unknown }).message === 'string') {
    const e = v as { message: string; stack?: string };
    return JSON.stringify(e.stack ?? e.message);
  }
  return JSON.stringify(v);
}

/** A pino destination that writes readable lines to `out`. */
export function prettyDestination(out: NodeJS.WritableStream & { isTTY?: boolean }): { write(line: string): void } {
  const color = out.isTTY === true;
  return { write: (line: string) => void out.write(formatLine(line, color)) };
}
