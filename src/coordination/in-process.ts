import {
  FencedError,
  type CoordinationListener,
  type CoordinationStatus,
  type Coordinator,
  type FleetCommand,
  type FleetCommandResult,
  type FleetSnapshot,
  type LeaveOutcome,
  type SharedFleet,
} from '../core/coordination.js';
import { MemoryLaunchLedger } from '../core/launch-ledger.js';

/**
 * One gateway, no shared store: the default when no etcd endpoint is given. This replica leads
 * from start() until close(); there is nobody to hand over to, share load with, or forward node
 * control from, so a gateway with it behaves as a gateway without coordination.
 */
export class InProcessCoordinator implements Coordinator {
  readonly kind = 'in-process';
  readonly replicated = false;
  readonly replica: string;
  readonly #startedAt: number;
  readonly #now: () => number;
  #leading = false;
  #leaderSince: number | undefined;
  #fleet: SharedFleet | undefined;
  readonly launches = new MemoryLaunchLedger(
    (action) => this.checkFence(action),
    () => ({ leader: this.replica, term: 1 }),
  );

  /** `now` gives wall-clock ms for status (leader since). */
  constructor(replica = 'local', now: () => number = Date.now) {
    this.replica = replica;
    this.#now = now;
    this.#startedAt = now();
  }

  async start(listener: CoordinationListener): Promise<void> {
    if (this.#leading) return;
    this.#leading = true;
    this.#leaderSince = this.#now();
    listener.leadership(true, 1);
  }

  async close(): Promise<void> {
    this.#leading = false;
  }

  status(): CoordinationStatus {
    return {
      kind: this.kind,
      replica: this.replica,
      leading: this.#leading,
      leader: this.#leading ? this.replica : undefined,
      leaderSince: this.#leaderSince,
      replicas: [{ id: this.replica, startedAt: this.#startedAt, leaving: false }],
      storeReachable: true,
      storeUnreachableSince: undefined,
    };
  }

  async fence(action: string): Promise<void> {
    this.checkFence(action);
  }

  checkFence(action: string): void {
    if (!this.#leading) throw new FencedError(action, 'this gateway is not running');
  }

  holdsFence(): boolean {
    return this.#leading;
  }

  async publishFleet(fleet: FleetSnapshot): Promise<void> {
    this.checkFence('fleet write');
    this.#fleet = { ...fleet, leader: this.replica, term: 1 };
  }

  async retireFleet(): Promise<void> {
    this.#fleet = undefined;
  }

  publishLoad(): void {}

  lastFleet(): SharedFleet | undefined {
    return this.#fleet;
  }

  /** Never needed: this replica always leads. */
  async submit(cmd: FleetCommand): Promise<FleetCommandResult> {
    return { ok: false, code: 'shutting_down', message: `no leader to run ${cmd.op}: the gateway is not running` };
  }

  async leave(): Promise<LeaveOutcome> {
    return 'last';
  }
}
