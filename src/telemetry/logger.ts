import pino, { type Logger } from 'pino';
import { prettyDestination } from './pretty.js';

export type { Logger };

export type LogFormat = 'auto' | 'json' | 'pretty';

/**
 * FlockServe's verbosity: 0 warnings and errors, 1 info, 2 debug (a line per request).
 * JSON lines, or readable lines (`pretty`, or `auto` when stdout is a terminal).
 */
export function createLogger(
  verbosity: number,
  destination?: pino.DestinationStream,
  format: LogFormat = 'auto',
): Logger {
  const level = verbosity <= 0 ? 'warn' : verbosity === 1 ? 'info' : 'debug';
  const pretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  const dest = destination ?? (pretty ? prettyDestination(process.stdout) : pino.destination({ fd: 1, sync: false }));
  return pino({ level, base: { svc: 'flockserve' } }, dest);
}
