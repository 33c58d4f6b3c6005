import type { PrefillQueue } from './prefill-queue.js';

/**
 * Contracts between core and the rest. Provisioners and the upstream prober implement
 * these; core only ever sees the interfaces.
 */

/** What a worker runs: the parts of a SkyPilot task YAML that matter to FlockServe. */
export interface TaskSpec {
  /** Absolute path of the task YAML. */
  readonly path: string;
  readonly name?: string;
  readonly setup?: string;
  readonly run?: string;
  /** Working directory, resolved against the YAML's folder. */
  readonly workdir?: string;
  readonly envs: Readonly<Record<string, string>>;
  /** Ports from resources.ports (the first one is the engine's HTTP port). */
  readonly ports: readonly number[];
  /** The whole parsed YAML, for provisioners that pass it on (SkyPilot). */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** Where a worker answers HTTP: a base URL such as http://127.0.0.2:8080 (no trailing slash). */
export interface Endpoint {
  readonly url: string;
  /** Provisioner facts shown by ListWorkers (pid, cloud, region, ...). */
  readonly detail?: Readonly<Record<string, string>>;
}

export type ClusterStatus = 'UP' | 'INIT' | 'STOPPED' | 'GONE';

export interface ClusterInfo {
  readonly name: string;
  readonly status: ClusterStatus;
  readonly endpoint?: Endpoint;
}

/** Makes and unmakes workers. All methods may reject; the fleet treats a rejection as a failure of that step. */
export interface Provisioner {
  readonly kind: string;
  /** Launches the task as worker `name`; resolves once its endpoint is known (it may not be ready yet). */
  launch(name: string, task: TaskSpec, signal: AbortSignal): Promise<Endpoint>;
  /** Tears the worker down; idempotent, resolves once it is gone. */
  terminate(name: string): Promise<void>;
  /** Clusters/workers whose names start with `prefix`, for reconcile and adoption. */
  list(prefix: string): Promise<ClusterInfo[]>;
  /** Releases anything the provisioner holds (not the workers). */
  close?(): Promise<void>;
  /** Checks the provisioner can work (e.g. its CLI is installed) before anything is launched. */
  start?(): Promise<void>;
  /**
   * Stops what the task runs on an existing worker so the task can be launched on it
   * again (`--reinit`; SkyPilot: cancel all jobs on the cluster).
   */
  cancelJobs?(name: string): Promise<void>;
  /**
   * Several gateway replicas: a worker another replica launched is this one's now. For a
   * provisioner that cannot list what other processes made (static: which URLs are taken).
   */
  claim?(name: string, endpoint: Endpoint): void;
}

/**
 * With several gateway replicas, whether this one may still act on the fleet, asked without
 * I/O right before a command that makes or unmakes a cluster runs (src/core/coordination.ts).
 */
export interface ProvisionerFence {
  /** Throws a FencedError unless this replica leads and its lease has not run out. */
  check(action: string): void;
  /** Whether check would pass now. */
  holds(): boolean;
}

/** Asks a worker whether it can serve (readiness path answers 200). */
export interface Prober {
  probe(url: string, signal: AbortSignal): Promise<boolean>;
}

export type WorkerState =
  'provisioning' | 'starting' | 'ready' | 'not_ready' | 'draining' | 'terminating' | 'gone' | 'failed';

/** One worker as core sees it. Mutated only through WorkerPool. */
export interface Worker {
  readonly name: string;
  readonly capacity: number;
  readonly createdAt: number;
  state: WorkerState;
  /** Base URL once known (after provisioning). */
  url: string | undefined;
  /** Requests in flight from this gateway. */
  inFlight: number;
  /**
   * Requests in flight from the other gateway replicas, as they last published it (about once a
   * second; src/core/replica.ts); 0 with one gateway. Balancing and capacity count both.
   */
  remoteInFlight: number;
  /**
   * Prompt bytes this gateway sent that the worker has yet to prefill: for each of its requests
   * that has not answered a first byte, the part of the prompt the balancer expected the
   * worker's prefix cache not to hold (none for policies that do not read prompts), and the
   * worker's pace at them (src/core/prefill-queue.ts). An engine prefills the prompts it admits
   * before it answers any of them, so this is the work a new request waits behind. A whole (not
   * streamed) answer's first byte comes with its end, so its prompt counts until then: an
   * overestimate for workers serving such requests.
   */
  readonly prefill: PrefillQueue;
  totalRequests: number;
  /** When the state last changed (clock ms). */
  stateSince: number;
  lastProbeAt: number | undefined;
  detail: Record<string, string>;
  /**
   * Set by outlier detection (src/core/outlier.ts) while the worker is ejected: it keeps its
   * state (ready, probed as usual) but is no balancing candidate. A flag beside the state, not a
   * state, as Envoy keeps outlier ejection beside health: a worker can be ready and ejected.
   */
  ejected: boolean;
}

export interface WorkerStateChange {
  readonly worker: Worker;
  readonly previous: WorkerState;
  readonly reason: string;
}

export type FleetLogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Log lines with fields, as pino's Logger writes them: what the gateway's parts log to. */
export type StructuredLog = Record<FleetLogLevel, (fields: Record<string, unknown>, msg: string) => void>;
/** How the fleet and its units (health checking, termination) log: a level, a message, structured fields. */
export type FleetLog = (level: FleetLogLevel, msg: string, fields?: Record<string, unknown>) => void;
