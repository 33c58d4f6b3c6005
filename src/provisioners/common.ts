import { homedir } from 'node:os';
import { join } from 'node:path';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
/** How a provisioner logs (the gateway passes its logger in). */
export type ProvisionerLog = (level: LogLevel, msg: string) => void;

/** Where per-worker logs go when the log_dir option is unset. */
export function defaultLogDir(): string {
  return join(homedir(), '.flockserve', 'logs');
}

/** The error a launch rejects with when its signal aborts: the signal's reason when it is an Error. */
export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new Error(`launch aborted: ${String(r)}`);
}

/**
 * Sends `sig` to process group `pgid` (signal 0 only asks whether it exists); false when the
 * group no longer exists. Never throws: a group that is gone is an answer, not an error. A
 * group owned by another user (EPERM) still counts as existing.
 */
export function signalGroup(pgid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, sig);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
