import pino, { type Logger } from 'pino';

export type { Logger };

/** FlockServe's verbosity: 0 warnings and errors, 1 info, 2 debug (a line per request). */
export function createLogger(verbosity: number, destination?: pino.DestinationStream): Logger {
  const level = verbosity <= 0 ? 'warn' : verbosity === 1 ? 'info' : 'debug';
  return pino({ level, base: { svc: 'flockserve' } }, destination ?? pino.destination({ fd: 1, sync: false }));
}
