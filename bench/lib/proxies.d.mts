// Types of proxies.mjs for the TypeScript benchmarks (bench/*.ts).
import type { ChildProcess } from 'node:child_process';

export function ensureTools(): void;
export function startProxy(
  kind: 'nginx' | 'haproxy' | 'haproxy-tcp',
  dir: string,
  opts: { port: number; workers: readonly string[]; nofile: number; single?: boolean },
): Promise<ChildProcess>;
