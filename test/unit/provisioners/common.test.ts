import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { abortReason, defaultLogDir, signalGroup } from '../../../src/provisioners/common.js';

describe('provisioners/common', () => {
  it('signalGroup: a live group answers signal 0, a killed one no longer does, and nothing throws', async () => {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' });
    const pgid = child.pid!;
    const exited = once(child, 'exit');
    expect(signalGroup(pgid, 0)).toBe(true);
    expect(signalGroup(pgid, 'SIGKILL')).toBe(true);
    await exited;
    expect(signalGroup(pgid, 0)).toBe(false);
    expect(signalGroup(pgid, 'SIGTERM')).toBe(false);
  });

  it('abortReason: the signal reason when it is an Error, else a launch-aborted error naming it', () => {
    const table: Array<[reason: unknown, message: string]> = [
      [new Error('worker leaving'), 'worker leaving'],
      ['scale-down', 'launch aborted: scale-down'],
    ];
    for (const [reason, message] of table) {
      const c = new AbortController();
      c.abort(reason);
      expect(abortReason(c.signal).message).toBe(message);
    }
  });

  it('defaultLogDir: ~/.flockserve/logs, as the log_dir option says', () => {
    expect(defaultLogDir()).toBe(join(homedir(), '.flockserve', 'logs'));
  });
});
