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
} from '../../src/core/coordination.js';
import { MemoryLaunchLedger } from '../../src/core/launch-ledger.js';

/**
 * A coordinator the test drives: it decides when this replica leads or loses the lead, what the
 * leader shared and what the other replicas publish, and records what the replica writes. The
 * real etcd coordinator is tested against a real etcd under test/system/.
 */
export class DrivenCoordinator implements Coordinator {
  readonly kind = 'driven';
  readonly replicated = true;
  readonly replica = 'me';
  listener: CoordinationListener | undefined;
  leading = false;
  term = 0;
  shared: SharedFleet | undefined;
  /** Fleet writes the store took, in order. */
  readonly writes: FleetSnapshot[] = [];
  /** Loads this replica published, in order. */
  readonly loads: Omit<ReplicaLoad, 'replica'>[] = [];
  readonly submitted: FleetCommand[] = [];
  /** The next this many fleet writes go unanswered (a plain error, not a refusal). */
  unanswered = 0;
  submitResult: FleetCommandResult = { ok: true };
  leaveOutcome: LeaveOutcome = 'last';
  /** leave() wins the election at this term first (a leaving replica that finds nobody leading). */
  leadOnLeave: number | undefined;
  readonly launches = new MemoryLaunchLedger(
    (action) => this.checkFence(action),
    () => ({ leader: this.replica, term: this.term }),
  );

  async start(listener: CoordinationListener): Promise<void> {
    this.listener = listener;
  }

  async close(): Promise<void> {
    this.listener = undefined;
  }

  // ---- driving --------------------------------------------------------------------

  lead(term: number): void {
    this.leading = true;
    this.term = term;
    this.listener?.leadership(true, term);
  }

  lose(): void {
    this.leading = false;
    this.listener?.leadership(false, this.term);
  }

  share(fleet: Omit<SharedFleet, 'leader' | 'term'>, leader = 'other', term = 1): void {
    this.shared = { ...fleet, leader, term };
    this.listener?.fleet(this.shared);
  }

  others(loads: ReplicaLoad[]): void {
    this.listener?.loads(loads);
  }

  // ---- Coordinator ----------------------------------------------------------------

  status(): CoordinationStatus {
    return {
      kind: this.kind,
      replica: this.replica,
      leading: this.leading,
      leader: this.leading ? this.replica : this.shared?.leader,
      leaderSince: undefined,
      replicas: [],
      storeReachable: true,
      storeUnreachableSince: undefined,
    };
  }

  async fence(action: string): Promise<void> {
    this.checkFence(action);
  }

  checkFence(action: string): void {
    if (!this.leading) throw new FencedError(action, 'not the leader');
  }

  holdsFence(): boolean {
    return this.leading;
  }

  async publishFleet(fleet: FleetSnapshot): Promise<void> {
    this.checkFence('fleet write');
    if (this.unanswered > 0) {
      this.unanswered--;
      throw new Error('etcd did not answer');
    }
    this.writes.push(fleet);
    this.shared = { ...fleet, leader: this.replica, term: this.term };
  }

  /** Set once the fleet was retired (the last one out). */
  retired = false;

  async retireFleet(): Promise<void> {
    this.checkFence('fleet retirement');
    this.retired = true;
    this.shared = undefined;
  }

  publishLoad(load: Omit<ReplicaLoad, 'replica'>): void {
    this.loads.push(load);
  }

  lastFleet(): SharedFleet | undefined {
    return this.shared;
  }

  async submit(cmd: FleetCommand): Promise<FleetCommandResult> {
    this.submitted.push(cmd);
    return this.submitResult;
  }

  async leave(): Promise<LeaveOutcome> {
    if (this.leadOnLeave !== undefined && !this.leading) this.lead(this.leadOnLeave);
    if (this.leaveOutcome === 'handed-over' && this.leading) this.lose();
    return this.leaveOutcome;
  }
}
