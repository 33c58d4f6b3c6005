import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Config } from '../config/options.js';
import { ConfigError } from '../config/resolve.js';
import type { Coordinator } from '../core/coordination.js';
import { EtcdCoordinator, type CoordinationLog } from './etcd.js';
import { InProcessCoordinator } from './in-process.js';

export type { CoordinationLog } from './etcd.js';

type CoordinationConfig = Pick<
  Config,
  | 'etcdEndpoints'
  | 'etcdPrefix'
  | 'etcdLeaseTtl'
  | 'etcdCa'
  | 'etcdCert'
  | 'etcdKey'
  | 'etcdUser'
  | 'etcdPassword'
  | 'replicaName'
  | 'workerNamePrefix'
  | 'provisioner'
>;

/** This replica's name: replica_name, else <hostname>-<pid>. */
export function replicaName(c: Pick<Config, 'replicaName'>): string {
  return c.replicaName ?? `${hostname()}-${process.pid}`;
}

/** The etcd key prefix of this service: etcd_prefix, else /flockserve/<worker_name_prefix>/; always ends with '/'. */
export function etcdPrefix(c: Pick<Config, 'etcdPrefix' | 'workerNamePrefix'>): string {
  const p = c.etcdPrefix ?? `/flockserve/${c.workerNamePrefix}/`;
  return p.endsWith('/') ? p : `${p}/`;
}

/**
 * Checks the coordination options (no I/O): the endpoints are http(s) URLs of one scheme,
 * https has a CA, a client certificate comes with its key, a user with a password, and the
 * provisioner's workers outlive one gateway (local workers are child processes of the gateway
 * that launched them, so no other replica could adopt them).
 */
export function checkCoordinationOptions(c: CoordinationConfig): void {
  const urls = c.etcdEndpoints;
  if (urls.length === 0) return;
  const schemes = new Set<string>();
  for (const u of urls) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw new ConfigError(`--etcd_endpoints: ${JSON.stringify(u)} is not a URL (e.g. http://10.0.0.1:2379)`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new ConfigError(`--etcd_endpoints: ${u} must be http:// or https://`);
    }
    schemes.add(parsed.protocol);
  }
  if (schemes.size > 1) throw new ConfigError('--etcd_endpoints: use all http:// or all https://, not both');
  if (schemes.has('https:') && c.etcdCa === undefined) {
    throw new ConfigError(
      "--etcd_endpoints are https://: give --etcd_ca, the CA that signed the members' certificates",
    );
  }
  if (schemes.has('http:') && (c.etcdCa !== undefined || c.etcdCert !== undefined)) {
    throw new ConfigError('--etcd_ca and --etcd_cert are for https:// endpoints; these are http://');
  }
  if ((c.etcdCert === undefined) !== (c.etcdKey === undefined)) {
    throw new ConfigError('--etcd_cert and --etcd_key go together');
  }
  if ((c.etcdUser === undefined) !== (c.etcdPassword === undefined)) {
    throw new ConfigError('--etcd_user and --etcd_password go together');
  }
  if (c.provisioner === 'local') {
    throw new ConfigError(
      '--etcd_endpoints with --provisioner local: local workers are child processes of the gateway that launched them, so no other replica could take them over; use skypilot (or static)',
    );
  }
}

/** The coordinator the options ask for: etcd when etcd_endpoints is set, else in-process. */
export async function createCoordinator(c: CoordinationConfig, log?: CoordinationLog): Promise<Coordinator> {
  checkCoordinationOptions(c);
  const replica = replicaName(c);
  if (c.etcdEndpoints.length === 0) return new InProcessCoordinator(replica);
  const read = (path: string | undefined): Promise<Buffer | undefined> =>
    path === undefined ? Promise.resolve(undefined) : readFile(path.replace(/^~(?=$|\/)/, process.env.HOME ?? '~'));
  const [ca, cert, key] = await Promise.all([read(c.etcdCa), read(c.etcdCert), read(c.etcdKey)]);
  return new EtcdCoordinator({
    endpoints: c.etcdEndpoints,
    prefix: etcdPrefix(c),
    leaseTtlSeconds: c.etcdLeaseTtl,
    replica,
    tls: ca ? { ca, cert, key } : undefined,
    auth: c.etcdUser !== undefined ? { username: c.etcdUser, password: c.etcdPassword ?? '' } : undefined,
    log,
  });
}
