import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** This process's soft limit on open files. */
export function openFileLimit() {
  return Number(/Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 0);
}

/**
 * Runs `main` with the soft open-file limit at `want`: below it, the script runs itself again
 * once under `ulimit -n`, raised as far as the hard limit lets (a container may cap it lower;
 * the bench then reads openFileLimit() and fits its counts to it).
 */
export async function withOpenFileLimit(want, main) {
  if (openFileLimit() >= want || process.env.BENCH_NOFILE_RAISED) return main();
  const raise = `ulimit -n ${want} 2>/dev/null || ulimit -n "$(ulimit -Hn)"`;
  const child = spawn('bash', ['-c', `${raise}; exec "$@"`, 'bash', process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_NOFILE_RAISED: '1' },
  });
  child.on('exit', (code) => process.exit(code ?? 1));
}
