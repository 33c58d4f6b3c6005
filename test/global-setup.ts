/**
 * Every test run gets its own temp directory, removed when the run ends: tests, the gateways
 * and workers they start, and the fake `sky` all make their files under `os.tmpdir()`, which
 * reads TMPDIR, and the test processes and their children inherit it from here.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const before = process.env['TMPDIR'];
  const dir = mkdtempSync(join(tmpdir(), 'flockserve-tests-'));
  process.env['TMPDIR'] = dir;
  return () => {
    if (before === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = before;
    rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
  };
}
