import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, createWriteStream, mkdirSync, openSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClusterInfo, Endpoint, Provisioner, TaskSpec } from '../core/types.js';
import { abortReason, defaultLogDir, signalGroup, type ProvisionerLog } from './common.js';
import { freePort } from './free-port.js';
import { localUnsupportedKeys } from './task.js';

export interface LocalProvisionerOptions {
  readonly log?: ProvisionerLog;
  /** Loopback address the workers bind and are reached at. Default 127.0.0.1. */
  readonly host?: string;
  /** Folder of the per-worker logs (<name>.log, setup and run output). Default ~/.flockserve/logs. */
  readonly logDir?: string;
  /** Called when a worker's run process exits without being terminated (a crash: replace it). */
  readonly onExit?: (name: string, code: number | null, signal: NodeJS.Signals | null) => void;
  /** How long terminate waits after SIGTERM before SIGKILL. Default 5000 ms. */
  readonly killGraceMs?: number;
  /** Shell that runs `setup` and `run` with `-c`. Default bash, as SkyPilot. */
  readonly shell?: string;
}

interface Entry {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly logPath: string;
  phase: 'setup' | 'run';
  /** The current process (setup, then run); undefined until spawned. */
  proc: ChildProcess | undefined;
  /** Process groups started for this worker (setup's may leave daemons behind): all are killed. */
  readonly groups: number[];
  stopping: Promise<void> | undefined;
}

// After SIGKILL, how long to wait for a group to vanish. Members orphaned to a PID 1 that
// does not reap stay zombies (harmless, but kill(-pgid, 0) still sees them): stop waiting.
const AFTER_KILL_WAIT_MS = 2000;
const POLL_MS = 50;
const STDERR_TAIL_CHARS = 2000;

/**
 * Runs each worker as child processes on this machine: `setup` (must exit 0), then `run`
 * in its own process group, with FLOCKSERVE_WORKER_PORT set to a free port. Output goes
 * to a log file per worker, never to the gateway's stdout. Children are killed on
 * terminate, on close(), and (with SIGKILL, synchronously) when the gateway process exits.
 */
export class LocalProvisioner implements Provisioner {
  readonly kind = 'local';
  readonly #entries = new Map<string, Entry>();
  readonly #warnedTasks = new Set<string>();
  readonly #log: ProvisionerLog;
  readonly #host: string;
  readonly #logDir: string;
  readonly #graceMs: number;
  readonly #shell: string;
  readonly #onExit: LocalProvisionerOptions['onExit'];
  #exitHookInstalled = false;
  #closed = false;

  constructor(opts: LocalProvisionerOptions = {}) {
    this.#log = opts.log ?? (() => {});
    this.#host = opts.host ?? '127.0.0.1';
    this.#logDir = opts.logDir ?? defaultLogDir();
    this.#graceMs = opts.killGraceMs ?? 5000;
    this.#shell = opts.shell ?? 'bash';
    this.#onExit = opts.onExit;
  }

  async launch(name: string, task: TaskSpec, signal: AbortSignal): Promise<Endpoint> {
    if (this.#closed) throw new Error('local provisioner is closed');
    if (this.#entries.has(name)) throw new Error(`local: worker ${name} is already running`);
    if (task.run === undefined || task.run.trim() === '')
      throw new Error(`local: task ${task.path} has no run command`);
    signal.throwIfAborted();
    this.#warnUnsupported(task);
    const cwd = task.workdir ?? dirname(task.path);
    if (!isDirectory(cwd)) throw new Error(`local: workdir ${cwd} of task ${task.path} is not a directory`);
    mkdirSync(this.#logDir, { recursive: true });
    this.#installExitHook();

    const port = await freePort(this.#host);
    const entry: Entry = {
      name,
      port,
      url: `http://${this.#host}:${port}`,
      logPath: join(this.#logDir, `${name}.log`),
      phase: 'setup',
      proc: undefined,
      groups: [],
      stopping: undefined,
    };
    if (this.#entries.has(name)) throw new Error(`local: worker ${name} is already running`);
    this.#entries.set(name, entry);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...task.envs,
      FLOCKSERVE_WORKER_PORT: String(port),
      FLOCKSERVE_WORKER_NAME: name,
    };
    try {
      if (task.setup !== undefined && task.setup.trim() !== '')
        await this.#runSetup(entry, task.setup, cwd, env, signal);
      signal.throwIfAborted();
      if (entry.stopping) throw new Error(`local: worker ${name} was terminated during launch`);
      await this.#startRun(entry, task.run, cwd, env);
    } catch (err) {
      // Tear down whatever this launch started before reporting the failure.
      await this.#stop(entry);
      if (this.#entries.get(name) === entry) this.#entries.delete(name);
      throw err;
    }
    const pid = entry.proc?.pid;
    this.#log('info', `local: worker ${name} started (pid ${pid}, ${entry.url}, log ${entry.logPath})`);
    return { url: entry.url, detail: { pid: String(pid), log: entry.logPath } };
  }

  async terminate(name: string): Promise<void> {
    const entry = this.#entries.get(name);
    if (!entry) return;
    await this.#stop(entry);
    if (this.#entries.get(name) === entry) this.#entries.delete(name);
  }

  async list(prefix: string): Promise<ClusterInfo[]> {
    const out: ClusterInfo[] = [];
    for (const e of this.#entries.values()) {
      if (!e.name.startsWith(prefix) || e.stopping) continue;
      if (e.phase === 'run') {
        out.push({ name: e.name, status: 'UP', endpoint: { url: e.url, detail: { pid: String(e.proc?.pid) } } });
      } else out.push({ name: e.name, status: 'INIT' });
    }
    return out;
  }

  /** Terminates every worker: local workers cannot outlive the gateway anyway. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#entries.keys()].map((n) => this.terminate(n)));
    if (this.#exitHookInstalled) process.off('exit', this.#onProcessExit);
    this.#exitHookInstalled = false;
  }

  /** Names of the workers with a live process (setup or run). */
  get names(): string[] {
    return [...this.#entries.keys()];
  }

  #runSetup(entry: Entry, script: string, cwd: string, env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<void> {
    const proc = this.#spawn(entry, 'setup', script, cwd, env, true);
    let tail = '';
    const errLog = createWriteStream(entry.logPath, { flags: 'a' });
    proc.stderr?.on('data', (chunk: Buffer) => {
      errLog.write(chunk);
      tail = (tail + chunk.toString('utf8')).slice(-STDERR_TAIL_CHARS);
    });
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (err?: unknown): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        errLog.end();
        if (err === undefined) resolve();
        else reject(err);
      };
      const onAbort = (): void => {
        this.#log('info', `local: launch of ${entry.name} aborted during setup`);
        void this.#stop(entry).finally(() => finish(abortReason(signal)));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      proc.once('error', (err) => finish(new Error(`local: setup of ${entry.name} could not start: ${err.message}`)));
      proc.once('close', (code, sig) => {
        if (signal.aborted) return; // onAbort settles once the group is gone
        if (entry.stopping) return finish(new Error(`local: worker ${entry.name} was terminated during setup`));
        if (code === 0) return finish();
        const how = code === null ? `signal ${sig}` : `exit code ${code}`;
        finish(new Error(`local: setup of ${entry.name} failed (${how}): ${tail.trim() || '(no stderr)'}`));
      });
    });
  }

  async #startRun(entry: Entry, script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<void> {
    const proc = this.#spawn(entry, 'run', script, cwd, env, false);
    entry.phase = 'run';
    if (proc.pid === undefined) {
      const err = await new Promise<Error>((resolve) => proc.once('error', resolve));
      throw new Error(`local: run of ${entry.name} could not start: ${err.message}`);
    }
    proc.once('exit', (code, sig) => {
      if (this.#entries.get(entry.name) !== entry || entry.stopping) return;
      // Exited on its own: forget it (list() no longer shows it), kill what it left in its
      // group, and tell the owner so the worker gets replaced.
      this.#entries.delete(entry.name);
      void this.#stop(entry);
      const how = code === null ? `signal ${sig}` : `exit code ${code}`;
      this.#log(
        'warn',
        `local: worker ${entry.name} (pid ${proc.pid}) exited on its own (${how}); see ${entry.logPath}`,
      );
      this.#onExit?.(entry.name, code, sig);
    });
  }

  #spawn(
    entry: Entry,
    phase: 'setup' | 'run',
    script: string,
    cwd: string,
    env: NodeJS.ProcessEnv,
    pipeStderr: boolean,
  ): ChildProcess {
    const fd = openSync(entry.logPath, 'a');
    let proc: ChildProcess;
    try {
      writeSync(fd, `\n=== flockserve: ${phase} of ${entry.name} at ${new Date().toISOString()} ===\n`);
      // detached: the child leads its own process group, so terminate can kill the
      // engine and everything it started with one kill(-pgid).
      proc = spawn(this.#shell, ['-c', script], {
        cwd,
        env,
        detached: true,
        stdio: ['ignore', fd, pipeStderr ? 'pipe' : fd],
      });
    } finally {
      closeSync(fd); // the child holds its own copy
    }
    proc.on('error', () => {}); // reported through the launch paths; never an uncaught 'error'
    proc.unref();
    entry.proc = proc;
    if (proc.pid !== undefined) entry.groups.push(proc.pid);
    return proc;
  }

  #stop(entry: Entry): Promise<void> {
    entry.stopping ??= this.#killGroups(entry);
    return entry.stopping;
  }

  async #killGroups(entry: Entry): Promise<void> {
    const alive = (): boolean => entry.groups.some((pgid) => signalGroup(pgid, 0)) || running(entry.proc);
    if (!alive()) return;
    signalGroups(entry.groups, 'SIGTERM');
    const termDeadline = performance.now() + this.#graceMs;
    while (alive() && performance.now() < termDeadline) await sleep(POLL_MS);
    if (!alive()) return;
    this.#log('warn', `local: worker ${entry.name} ignored SIGTERM for ${this.#graceMs} ms; sending SIGKILL`);
    signalGroups(entry.groups, 'SIGKILL');
    const killDeadline = performance.now() + AFTER_KILL_WAIT_MS;
    while (alive() && performance.now() < killDeadline) await sleep(POLL_MS);
  }

  #warnUnsupported(task: TaskSpec): void {
    if (this.#warnedTasks.has(task.path)) return;
    this.#warnedTasks.add(task.path);
    const keys = localUnsupportedKeys(task);
    if (keys.length > 0) {
      this.#log('warn', `local provisioner ignores ${keys.join(', ')} of ${task.path}: workers run on this machine`);
    }
  }

  #installExitHook(): void {
    if (this.#exitHookInstalled) return;
    process.on('exit', this.#onProcessExit);
    this.#exitHookInstalled = true;
  }

  // 'exit' handlers must be synchronous: no grace period, SIGKILL so nothing is left behind.
  readonly #onProcessExit = (): void => {
    for (const e of this.#entries.values()) signalGroups(e.groups, 'SIGKILL');
  };
}

function signalGroups(groups: readonly number[], sig: NodeJS.Signals): void {
  for (const pgid of groups) signalGroup(pgid, sig);
}

function running(proc: ChildProcess | undefined): boolean {
  return proc !== undefined && proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
