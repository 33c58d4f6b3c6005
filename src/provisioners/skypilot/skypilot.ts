import { join } from 'node:path';
import type { Clock, TimerHandle } from '../../core/clock.js';
import type { ClusterInfo, Endpoint, Provisioner, ProvisionerFence, TaskSpec } from '../../core/types.js';
import { errorMessage } from '../../core/errors.js';
import { systemClock } from '../../runtime/system-clock.js';
import { abortReason, defaultLogDir, type ProvisionerLog } from '../common.js';
import { SkyCli, describeFailure, type SkyResult } from './cli.js';
import { formatElapsed, nextPhase, type LaunchPhase } from './launch-progress.js';
import { LaunchSlots } from './launch-slots.js';
import {
  normalizeEndpoint,
  parseIp,
  parseStatusJson,
  parseStatusTable,
  stripAnsi,
  type SkyClusterRow,
} from './status-parse.js';
import { detectSky, type SkyCapabilities } from './version.js';

export interface SkyPilotProvisionerOptions {
  /** The `sky` runner; default runs `sky` from PATH. */
  readonly cli?: SkyCli;
  /** Worker port when the task has no resources.ports (option port; -1 = none). */
  readonly port?: number;
  /** `K=V` entries passed to every launch as `--env K=V` (option worker_env). */
  readonly workerEnv?: readonly string[];
  /** Autostop-and-down after this many idle minutes (`-i N --down`); unset = never (option worker_autostop_minutes). */
  readonly autostopMinutes?: number;
  /** Launches running at once (option max_concurrent_launches). Default 4. */
  readonly maxConcurrentLaunches?: number;
  /** A `sky launch` running longer is killed (option launch_timeout). Default 30 min. */
  readonly launchTimeoutMs?: number;
  /** Every other `sky` call is killed after this long (option sky_command_timeout). Default 120 s. */
  readonly commandTimeoutMs?: number;
  /** Least time between `sky status --refresh` calls, which query the clouds (option sky_refresh_interval). Default 60 s. */
  readonly refreshIntervalMs?: number;
  /** How often a running launch logs its phase and elapsed time. Default 30 s. */
  readonly progressIntervalMs?: number;
  /** Per-worker launch logs go to <logDir>/<worker>.log (option log_dir). Default ~/.flockserve/logs. */
  readonly logDir?: string;
  readonly log?: ProvisionerLog;
  /** A worker's cluster is gone, STOPPED or back in INIT (preemption): the fleet replaces it. */
  readonly onWorkerLost?: (name: string, reason: string) => void;
  /**
   * Several gateway replicas: checked right before `sky launch`, `sky down` and `sky cancel`
   * run (nothing in between, so a replica paused past its lease cannot run one when it wakes),
   * and before each `sky status --refresh` (only the leader refreshes).
   */
  readonly fence?: ProvisionerFence | undefined;
  readonly clock?: Clock;
}

/**
 * Workers as SkyPilot clusters, driven through the `sky` CLI. The command lines, with
 * where each flag is defined upstream (skypilot-org/skypilot):
 *
 *   sky --version                          click.version_option on `cli` (sky/client/cli/command.py)
 *   sky status --help                      does `status` take -o/--output? (see version.ts)
 *   sky launch -c NAME TASK.yaml -y -d     launch: --cluster/-c, --yes/-y, --detach-run/-d (command.py)
 *       [--env K=V ...]                    TASK_OPTIONS --env (sky/client/cli/flags.py)
 *       [-i N --down]                      launch: --idle-minutes-to-autostop/-i, --down (command.py)
 *   sky status --endpoint PORT NAME        status: --endpoint (command.py, _show_endpoint)
 *   sky status --ip NAME                   status: --ip (command.py)
 *   sky status [-o json] [NAME ...]        status: CLUSTERS argument (command.py)
 *   sky status --refresh NAME ...          status: --refresh/-r (command.py)
 *   sky down -y NAME                       down: CLUSTERS, flags.yes_option (command.py)
 *   sky cancel -a -y NAME                  cancel: CLUSTER, flags.all_option, flags.yes_option (command.py)
 *
 * `sky down` exits 0 even when the teardown failed (_down_or_stop_clusters only prints
 * the failure), so terminate() confirms with `sky status NAME` and throws if the cluster
 * is still listed; the fleet retries and, if it never goes away, reports it.
 */
export class SkyPilotProvisioner implements Provisioner {
  readonly kind = 'skypilot';
  readonly #cli: SkyCli;
  readonly #log: ProvisionerLog;
  readonly #clock: Clock;
  readonly #slots: LaunchSlots;
  readonly #options: SkyPilotProvisionerOptions;
  readonly #envArgs: string[];
  readonly #launchTimeoutMs: number;
  readonly #commandTimeoutMs: number;
  readonly #refreshIntervalMs: number;
  readonly #logDir: string;
  #caps: SkyCapabilities | undefined;
  /**
   * Clusters known to be UP (launched or listed by us): watched for preemption, each with the
   * watch it is under. A refresh's verdict on a cluster holds only for the watch it read: a
   * cluster torn down and launched again under its name while the refresh ran is a new one.
   */
  readonly #watched = new Map<string, number>();
  #watches = 0;
  #refreshTimer: TimerHandle | undefined;
  #closed = false;

  constructor(opts: SkyPilotProvisionerOptions = {}) {
    this.#options = opts;
    this.#cli = opts.cli ?? new SkyCli();
    this.#log = opts.log ?? (() => {});
    this.#clock = opts.clock ?? systemClock;
    this.#slots = new LaunchSlots(opts.maxConcurrentLaunches ?? 4);
    this.#launchTimeoutMs = opts.launchTimeoutMs ?? 30 * 60_000;
    this.#commandTimeoutMs = opts.commandTimeoutMs ?? 120_000;
    this.#refreshIntervalMs = opts.refreshIntervalMs ?? 60_000;
    this.#logDir = opts.logDir ?? defaultLogDir();
    this.#envArgs = envArgs(opts.workerEnv ?? []);
    if (opts.autostopMinutes !== undefined && (!Number.isInteger(opts.autostopMinutes) || opts.autostopMinutes < 0)) {
      throw new Error(`worker_autostop_minutes must be a whole number ≥ 0, got ${opts.autostopMinutes}`);
    }
  }

  /** What `sky` is installed (after start()). */
  get capabilities(): SkyCapabilities | undefined {
    return this.#caps;
  }

  /** Detects `sky` and its version; fails with install instructions when it is missing. */
  async start(): Promise<void> {
    this.#caps = await detectSky(this.#cli, this.#commandTimeoutMs);
    this.#log(
      'info',
      `skypilot: SkyPilot ${this.#caps.version} (${this.#cli.command}); reading \`sky status\` as ${this.#caps.statusJson ? 'JSON (-o json)' : 'a table'}`,
    );
  }

  async launch(name: string, task: TaskSpec, signal: AbortSignal): Promise<Endpoint> {
    if (this.#closed) throw new Error('skypilot provisioner is closed');
    const port = this.#workerPort(task);
    if (this.#slots.running >= this.#slots.max) {
      this.#log('info', `${name} queued: ${this.#slots.running} launches running (max_concurrent_launches)`);
    }
    await this.#slots.acquire(signal);
    const logPath = join(this.#logDir, `${name}.log`);
    try {
      const args = ['launch', '-c', name, task.path, '-y', '-d', ...this.#envArgs];
      if (this.#options.autostopMinutes !== undefined) args.push('-i', String(this.#options.autostopMinutes), '--down');
      // The last word before the command runs: #runWithProgress spawns it without awaiting first.
      this.#options.fence?.check(`sky launch ${name}`);
      const r = await this.#runWithProgress(name, args, logPath, signal);
      if (r.aborted) throw abortReason(signal);
      if (r.timedOut) {
        throw new Error(
          `launch of ${name} timed out after ${formatElapsed(this.#launchTimeoutMs)} (launch_timeout); its process group was killed; see ${logPath}`,
        );
      }
      if (r.exitCode !== 0) throw new Error(`${describeFailure(r)}; see ${logPath}`);
    } finally {
      this.#slots.release();
    }
    signal.throwIfAborted();
    const url = await this.#endpoint(name, port);
    this.#watch(name);
    this.#log('info', `${name} is up at ${url} (log ${logPath})`);
    return { url, detail: { cluster: name, log: logPath } };
  }

  /** `sky down -y NAME`, then confirms with `sky status NAME`. Idempotent. */
  async terminate(name: string): Promise<void> {
    this.#watched.delete(name);
    this.#options.fence?.check(`sky down ${name}`);
    const down = await this.#cli.run(['down', '-y', name], { timeoutMs: this.#commandTimeoutMs });
    if (down.exitCode !== 0) throw new Error(describeFailure(down, this.#commandTimeoutMs));
    let listed: SkyClusterRow[];
    try {
      listed = await this.#status([name]);
    } catch (err) {
      throw new Error(
        `\`${down.command}\` exited 0, but whether ${name} is gone could not be confirmed: ${errorMessage(err)}`,
      );
    }
    const left = listed.find((c) => c.name === name);
    if (left) {
      // SkyPilot ends with "Cluster(s) failed. See details above."; the cause is its Reason line.
      const lines = stripAnsi(down.stdout).trim().split('\n');
      const said = (lines.find((l) => /^\s*Reason:/.test(l)) ?? lines.at(-1) ?? '').trim();
      throw new Error(
        `\`${down.command}\` exited 0 but ${name} is still listed as ${left.status}${said ? ` (sky said: ${said})` : ''}`,
      );
    }
  }

  /** Clusters named `<prefix>…`; UP ones with their endpoint. */
  async list(prefix: string): Promise<ClusterInfo[]> {
    const rows = (await this.#status([])).filter((c) => c.name.startsWith(prefix));
    const out: ClusterInfo[] = [];
    for (const row of rows) {
      if (row.status !== 'UP') {
        out.push({ name: row.name, status: row.status });
        continue;
      }
      let endpoint: Endpoint | undefined;
      try {
        endpoint = { url: await this.#endpoint(row.name, this.#options.port ?? -1), detail: { cluster: row.name } };
        this.#watch(row.name);
      } catch (err) {
        this.#log('warn', `skypilot: no endpoint for ${row.name}: ${(err as Error).message}`);
      }
      out.push({ name: row.name, status: 'UP', ...(endpoint ? { endpoint } : {}) });
    }
    return out;
  }

  /** `sky cancel -a -y NAME`: stops the task's jobs so the task can be launched again (--reinit). */
  async cancelJobs(name: string): Promise<void> {
    this.#options.fence?.check(`sky cancel ${name}`);
    const r = await this.#cli.run(['cancel', '-a', '-y', name], { timeoutMs: this.#commandTimeoutMs });
    if (r.exitCode !== 0) throw new Error(describeFailure(r, this.#commandTimeoutMs));
  }

  /** Stops watching and kills `sky` calls still running; the clusters stay (the fleet decides). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#refreshTimer?.cancel();
    this.#refreshTimer = undefined;
    await this.#cli.killAll();
  }

  // ---- endpoints and status ------------------------------------------------------------

  /** `sky status --endpoint PORT NAME`, else `sky status --ip NAME` + port. */
  async #endpoint(name: string, portHint: number): Promise<string> {
    const port = portHint > 0 ? portHint : undefined;
    const problems: string[] = [];
    if (port !== undefined) {
      const r = await this.#cli.run(['status', '--endpoint', String(port), name], {
        timeoutMs: this.#commandTimeoutMs,
      });
      const url = r.exitCode === 0 ? normalizeEndpoint(r.stdout) : undefined;
      if (url) return url;
      problems.push(describeFailure(r, this.#commandTimeoutMs));
    }
    const r = await this.#cli.run(['status', '--ip', name], { timeoutMs: this.#commandTimeoutMs });
    const ip = r.exitCode === 0 ? parseIp(r.stdout) : undefined;
    if (ip && port !== undefined) return `http://${ip}:${port}`;
    problems.push(ip ? 'no port: set resources.ports in the task or pass --port' : describeFailure(r));
    throw new Error(`no endpoint for ${name}: ${problems.join('; ')}`);
  }

  /** Rows of `sky status [--refresh] [NAME ...]`, as JSON where supported, else from the table. */
  async #status(names: readonly string[], refresh = false): Promise<SkyClusterRow[]> {
    const json = this.#caps?.statusJson === true;
    const args = ['status', ...(refresh ? ['--refresh'] : []), ...(json ? ['-o', 'json'] : []), ...names];
    const r: SkyResult = await this.#cli.run(args, { timeoutMs: this.#commandTimeoutMs });
    if (r.exitCode !== 0) throw new Error(describeFailure(r, this.#commandTimeoutMs));
    return json ? parseStatusJson(r.stdout) : parseStatusTable(r.stdout);
  }

  #workerPort(task: TaskSpec): number {
    const port = task.ports[0] ?? ((this.#options.port ?? -1) > 0 ? this.#options.port! : undefined);
    if (port === undefined) throw new Error(`no worker port: set resources.ports in ${task.path} or pass --port`);
    return port;
  }

  // ---- launch progress -----------------------------------------------------------------

  /** Runs `sky launch`, logging `<worker> <phase> <elapsed>` on each phase change and every progress interval. */
  async #runWithProgress(name: string, args: string[], logPath: string, signal: AbortSignal): Promise<SkyResult> {
    const started = this.#clock.now();
    let phase: LaunchPhase = 'starting';
    const report = (): void => this.#log('info', `${name} ${phase} ${formatElapsed(this.#clock.now() - started)}`);
    report();
    const every = this.#options.progressIntervalMs ?? 30_000;
    let timer: TimerHandle | undefined;
    const tick = (): void => {
      report();
      timer = this.#clock.setTimer(every, tick);
    };
    timer = this.#clock.setTimer(every, tick);
    try {
      return await this.#cli.run(args, {
        timeoutMs: this.#launchTimeoutMs,
        logPath,
        signal,
        onLine: (line) => {
          const next = nextPhase(phase, line);
          if (next !== phase) {
            phase = next;
            report();
          }
        },
      });
    } finally {
      timer?.cancel();
    }
  }

  // ---- preemption watch ----------------------------------------------------------------

  #watch(name: string): void {
    // A cluster listed again keeps its watch (list() re-watches every UP cluster it reads); one
    // torn down (terminate forgets it) and launched again gets a new one.
    if (!this.#watched.has(name)) this.#watched.set(name, ++this.#watches);
    this.#scheduleRefresh();
  }

  /** One `sky status --refresh` per refresh interval at most, never two at once: it queries the clouds. */
  #scheduleRefresh(): void {
    if (this.#refreshTimer || this.#closed || this.#watched.size === 0) return;
    this.#refreshTimer = this.#clock.setTimer(this.#refreshIntervalMs, () => {
      void this.#refresh().finally(() => {
        this.#refreshTimer = undefined;
        this.#scheduleRefresh();
      });
    });
  }

  async #refresh(): Promise<void> {
    // Only the leader watches for preemption; a replica that stopped leading forgets its clusters.
    if (this.#options.fence && !this.#options.fence.holds()) {
      this.#watched.clear();
      return;
    }
    const read = new Map(this.#watched);
    const names = [...read.keys()].sort();
    let rows: SkyClusterRow[];
    try {
      rows = await this.#status(names, true);
    } catch (err) {
      this.#log('warn', `skypilot: could not refresh cluster statuses: ${(err as Error).message}`);
      return;
    }
    const byName = new Map(rows.map((r) => [r.name, r.status]));
    for (const name of names) {
      // Terminated meanwhile, or launched again under its name: not the cluster this refresh read.
      if (this.#watched.get(name) !== read.get(name) || this.#closed) continue;
      const status = byName.get(name);
      const reason =
        status === undefined
          ? 'its cluster is gone (sky status --refresh no longer lists it)'
          : status === 'STOPPED'
            ? 'its cluster is STOPPED (preempted, or stopped outside FlockServe)'
            : status === 'INIT'
              ? 'its cluster went from UP back to INIT (preempted node or unhealthy SkyPilot runtime)'
              : undefined;
      if (reason === undefined) continue;
      this.#watched.delete(name);
      this.#log('warn', `skypilot: ${name}: ${reason}`);
      this.#options.onWorkerLost?.(name, reason);
    }
  }
}

/** worker_env entries → `--env K=V` pairs; each must be K=V with a valid variable name. */
export function envArgs(entries: readonly string[]): string[] {
  const out: string[] = [];
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    const key = eq > 0 ? entry.slice(0, eq) : '';
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      throw new Error(`worker_env: ${JSON.stringify(entry)} is not KEY=VALUE`);
    }
    out.push('--env', entry);
  }
  return out;
}
