/**
 * The coordination port: how gateway replicas that steer one fleet agree on who leads it, see
 * the fleet the leader keeps, and see each other's load. Types only; the adapters live in
 * src/coordination (in-process: one gateway, no store; etcd: several replicas).
 *
 * One replica leads. Only the leader calls the provisioner and runs the autoscaler, and every
 * provisioner call and fleet write it makes is fenced: it goes ahead only while its leadership
 * (in etcd: its lease, and the leader key's create revision as the term) is still current.
 * Every replica serves requests over the fleet the leader last wrote.
 */
import type { LaunchLedger } from './launch-ledger.js';
import type { LoadBucket } from './load-history.js';
import type { WorkerState } from './types.js';

/** One worker as the leader publishes it to every replica. */
export interface SharedWorker {
  readonly name: string;
  readonly state: WorkerState;
  /** Base URL once the worker is up. */
  readonly url: string | undefined;
  readonly capacity: number;
  readonly detail: Readonly<Record<string, string>>;
}

/** The fleet as the leader last wrote it. */
export interface SharedFleet {
  /** The replica that wrote it, and its term (etcd: the leader key's create revision). */
  readonly leader: string;
  readonly term: number;
  /** Workers the fleet is asked to run. */
  readonly target: number;
  /** The autoscaler's bounds (node control changes them at run time). */
  readonly minWorkers: number;
  readonly maxWorkers: number;
  /** Every worker not yet gone. */
  readonly workers: readonly SharedWorker[];
  /** The run-time LoRA adapter changes every worker must hold (AdapterLedger); absent when there are none. */
  readonly adapters?: readonly SharedAdapter[] | undefined;
}

/** One adapter's last change, as the leader shares it: a new leader brings joining workers to it. */
export interface SharedAdapter {
  readonly name: string;
  readonly loaded: boolean;
  /** The client's load request (JSON text), replayed as it came, and its `lora_path`. */
  readonly body?: string | undefined;
  readonly path?: string | undefined;
  /** What of the client's headers the replay carries (the engine's key). */
  readonly headers: Readonly<Record<string, string>>;
}

/** An HTTP answer carried in a command's result (an adapter change the leader made). */
export interface CarriedAnswer {
  /** The worker that wrote it. */
  readonly worker: string;
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** What the leader writes; the adapter stamps it with the leader and term. */
export type FleetSnapshot = Omit<SharedFleet, 'leader' | 'term'>;

/** One replica's share of the load, published about once a second. */
export interface ReplicaLoad {
  readonly replica: string;
  /** Requests in flight plus waiting at this replica. */
  readonly queueLength: number;
  /** Requests in flight from this replica, by worker name (workers with none are left out). */
  readonly inFlight: Readonly<Record<string, number>>;
  /** Of queueLength, the requests waiting for a slot (absent from a replica that does not publish it: none). */
  readonly waiting?: number | undefined;
  /**
   * Its newest finished load-history buckets, oldest first (FleetHistory: the leader's autoscaler
   * sums every replica's by start time). Absent: it publishes none.
   */
  readonly buckets?: readonly LoadBucket[] | undefined;
}

/** A replica as the others see it. */
export interface ReplicaInfo {
  readonly id: string;
  /** Wall-clock ms since the epoch. */
  readonly startedAt: number;
  /** Shutting down: it serves no new requests and is not handed the leadership. */
  readonly leaving: boolean;
}

export interface CoordinationStatus {
  /** 'in-process' or 'etcd'. */
  readonly kind: string;
  /** This replica's id. */
  readonly replica: string;
  readonly leading: boolean;
  /** The leader's id, when one is known. */
  readonly leader: string | undefined;
  /** When the current leader took over, wall-clock ms since the epoch. */
  readonly leaderSince: number | undefined;
  /** The live replicas, this one included, by id. */
  readonly replicas: readonly ReplicaInfo[];
  /** Whether the shared store answers (in-process: always). */
  readonly storeReachable: boolean;
  /** Since when it does not, wall-clock ms since the epoch. */
  readonly storeUnreachableSince: number | undefined;
}

/** Node control that a follower passes to the leader, which alone changes the fleet. */
export type FleetCommand =
  | { readonly op: 'add'; readonly name?: string | undefined }
  | { readonly op: 'remove'; readonly name?: string | undefined }
  | { readonly op: 'drain'; readonly name: string }
  | { readonly op: 'scale'; readonly min?: number | undefined; readonly max?: number | undefined }
  /** A request arrived at a follower while no worker is live: scale from zero now. */
  | { readonly op: 'demand' }
  /**
   * From a replica that stopped leading: its launch of `name` was aborted and has ended (its
   * `sky launch` is gone). The leader, which awaits that launch, need not wait for launch_timeout:
   * the cluster it finds not up now is torn down.
   */
  | { readonly op: 'launch-ended'; readonly name: string }
  /**
   * A client's run-time LoRA adapter change that reached a follower: the leader makes it on every
   * worker and keeps it, so that one ledger brings every joining worker to it.
   */
  | {
      readonly op: 'adapter';
      readonly kind: 'load' | 'unload';
      readonly name: string;
      /** The client's request body (JSON text) and the headers the engines get with it. */
      readonly body: string;
      readonly headers: Readonly<Record<string, string>>;
    };

/** The leader's answer to a FleetCommand: the worker it acted on, or the new bounds, or an error of the catalogue. */
export type FleetCommandResult =
  | {
      readonly ok: true;
      readonly worker?: SharedWorker | undefined;
      readonly bounds?: { readonly minWorkers: number; readonly maxWorkers: number } | undefined;
      /** An adapter change's answer, as the worker whose answer the client gets wrote it. */
      readonly answer?: CarriedAnswer | undefined;
    }
  | { readonly ok: false; readonly code: string; readonly message: string; readonly param?: string | undefined };

/** What a coordinator tells its replica as things change. Calls never overlap with start(). */
export interface CoordinationListener {
  /** This replica took the leadership (`term`), or lost it. */
  leadership(leading: boolean, term: number): void;
  /** The leader wrote the fleet (the leader is told of its own writes too; it ignores them). */
  fleet(fleet: SharedFleet): void;
  /** The other replicas' loads, all of them, whenever one changes (a replica's load vanishes with it). */
  loads(others: readonly ReplicaLoad[]): void;
  /** The store stopped or started answering. */
  store(reachable: boolean): void;
  /** A follower's node control, to be carried out here (only called while this replica leads). */
  command(cmd: FleetCommand): Promise<FleetCommandResult>;
}

/**
 * How a leaving replica ended: another replica holds the fleet now ('handed-over': keep the
 * workers), none stays ('last': tear the fleet down, or keep it with keep_workers_on_exit), or
 * the store did not answer ('unreachable': keep the workers for whoever leads next).
 */
export type LeaveOutcome = 'handed-over' | 'last' | 'unreachable';

export interface Coordinator {
  readonly kind: string;
  /** Whether other replicas may share the fleet (false: in-process, which publishes nothing). */
  readonly replicated: boolean;
  /** This replica's id (shown in status). */
  readonly replica: string;
  /** Joins the replicas: registers, starts watching and campaigning. Events go to `listener` from now on. */
  start(listener: CoordinationListener): Promise<void>;
  /** Leaves at once: stops campaigning and watching, resigns, releases the lease. */
  close(): Promise<void>;
  status(): CoordinationStatus;
  /**
   * Resolves while this replica leads, as the store confirms it now (etcd: a round trip); rejects
   * with a FencedError otherwise. Called before every provisioner call.
   */
  fence(action: string): Promise<void>;
  /**
   * The same question answered from what this replica knows, without I/O: it leads and its lease
   * has not run out by its own clock. Throws a FencedError otherwise. Called right before a
   * command that changes the fleet (`sky launch`, `sky down`) runs, so a replica that was paused
   * past its lease (SIGSTOP, a long GC, a partition) cannot act when it wakes.
   */
  checkFence(action: string): void;
  /** Whether checkFence would pass now. */
  holdsFence(): boolean;
  /**
   * Writes the fleet, fenced (etcd: a transaction that compares the term). Rejects with a
   * FencedError when this replica no longer leads, with another error when the store did not
   * answer (the caller tries again while it leads).
   */
  publishFleet(fleet: FleetSnapshot): Promise<void>;
  /**
   * The last replica out, once the fleet is shut down (torn down, or kept running): deletes the
   * shared fleet, fenced, so that the next start takes the workers from the provisioner as a lone
   * gateway does (kept clusters adopted as they are), not from a record of states that ended.
   */
  retireFleet(): Promise<void>;
  /**
   * Launches under way, in the store (etcd: `launches/<name>`, written fenced): the leader
   * records each before it starts, and a new leader awaits the ones its predecessor left.
   */
  readonly launches: LaunchLedger;
  /** This replica's load, for the others (etcd: under a lease-bound key; writes are throttled by the caller). */
  publishLoad(load: Omit<ReplicaLoad, 'replica'>): void;
  /** The fleet the leader last wrote, as this replica knows it (undefined before any). */
  lastFleet(): SharedFleet | undefined;
  /** Passes node control to the leader and resolves with its answer. */
  submit(cmd: FleetCommand): Promise<FleetCommandResult>;
  /**
   * A graceful exit: marks this replica leaving (it is handed nothing from now on). A leader
   * hands the leadership to a replica that stays, or reports that none does ('last'); a follower
   * resolves once another replica holds the leadership, or, if it comes to lead meanwhile, as a
   * leader does. So when every replica leaves at once, exactly one of them is 'last'.
   */
  leave(): Promise<LeaveOutcome>;
}

/** An action refused because this replica no longer leads (or cannot tell that it still does). */
export class FencedError extends Error {
  override readonly name = 'FencedError';
  constructor(
    readonly action: string,
    readonly why: string,
  ) {
    super(`fenced: ${action} refused: ${why}`);
  }
}

export function isFencedError(err: unknown): err is FencedError {
  return err instanceof FencedError;
}
