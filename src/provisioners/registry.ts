import { ConfigError } from '../config/config-error.js';
import type { Clock } from '../core/clock.js';
import type { Provisioner, ProvisionerFence } from '../core/types.js';
import type { ProvisionerLog } from './common.js';
import { LocalProvisioner } from './local.js';
import type { ProvisionerName } from './names.js';
import { SkyPilotProvisioner } from './skypilot/skypilot.js';
import { StaticProvisioner } from './static.js';

/** What the gateway hands a provisioner factory, from the resolved options. */
export interface ProvisionerContext {
  /** Base URLs of already running engines (option `workers`, provisioner static). */
  readonly workers: readonly string[];
  readonly log?: ProvisionerLog;
  /** Called when a worker dies on its own (local: process exit), so the fleet replaces it. */
  readonly onWorkerLost?: (name: string, reason: string) => void;
  /** Folder of per-worker logs (option log_dir). */
  readonly logDir?: string;
  /** The workers' HTTP port when the task names none in resources.ports (option port; -1 = none). */
  readonly workerPort?: number;
  /** Several gateway replicas: checked right before a command that makes or unmakes a cluster runs. */
  readonly fence?: ProvisionerFence;
  /** Settings of the skypilot provisioner, from the options of the same names. */
  readonly skypilot?: {
    readonly workerEnv: readonly string[];
    readonly autostopMinutes: number | undefined;
    readonly maxConcurrentLaunches: number;
    readonly launchTimeoutMs: number;
    readonly commandTimeoutMs: number;
    readonly refreshIntervalMs: number;
  };
  readonly clock?: Clock;
}

export type ProvisionerFactory = (ctx: ProvisionerContext) => Provisioner;

/** The one table of provisioners, one factory for each of the names in names.ts. */
export const PROVISIONERS = {
  skypilot: (ctx) =>
    new SkyPilotProvisioner({
      ...ctx.skypilot,
      port: ctx.workerPort,
      logDir: ctx.logDir,
      log: ctx.log,
      clock: ctx.clock,
      fence: ctx.fence,
      onWorkerLost: ctx.onWorkerLost,
    }),
  local: (ctx) =>
    new LocalProvisioner({
      log: ctx.log,
      logDir: ctx.logDir,
      onExit: (name, code, signal) =>
        ctx.onWorkerLost?.(name, code === null ? `process killed by ${signal}` : `process exited with code ${code}`),
    }),
  static: (ctx) => {
    if (ctx.workers.length === 0) throw new ConfigError('provisioner static needs --workers URL[,URL...]');
    return new StaticProvisioner(ctx.workers);
  },
} satisfies Record<ProvisionerName, ProvisionerFactory>;
