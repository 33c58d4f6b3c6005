// Types of fleet.mjs, for the benches written in TypeScript.
import type { ChildProcess } from 'node:child_process';

export function freePort(): Promise<number>;

export interface Sim {
  readonly port: number;
  readonly url: string;
  child: ChildProcess | undefined;
  start(): Promise<void>;
  kill(): Promise<void>;
  stop(): Promise<void>;
}
/** `start: false`: the port is reserved, the engine started later with `sim.start()`. */
export function startSim(args?: string[], options?: { start?: boolean }): Promise<Sim>;

export interface GatewayMemory extends NodeJS.MemoryUsage {
  /** Anonymous memory (KiB) from /proc/self/smaps_rollup: heaps and malloc, not mapped files. */
  readonly anonKiB: number;
  /** v8.getHeapStatistics().malloced_memory: what V8 allocates with malloc outside its heap. */
  readonly mallocedMemory: number;
  /** The young generation's committed size (v8.getHeapSpaceStatistics()'s new_space space_size). */
  readonly newSpaceSize: number;
  /** process.getActiveResourcesInfo() counted by kind (TCPSocketWrap, Timeout, ...). */
  readonly resources: Readonly<Record<string, number>>;
}

export interface GatewayProcess {
  readonly url: string;
  readonly grpcAddress: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** `snapshot`: also write a heap snapshot to this path (after the GC). */
  memory(options?: { gc?: boolean; snapshot?: string }): Promise<GatewayMemory>;
  rssMiB(): number;
  fds(): number;
  /** The gateway's TCP sockets by what is at their other end. */
  sockets(): { listening: number; fromClients: number; toWorkers: number; other: number; closeWait: number };
  status(): Promise<{ current_queue_length: number; ready_worker_count: number; total_requests: number }>;
  stop(): Promise<void>;
}
export function startGateway(options: {
  workers: readonly { url: string }[];
  args?: string[];
  nodeArgs?: string[];
  env?: Record<string, string>;
  /** How long it may take to start and see every worker ready (20 s). */
  startTimeoutMs?: number;
  /** How many workers must be ready before it resolves (all of them). */
  ready?: number;
}): Promise<GatewayProcess>;
export function startFleet(options: {
  workers: number;
  simArgs?: string[];
  capacity: number;
  args?: string[];
  /** The last `late` simulators are not started; the gateway is ready without them. */
  late?: number;
  nodeArgs?: string[];
  env?: Record<string, string>;
}): Promise<{ sims: Sim[]; gw: GatewayProcess }>;

export function startNginxFleet(options: {
  workers: number;
  simArgs?: string[];
  nofile?: number;
}): Promise<{ url: string; sims: Sim[]; proxy: ChildProcess; close(): Promise<void> }>;

/** The command line of `flockserve --provisioner static` over `workers` (URLs) on 127.0.0.1. */
export function staticGatewayArgs(o: { workers: string[]; port: number; grpcPort: number }): string[];
