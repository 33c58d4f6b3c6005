import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './gateway.js';

/** The buf CLI of the @bufbuild/buf dev dependency: a gRPC client nobody here wrote. */
const BUF = join(ROOT, 'node_modules/.bin/buf');

export interface BufCurlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * `buf curl --protocol grpc` against a plain-text gRPC address, the schema from server
 * reflection only (no proto at hand): `args` are the rest (`--list-services`, `-d JSON URL`, ...).
 */
export function bufCurl(address: string, args: readonly string[], path = ''): Promise<BufCurlResult> {
  return new Promise((resolve) =>
    execFile(
      BUF,
      ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', ...args, `http://${address}${path}`],
      { cwd: ROOT, timeout: 30_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

/** buf curl prints each message of a stream as an indented JSON object, one after another. */
export function jsonMessages(stdout: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < stdout.length; i++) {
    const c = stdout[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') {
      if (depth++ === 0) start = i;
    } else if (c === '}' && --depth === 0) out.push(JSON.parse(stdout.slice(start, i + 1)) as Record<string, unknown>);
  }
  return out;
}
