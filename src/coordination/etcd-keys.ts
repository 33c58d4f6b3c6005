/**
 * The keys one FlockServe service keeps under its prefix in etcd, and their JSON values. Every
 * value read back is checked before use: a key written by another version, or by hand, is
 * reported and ignored, never trusted.
 *
 *   leader            {id, since}            the leader's lease; its create revision is the term
 *   fleet             SharedFleet            written by the leader only, in a transaction that
 *                                            compares the leader key's create revision (fenced)
 *   replicas/<id>     {id, startedAt, leaving}   each replica's lease
 *   load/<id>         {queueLength, inFlight, waiting, buckets}   each replica's lease; about once a second
 *   commands/<uuid>   {from, command}        a follower's node control, on a lease of its own;
 *                                            deleted with its answer, or by the follower that
 *                                            withdraws it (only while no claim stands)
 *   claims/<uuid>     {leader, term}         the leader running that command, on its lease;
 *                                            written fenced, once, before it runs
 *   results/<uuid>    FleetCommandResult     the leader's answer, on the command's lease
 *   launches/<name>   {leader, term}         a launch under way: written by the leader, fenced, before
 *                                            it starts; deleted once the worker is up or gone (no lease:
 *                                            it outlives the leader, for the next one to find)
 */
import type {
  CarriedAnswer,
  FleetCommand,
  FleetCommandResult,
  ReplicaInfo,
  SharedAdapter,
  SharedFleet,
  SharedWorker,
} from '../core/coordination.js';
import type { LoadBucket } from '../core/load-history.js';
import { isWorkerState } from '../core/pool.js';

export const KEYS = {
  leader: 'leader',
  fleet: 'fleet',
  replicas: 'replicas/',
  load: 'load/',
  commands: 'commands/',
  results: 'results/',
  claims: 'claims/',
  launches: 'launches/',
} as const;

export interface LeaderValue {
  readonly id: string;
  /** Wall-clock ms since the epoch when it took over. */
  readonly since: number;
}

export interface LoadValue {
  readonly queueLength: number;
  readonly inFlight: Readonly<Record<string, number>>;
  readonly waiting?: number | undefined;
  readonly buckets?: readonly LoadBucket[] | undefined;
}

export interface CommandValue {
  readonly from: string;
  readonly command: FleetCommand;
}

type Json = Record<string, unknown>;

function object(text: string): Json | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
  } catch {
    return undefined;
  }
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const isString = (v: unknown): v is string => typeof v === 'string';

/** A JSON object whose every value passes `is`, or undefined. */
function recordOf<T>(v: unknown, is: (x: unknown) => x is T): Record<string, T> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const out: Record<string, T> = {};
  for (const [k, x] of Object.entries(v)) {
    if (!is(x)) return undefined;
    out[k] = x;
  }
  return out;
}

export function parseLeader(text: string): LeaderValue | undefined {
  const o = object(text);
  return o && isString(o.id) && typeof o.since === 'number' ? { id: o.id, since: o.since } : undefined;
}

/** The value of `launches/<name>` or `claims/<uuid>` (the name or id is the key's): the leader that wrote it, and its term. */
export function parseLeaderStamp(text: string): { leader: string; term: number } | undefined {
  const o = object(text);
  return o && isString(o.leader) && isCount(o.term) ? { leader: o.leader, term: o.term } : undefined;
}

export function parseReplica(text: string): ReplicaInfo | undefined {
  const o = object(text);
  return o && isString(o.id) && typeof o.startedAt === 'number' && typeof o.leaving === 'boolean'
    ? { id: o.id, startedAt: o.startedAt, leaving: o.leaving }
    : undefined;
}

export function parseLoad(text: string): LoadValue | undefined {
  const o = object(text);
  const inFlight = o ? recordOf(o.inFlight, isCount) : undefined;
  if (!o || !isCount(o.queueLength) || !inFlight || !optionalCount(o.waiting)) return undefined;
  // Waiting and buckets are absent from a replica that does not publish them.
  const buckets = o.buckets === undefined ? undefined : listOf(o.buckets, parseBucket);
  if (o.buckets !== undefined && !buckets) return undefined;
  return { queueLength: o.queueLength, inFlight, waiting: o.waiting, buckets };
}

const isAmount = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

function parseBucket(v: unknown): LoadBucket | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Json;
  if (typeof o.startMs !== 'number' || !Number.isFinite(o.startMs)) return undefined;
  if (!isCount(o.peak) || !isCount(o.peakWaiting) || !isCount(o.arrivals) || !isCount(o.departures)) return undefined;
  if (!isAmount(o.mean) || !isAmount(o.meanWaiting) || !isAmount(o.ready)) return undefined;
  // A replica of a version before `abandoned` publishes none: its departures all count as served.
  if (!(o.abandoned === undefined || (isCount(o.abandoned) && o.abandoned <= o.departures))) return undefined;
  // Nor first tokens, before they were published: such a replica's streams count as none.
  if (!(o.firstTokens === undefined || isCount(o.firstTokens))) return undefined;
  if (!(o.firstTokenMs === undefined || isAmount(o.firstTokenMs))) return undefined;
  if ((o.firstTokens === undefined) !== (o.firstTokenMs === undefined)) return undefined;
  // Nor late requests: such a replica's count as none.
  if (!(o.late === undefined || isCount(o.late))) return undefined;
  return {
    startMs: o.startMs,
    peak: o.peak,
    mean: o.mean,
    peakWaiting: o.peakWaiting,
    meanWaiting: o.meanWaiting,
    ready: o.ready,
    arrivals: o.arrivals,
    departures: o.departures,
    abandoned: o.abandoned ?? 0,
    firstTokens: o.firstTokens ?? 0,
    firstTokenMs: o.firstTokenMs ?? 0,
    late: o.late ?? 0,
  };
}

function parseWorker(v: unknown): SharedWorker | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Json;
  const detail = recordOf(o.detail, isString);
  if (!isString(o.name) || !isWorkerState(o.state) || !detail) return undefined;
  if (!(o.url === undefined || isString(o.url)) || !isCount(o.capacity) || o.capacity < 1) return undefined;
  return { name: o.name, state: o.state, url: o.url, capacity: o.capacity, detail };
}

function parseAdapter(v: unknown): SharedAdapter | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Json;
  const headers = recordOf(o.headers, isString);
  if (!isString(o.name) || typeof o.loaded !== 'boolean' || !headers) return undefined;
  if (!(o.body === undefined || isString(o.body)) || !(o.path === undefined || isString(o.path))) return undefined;
  return { name: o.name, loaded: o.loaded, body: o.body, path: o.path, headers };
}

/** A list of which every item parses, or undefined. */
function listOf<T>(v: unknown, parse: (x: unknown) => T | undefined): T[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: T[] = [];
  for (const x of v) {
    const parsed = parse(x);
    if (parsed === undefined) return undefined;
    out.push(parsed);
  }
  return out;
}

export function parseFleet(text: string): SharedFleet | undefined {
  const o = object(text);
  if (!o || !isString(o.leader) || !isCount(o.term) || !isCount(o.target)) return undefined;
  if (!isCount(o.minWorkers) || !isCount(o.maxWorkers)) return undefined;
  const workers = listOf(o.workers, parseWorker);
  // A leader of a version before adapters writes none.
  const adapters = o.adapters === undefined ? undefined : listOf(o.adapters, parseAdapter);
  if (!workers || (o.adapters !== undefined && !adapters)) return undefined;
  return {
    leader: o.leader,
    term: o.term,
    target: o.target,
    minWorkers: o.minWorkers,
    maxWorkers: o.maxWorkers,
    workers,
    ...(adapters ? { adapters } : {}),
  };
}

function optionalCount(v: unknown): v is number | undefined {
  return v === undefined || isCount(v);
}

function parseCommand(v: unknown): FleetCommand | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Json;
  const name = o.name;
  switch (o.op) {
    case 'add':
    case 'remove':
      return name === undefined || isString(name) ? { op: o.op, name } : undefined;
    case 'drain':
    case 'launch-ended':
      return isString(name) ? { op: o.op, name } : undefined;
    case 'scale':
      return optionalCount(o.min) && optionalCount(o.max) ? { op: 'scale', min: o.min, max: o.max } : undefined;
    case 'demand':
      return { op: 'demand' };
    case 'adapter': {
      const headers = recordOf(o.headers, isString);
      return (o.kind === 'load' || o.kind === 'unload') && isString(name) && isString(o.body) && headers
        ? { op: 'adapter', kind: o.kind, name, body: o.body, headers }
        : undefined;
    }
    default:
      return undefined;
  }
}

export function parseCommandValue(text: string): CommandValue | undefined {
  const o = object(text);
  const command = o ? parseCommand(o.command) : undefined;
  return o && isString(o.from) && command ? { from: o.from, command } : undefined;
}

export function parseResult(text: string): FleetCommandResult | undefined {
  const o = object(text);
  if (!o) return undefined;
  if (o.ok === false) {
    return isString(o.code) && isString(o.message) && (o.param === undefined || isString(o.param))
      ? { ok: false, code: o.code, message: o.message, param: o.param }
      : undefined;
  }
  if (o.ok !== true) return undefined;
  const worker = o.worker === undefined ? undefined : parseWorker(o.worker);
  if (o.worker !== undefined && !worker) return undefined;
  const b = o.bounds as Json | undefined;
  if (b !== undefined && !(isCount(b.minWorkers) && isCount(b.maxWorkers))) return undefined;
  const answer = o.answer === undefined ? undefined : parseAnswer(o.answer);
  if (o.answer !== undefined && !answer) return undefined;
  return {
    ok: true,
    worker,
    bounds: b === undefined ? undefined : { minWorkers: b.minWorkers as number, maxWorkers: b.maxWorkers as number },
    ...(answer ? { answer } : {}),
  };
}

function parseAnswer(v: unknown): CarriedAnswer | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Json;
  const headers = recordOf(o.headers, isString);
  return isString(o.worker) && isCount(o.status) && isString(o.body) && headers
    ? { worker: o.worker, status: o.status, headers, body: o.body }
    : undefined;
}
