import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { signalGroup } from '../common.js';

/** The `sky` executable is not on PATH (or not executable). */
export class SkyNotFoundError extends Error {
  override readonly name = 'SkyNotFoundError';
  constructor(command: string, cause?: unknown) {
    super(
      `the SkyPilot CLI (\`${command}\`) was not found on PATH. Install SkyPilot, e.g. ` +
        '`pip install "skypilot[aws]"` (or [gcp], [kubernetes], ... for your cloud; see ' +
        'https://docs.skypilot.co/en/latest/getting-started/installation.html) and run `sky check`, ' +
        'or run workers on this machine with `--provisioner local`.',
      { cause },
    );
  }
}

export interface SkyRunOptions {
  /** Kill the process group after this long (ms). */
  readonly timeoutMs: number;
  /** Append stdout and stderr to this file as they arrive (per-worker launch log). */
  readonly logPath?: string;
  /** Called with each line of output (stdout and stderr), without the newline. */
  readonly onLine?: (line: string) => void;
  /** Aborting kills the process group. */
  readonly signal?: AbortSignal;
}

export interface SkyResult {
  /** The command line as run, for logs and errors: `sky status --ip w-1`. */
  readonly command: string;
  /** Undefined when the process was killed by a signal. */
  readonly exitCode: number | undefined;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
  readonly aborted: boolean;
  readonly durationMs: number;
}

export interface SkyCliOptions {
  /** Executable to run. Default `sky`. */
  readonly command?: string;
  /** Extra environment for every call (on top of this process's). */
  readonly env?: Readonly<Record<string, string>>;
  /** Time between SIGTERM and SIGKILL of a timed-out or aborted call. Default 2000 ms. */
  readonly killGraceMs?: number;
  /** Sees every command line before it runs (debug log, tests). */
  readonly onCommand?: (argv: readonly string[]) => void;
}

// Output kept in memory per call: enough for any status table, bounded for chatty launches.
const MAX_KEPT_CHARS = 256 * 1024;

/**
 * Runs `sky` subcommands through execa. Each call runs in its own process group
 * (detached), so a timeout or an abort kills `sky` and everything it started (ssh,
 * rsync, the API-server client) with one kill(-pgid): SIGTERM, then SIGKILL after the
 * grace period. Never rejects for a non-zero exit: callers read `exitCode`.
 */
export class SkyCli {
  readonly command: string;
  readonly #env: Readonly<Record<string, string>>;
  readonly #graceMs: number;
  readonly #onCommand: SkyCliOptions['onCommand'];
  /** Process groups of calls still running (killed by killAll). */
  readonly #running = new Set<number>();

  constructor(opts: SkyCliOptions = {}) {
    this.command = opts.command ?? 'sky';
    this.#env = opts.env ?? {};
    this.#graceMs = opts.killGraceMs ?? 2000;
    this.#onCommand = opts.onCommand;
  }

  async run(args: readonly string[], opts: SkyRunOptions): Promise<SkyResult> {
    const command = [this.command, ...args].join(' ');
    this.#onCommand?.([this.command, ...args]);
    const started = performance.now();
    let log: WriteStream | undefined;
    if (opts.logPath) {
      mkdirSync(dirname(opts.logPath), { recursive: true });
      log = createWriteStream(opts.logPath, { flags: 'a' });
      log.write(`\n=== flockserve: ${command} at ${new Date().toISOString()} ===\n`);
    }
    const proc = execa(this.command, args, {
      reject: false,
      detached: true,
      stdin: 'ignore',
      buffer: false,
      env: this.#env,
      // Click colours only a terminal, but be sure: plain text is what the parsers read.
      extendEnv: true,
    });
    const out = { stdout: '', stderr: '' };
    const partial = { stdout: '', stderr: '' };
    const collect = (which: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      log?.write(chunk);
      out[which] = (out[which] + text).slice(-MAX_KEPT_CHARS);
      if (opts.onLine) {
        const lines = (partial[which] + text).split(/\r?\n|\r/);
        partial[which] = lines.pop() ?? '';
        for (const line of lines) opts.onLine(line);
      }
    };
    proc.stdout?.on('data', collect('stdout'));
    proc.stderr?.on('data', collect('stderr'));

    const pgid = proc.pid;
    if (pgid !== undefined) this.#running.add(pgid);
    let timedOut = false;
    let aborted = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void this.#killGroup(pgid);
    }, opts.timeoutMs);
    const onAbort = (): void => {
      aborted = true;
      void this.#killGroup(pgid);
    };
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });

    const result = await proc;
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
    if (pgid !== undefined) this.#running.delete(pgid);
    if (opts.onLine) for (const rest of [partial.stdout, partial.stderr]) if (rest !== '') opts.onLine(rest);
    await new Promise<void>((resolve) => (log ? log.end(resolve) : resolve()));

    if ((result as { code?: string }).code === 'ENOENT' || (result as { code?: string }).code === 'EACCES') {
      throw new SkyNotFoundError(this.command, result);
    }
    return {
      command,
      exitCode: result.exitCode,
      stdout: out.stdout,
      stderr: out.stderr,
      timedOut,
      aborted,
      durationMs: performance.now() - started,
    };
  }

  /** Kills every call still running (gateway shutdown). */
  async killAll(): Promise<void> {
    await Promise.all([...this.#running].map((pgid) => this.#killGroup(pgid)));
  }

  async #killGroup(pgid: number | undefined): Promise<void> {
    if (pgid === undefined) return;
    if (!signalGroup(pgid, 'SIGTERM')) return;
    const deadline = performance.now() + this.#graceMs;
    while (performance.now() < deadline) {
      await sleep(25);
      if (!signalGroup(pgid, 0)) return;
    }
    signalGroup(pgid, 'SIGKILL');
  }
}

/** A short description of a failed call for errors and logs: exit code and the last lines of output. */
export function describeFailure(r: SkyResult, timeoutMs?: number): string {
  const how = r.timedOut
    ? `timed out after ${Math.round((timeoutMs ?? r.durationMs) / 1000)} s and was killed`
    : r.aborted
      ? 'was aborted'
      : r.exitCode === undefined
        ? 'was killed by a signal'
        : `exited with code ${r.exitCode}`;
  const tail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' | ');
  return `\`${r.command}\` ${how}${tail ? `: ${tail}` : ''}`;
}
