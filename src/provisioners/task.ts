import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError } from '../config/config-error.js';
import type { TaskSpec } from '../core/types.js';

/**
 * Reads a SkyPilot task YAML into a TaskSpec. Only the keys FlockServe needs are checked;
 * everything else is kept in `raw` for provisioners that pass the file on (SkyPilot).
 * Every error is a ConfigError that names the file and what is wrong with it.
 */
export async function loadTask(path: string): Promise<TaskSpec> {
  const abs = resolve(path);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : String(err);
    throw new ConfigError(`task ${abs}: ${why}`, { cause: err });
  }
  return parseTask(text, abs);
}

/** Parses task YAML text; `path` is the (absolute) file it came from, used for errors and workdir. */
export function parseTask(text: string, path: string): TaskSpec {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const first = doc.errors[0];
  if (first) {
    const at = first.linePos?.[0] ?? lines.linePos(first.pos[0]);
    throw new ConfigError(`task ${path}: invalid YAML at line ${at.line}: ${first.message.split('\n')[0]}`);
  }
  const raw: unknown = doc.toJS();
  if (raw === null || raw === undefined) throw new ConfigError(`task ${path}: the file is empty`);
  if (!isRecord(raw)) throw new ConfigError(`task ${path}: the top level must be a mapping, got ${typeName(raw)}`);

  const bad = (key: string, want: string, got: unknown): Error =>
    new ConfigError(`task ${path}: ${key} must be ${want}, got ${typeName(got)}`);
  const optString = (key: string): string | undefined => {
    const v = raw[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw bad(key, 'a string', v);
    return v;
  };

  const workdir = optString('workdir');
  const resources = raw['resources'];
  if (resources !== undefined && resources !== null && !isRecord(resources)) {
    throw bad('resources', 'a mapping', resources);
  }
  return {
    path,
    name: optString('name'),
    setup: optString('setup'),
    run: optString('run'),
    workdir: workdir === undefined ? undefined : resolve(dirname(path), workdir),
    envs: parseEnvs(raw['envs'], path),
    ports: resources ? parsePorts(resources['ports'], path) : [],
    raw,
  };
}

function parseEnvs(v: unknown, path: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isRecord(v)) throw new ConfigError(`task ${path}: envs must be a mapping, got ${typeName(v)}`);
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(v)) {
    // SkyPilot refuses to launch a task whose env is declared without a value: it must be
    // given with --env. We have no --env, so say which one is missing.
    if (value === null || value === undefined) {
      throw new ConfigError(`task ${path}: envs.${key} has no value; set it in the task YAML`);
    }
    if (typeof value === 'object')
      throw new ConfigError(`task ${path}: envs.${key} must be a scalar, got ${typeName(value)}`);
    out[key] = String(value);
  }
  return out;
}

/** resources.ports: 8080, "8080", "8000-8002" (inclusive), or a list of those. */
function parsePorts(v: unknown, path: string): number[] {
  if (v === undefined || v === null) return [];
  const items = Array.isArray(v) ? v : [v];
  const out: number[] = [];
  const fail = (item: unknown): Error =>
    new ConfigError(
      `task ${path}: resources.ports must be a port, "LOW-HIGH" range or list of those, got ${JSON.stringify(item)}`,
    );
  const port = (s: string, item: unknown): number => {
    if (!/^\d+$/.test(s.trim())) throw fail(item);
    const n = Number(s);
    if (n < 1 || n > 65535) throw fail(item);
    return n;
  };
  for (const item of items) {
    if (typeof item === 'number') {
      if (!Number.isInteger(item)) throw fail(item);
      out.push(port(String(item), item));
    } else if (typeof item === 'string') {
      const range = item.split('-');
      if (range.length === 1) out.push(port(item, item));
      else if (range.length === 2) {
        const lo = port(range[0]!, item);
        const hi = port(range[1]!, item);
        if (hi < lo) throw fail(item);
        for (let p = lo; p <= hi; p++) out.push(p);
      } else throw fail(item);
    } else throw fail(item);
  }
  return out;
}

/** Provisioners that start the task's `run` on each worker: without it a worker never serves. */
const RUNS_THE_TASK: ReadonlySet<string> = new Set(['local', 'skypilot']);

/**
 * What the provisioner will need of the task, checked before the gateway listens (as `nginx -t`
 * checks its configuration), so a broken task fails at startup with its reason instead of
 * failing launch after launch: a `run` command for the provisioners that launch the task, and
 * for `local`, a workdir that exists.
 */
export function checkTask(task: TaskSpec, provisioner: string): void {
  if (!RUNS_THE_TASK.has(provisioner)) return;
  if (task.run === undefined || task.run.trim() === '') {
    throw new ConfigError(
      `task ${task.path}: no run command: a worker runs the task's \`run\` (the command that starts the engine), and this task has none`,
    );
  }
  if (provisioner === 'local') {
    const cwd = task.workdir ?? dirname(task.path);
    if (!isDirectory(cwd)) throw new ConfigError(`task ${task.path}: workdir ${cwd} is not a directory`);
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The worker's HTTP port: --port when given (≥ 0), else the task's first resources.ports entry. */
export function taskPort(task: TaskSpec, cliPort: number): number {
  if (cliPort >= 0) return cliPort;
  const first = task.ports[0];
  if (first === undefined) throw new ConfigError(`no port: pass --port or set resources.ports in ${task.path}`);
  return first;
}

// Keys that only mean something on a cloud. The local provisioner runs the task on this
// machine as it is, so it ignores them (and warns once).
const CLOUD_RESOURCE_KEYS = [
  'accelerators',
  'accelerator_args',
  'cloud',
  'infra',
  'region',
  'zone',
  'instance_type',
  'cpus',
  'memory',
  'disk_size',
  'disk_tier',
  'use_spot',
  'spot_recovery',
  'job_recovery',
  'image_id',
  'labels',
  'any_of',
  'ordered',
  'network_tier',
  'autostop',
] as const;
const CLOUD_TOP_KEYS = ['file_mounts', 'storage_mounts', 'service', 'volumes', 'config'] as const;

/** The cloud-only keys this task sets that the local provisioner ignores, as dotted paths. */
export function localUnsupportedKeys(task: TaskSpec): string[] {
  const out: string[] = [];
  const resources = task.raw['resources'];
  if (isRecord(resources)) {
    for (const key of CLOUD_RESOURCE_KEYS) if (present(resources[key])) out.push(`resources.${key}`);
  }
  for (const key of CLOUD_TOP_KEYS) if (present(task.raw[key])) out.push(key);
  const nodes = task.raw['num_nodes'];
  if (typeof nodes === 'number' && nodes > 1) out.push('num_nodes');
  return out;
}

function present(v: unknown): boolean {
  return v !== undefined && v !== null;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}
