import type { Provisioner } from '../core/types.js';
import { LocalProvisioner, type ProvisionerLog } from './local.js';
import { StaticProvisioner } from './static.js';

/** What the gateway hands a provisioner factory, from the resolved options. */
export interface ProvisionerContext {
  /** Base URLs of already running engines (option `workers`, provisioner static). */
  readonly workers: readonly string[];
  readonly log?: ProvisionerLog;
  /** Called when a worker dies on its own (local: process exit), so the fleet replaces it. */
  readonly onWorkerLost?: (name: string, reason: string) => void;
  /** Folder of per-worker logs (local). */
  readonly logDir?: string;
}

export type ProvisionerFactory = (ctx: ProvisionerContext) => Provisioner;

/**
 * The one table of provisioners; the `provisioner` option's choices must match its keys.
 * `skypilot` (the default, execa → `sky`) is added here by its own issue.
 */
export const PROVISIONERS = {
  local: (ctx) =>
    new LocalProvisioner({
      log: ctx.log,
      logDir: ctx.logDir,
      onExit: (name, code, signal) =>
        ctx.onWorkerLost?.(name, code === null ? `process killed by ${signal}` : `process exited with code ${code}`),
    }),
  static: (ctx) => {
    if (ctx.workers.length === 0) throw new Error('provisioner static needs --workers URL[,URL...]');
    return new StaticProvisioner(ctx.workers);
  },
} satisfies Record<string, ProvisionerFactory>;

export type ProvisionerName = keyof typeof PROVISIONERS;
