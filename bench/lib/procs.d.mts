// Types of procs.mjs for the TypeScript benchmarks (bench/*.ts).
import type { ChildProcess } from 'node:child_process';

export const ROOT: string;
export function tempDir(prefix: string): string;
export function startCli(
  cli: string,
  args: readonly string[],
  ready: RegExp,
  env?: Record<string, string>,
  nodeArgs?: readonly string[],
): Promise<{ child: ChildProcess; match: RegExpExecArray }>;
export function stop(child: ChildProcess): Promise<void>;
export function waitHttp(url: string, check: (res: Response) => Promise<boolean>, timeoutMs?: number): Promise<void>;
export function processTree(pid: number): number[];
