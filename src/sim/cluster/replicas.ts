import type { Clock } from '../../core/clock.js';
import {
  FencedError,
  type CoordinationListener,
  type CoordinationStatus,
  type Coordinator,
  type FleetCommand,
  type FleetCommandResult,
  type FleetSnapshot,
  type LeaveOutcome,
  type ReplicaLoad,
  type SharedFleet,
} from '../../core/coordination.js';
import { MemoryLaunchLedger, type LaunchIntent } from '../../core/launch-ledger.js';

/**
 * Gateway replicas in one simulation: a SIMULATED shared store standing in for etcd, so several
 * assembled gateways steer one simulated fleet as replicas behind an L4 balancer do. Replica 0
 * leads throughout (failover is the system tests' business, against a real etcd); what the
 * others see is what etcd's watch would bring them, `delayMs` later: the fleet the leader
 * writes and each replica's published load. Node control from a follower reaches the leader.
 */
export class SimReplicaGroup {
  readonly members: readonly SimReplicaCoordinator[];
  /** The launches the leader recorded and has not cleared (the store's `launches/`). */
  readonly launchIntents = new Map<string, LaunchIntent>();

  constructor(clock: Clock, replicas: number, delayMs = 5) {
    if (!(Number.isInteger(replicas) && replicas >= 2)) throw new RangeError(`replicas must be >= 2, got ${replicas}`);
    this.members = Array.from(
      { length: replicas },
      (_, i) => new SimReplicaCoordinator(this, clock, `gw${i}`, delayMs),
    );
  }

  get leader(): SimReplicaCoordinator {
    return this.members[0]!;
  }
}

export class SimReplicaCoordinator implements Coordinator {
  readonly kind = 'simulated';
  readonly replicated = true;
  readonly replica: string;
  readonly #group: SimReplicaGroup;
  readonly #clock: Clock;
  readonly #delayMs: number;
  #listener: CoordinationListener | undefined;
  #fleet: SharedFleet | undefined;
  readonly launches: MemoryLaunchLedger;
  /** The others' loads as this replica last heard them, by replica. */
  readonly #loads = new Map<string, ReplicaLoad>();

  constructor(group: SimReplicaGroup, clock: Clock, replica: string, delayMs: number) {
    this.#group = group;
    this.#clock = clock;
    this.replica = replica;
    this.#delayMs = delayMs;
    this.launches = new MemoryLaunchLedger(
      (action) => this.checkFence(action),
      () => ({ leader: replica, term: 1 }),
      group.launchIntents,
    );
  }

  get #leading(): boolean {
    return this.#group.leader === this;
  }

  async start(listener: CoordinationListener): Promise<void> {
    this.#listener = listener;
    if (this.#leading) listener.leadership(true, 1);
  }

  async close(): Promise<void> {
    this.#listener = undefined;
  }

  status(): CoordinationStatus {
    return {
      kind: this.kind,
      replica: this.replica,
      leading: this.#leading,
      leader: this.#group.leader.replica,
      leaderSince: 0,
      replicas: this.#group.members.map((m) => ({ id: m.replica, startedAt: 0, leaving: false })),
      storeReachable: true,
      storeUnreachableSince: undefined,
    };
  }

  async fence(action: string): Promise<void> {
    this.checkFence(action);
  }

  checkFence(action: string): void {
    if (!this.#leading) throw new FencedError(action, `${this.replica} does not lead`);
  }

  holdsFence(): boolean {
    return this.#leading;
  }

  async publishFleet(fleet: FleetSnapshot): Promise<void> {
    this.checkFence('fleet write');
    const shared: SharedFleet = { ...fleet, leader: this.replica, term: 1 };
    for (const m of this.#group.members) m.#deliver(() => m.#seeFleet(shared));
  }

  async retireFleet(): Promise<void> {
    this.checkFence('fleet retirement');
  }

  publishLoad(load: Omit<ReplicaLoad, 'replica'>): void {
    const mine: ReplicaLoad = { replica: this.replica, ...load };
    for (const m of this.#group.members) if (m !== this) m.#deliver(() => m.#seeLoad(mine));
  }

  lastFleet(): SharedFleet | undefined {
    return this.#fleet;
  }

  async submit(cmd: FleetCommand): Promise<FleetCommandResult> {
    const leader = this.#group.leader.#listener;
    if (!leader) return { ok: false, code: 'no_leader', message: 'No replica leads the simulated fleet.' };
    return leader.command(cmd);
  }

  async leave(): Promise<LeaveOutcome> {
    return this.#leading ? 'last' : 'handed-over';
  }

  #deliver(fn: () => void): void {
    this.#clock.setTimer(this.#delayMs, fn);
  }

  #seeFleet(shared: SharedFleet): void {
    this.#fleet = shared;
    this.#listener?.fleet(shared);
  }

  #seeLoad(load: ReplicaLoad): void {
    this.#loads.set(load.replica, load);
    this.#listener?.loads([...this.#loads.values()]);
  }
}
