import { randomUUID } from 'node:crypto';
import {
  BrokenCircuitError,
  ConsecutiveBreaker,
  ConstantBackoff,
  ExponentialBackoff,
  circuitBreaker,
  handleType,
  handleWhen,
  retry,
  wrap,
  type IBackoff,
} from 'cockatiel';
import {
  Etcd3,
  EtcdLeaseInvalidError,
  GRPCDeadlineExceededError,
  isRecoverableError,
  type IKeyValue,
  type Namespace,
  type Watcher,
} from 'etcd3';
import type { Clock, TimerHandle } from '../core/clock.js';
import {
  FencedError,
  type CoordinationListener,
  type CoordinationStatus,
  type Coordinator,
  type FleetCommand,
  type FleetCommandResult,
  type FleetSnapshot,
  type LeaveOutcome,
  type ReplicaInfo,
  type ReplicaLoad,
  type SharedFleet,
} from '../core/coordination.js';
import type { LaunchIntent, LaunchLedger } from '../core/launch-ledger.js';
import type { StructuredLog } from '../core/types.js';
import { systemClock } from '../runtime/system-clock.js';
import {
  KEYS,
  parseCommandValue,
  parseFleet,
  parseLeaderStamp,
  parseLeader,
  parseLoad,
  parseReplica,
  parseResult,
  type CommandValue,
  type LeaderValue,
} from './etcd-keys.js';

/** The log lines the coordinator writes (pino's Logger fits). */
export type CoordinationLog = StructuredLog;

export interface EtcdCoordinatorOptions {
  /** Client URLs of the etcd members, e.g. http://10.0.0.1:2379 (https:// with TLS). */
  readonly endpoints: readonly string[];
  /** Every key of this service lives under it; replicas with the same prefix share one fleet. */
  readonly prefix: string;
  /** Seconds a replica's lease lives without a keepalive; a dead leader is replaced after about this long. */
  readonly leaseTtlSeconds: number;
  /** This replica's id, unique among the replicas. */
  readonly replica: string;
  /** TLS to etcd: the CA that signed the members' certificates, and a client certificate and key if they ask for one. */
  readonly tls?:
    { readonly ca: Buffer; readonly cert?: Buffer | undefined; readonly key?: Buffer | undefined } | undefined;
  readonly auth?: { readonly username: string; readonly password: string } | undefined;
  readonly log?: CoordinationLog | undefined;
  /** Timers and lease deadlines: a monotonic clock (keeps counting while the process is stopped). */
  readonly clock?: Clock | undefined;
  /** Wall-clock ms since the epoch, for what status shows (started, leader since). */
  readonly wallNow?: (() => number) | undefined;
  /** Deadline of one etcd call; default a quarter of the lease, within 0.3..2 s. */
  readonly requestTimeoutMs?: number | undefined;
  /** How long a follower waits for the leader to answer forwarded node control. Default 15 s. */
  readonly commandTimeoutMs?: number | undefined;
}

const NO_LOG: CoordinationLog = { debug() {}, info() {}, warn() {}, error() {} };

/** gRPC pings on every connection to etcd, and how long one may go unanswered before the connection is dropped. */
const PING_MS = 5000;
const PING_TIMEOUT_MS = 2000;

/** How long a member that failed twice in a row is skipped. */
const HOST_REST_MS = 1000;

/** After a claim of a follower's command etcd did not answer, the next one goes this much later. */
const CLAIM_RETRY_MS = 200;

/** How long a watch may take to (re)connect before it is given up for one on a new stream, and how many such tries a read of every key gets. */
const WATCH_CONNECT_MS = 3000;
const WATCH_ATTEMPTS = 3;

/** After a read of every key etcd did not answer (to watch anew), the next one goes this much later. */
const RESYNC_RETRY_MS = 500;

/** After a keepalive etcd did not answer, the next one goes this much later. */
const KEEPALIVE_RETRY_MS = 100;

/** What withdrawing a command found: withdrawn, a leader's claim on it, or nothing left to withdraw. */
type Withdrawal = 'withdrawn' | 'claimed' | 'absent';

/** This replica's hold on etcd: one lease carries its replica key, its load key and, when it leads, the leader key. */
interface Session {
  readonly lease: string;
  /** Clock ms until which the lease surely lives: the send time of the last keepalive etcd answered, plus the TTL. */
  deadline: number;
}

/**
 * Several gateway replicas, one fleet, through etcd (v3 API, the `etcd3` client over gRPC).
 *
 * Leadership: each replica holds one lease (TTL `leaseTtlSeconds`, kept alive every third of
 * it). The leader is whoever created the `leader` key on its lease; the key's create revision is
 * its term. When the key goes (the leader's lease ran out, or it resigned), every replica that
 * watches it campaigns at once; one transaction wins.
 *
 * Fencing: a leader acts only while (a) etcd confirms, in a transaction that compares the
 * leader key's create revision with its term, that it still leads — before every provisioner
 * call and as the condition of every fleet write — and (b) by its own monotonic clock, the last
 * keepalive etcd answered was sent less than a TTL ago (etcd counts the TTL from when the
 * keepalive arrived, so this deadline is earlier than etcd's). (b) needs no I/O and is checked
 * right before `sky launch`/`sky down` runs: a leader that was stopped past its lease finds its
 * deadline gone when it wakes, before etcd has even told it.
 *
 * Losing etcd: calls fail, keepalives fail, and once the deadline passes the leader stops
 * leading; every replica keeps serving with the fleet it last saw. When etcd answers again the
 * replica revokes the lease it gave up on (freeing the leader key at once), takes a new one and
 * campaigns. Until then it names no leader: the key that still names it leads nothing. A leader
 * key naming this replica on a lease it does not hold (one it gave up, or an earlier process's
 * with the same id) is revoked when seen, so nobody waits out its TTL.
 */
export class EtcdCoordinator implements Coordinator {
  readonly kind = 'etcd';
  readonly replicated = true;
  readonly replica: string;
  readonly #options: EtcdCoordinatorOptions;
  readonly #log: CoordinationLog;
  readonly #clock: Clock;
  readonly #wallNow: () => number;
  readonly #ttlMs: number;
  readonly #timeoutMs: number;
  readonly #client: Etcd3;
  readonly #ns: Namespace;
  /** The namespace the watch runs on: one gRPC stream, replaced when the watch is lost. */
  #watchNs: Namespace;
  readonly #startedAt: number;

  #listener: CoordinationListener | undefined;
  #watcher: Watcher | undefined;
  #session: Session | undefined;
  /** A lease given up on while etcd was unreachable: revoked once etcd answers, so its leader key goes at once. */
  #abandoned: string | undefined;
  #sessionTimer: TimerHandle | undefined;
  #resyncing = false;
  #closed = false;
  #leaving = false;

  #leading = false;
  #term = 0;
  /** The leader key as last seen: its holder and create revision. */
  #leader: (LeaderValue & { readonly term: number }) | undefined;
  /**
   * The revision of the newest state of the leader key and of the fleet record applied, from a
   * read or from the watch. The watch trails the reads (a campaign reads and writes in one
   * transaction): an event at or below it is older news and is not applied, or a replica that
   * just won would step down on the deletion of the key before its own.
   */
  readonly #seenAt = { leader: 0, fleet: 0 };
  #campaigning = false;

  readonly #replicas = new Map<string, ReplicaInfo>();
  readonly #loads = new Map<string, ReplicaLoad>();
  #fleet: SharedFleet | undefined;

  #reachable = true;
  #unreachableSince: number | undefined;
  /** Clock ms of the last call etcd answered. */
  #lastAnswer = 0;

  /** Load publishing: one write at a time, the newest value wins. */
  #loadWriting = false;
  #loadNext: string | undefined;
  #loadWritten: string | undefined;

  /** Forwarded node control waiting for the leader's answer, by command id. */
  readonly #pending = new Map<string, (r: FleetCommandResult) => void>();
  /** Commands this replica ran as leader (a watch that reconnects replays events). */
  readonly #ran = new Set<string>();

  constructor(opts: EtcdCoordinatorOptions) {
    if (opts.endpoints.length === 0) throw new Error('etcd coordination needs at least one endpoint');
    if (!(opts.leaseTtlSeconds >= 1) || !Number.isInteger(opts.leaseTtlSeconds)) {
      throw new Error(`etcd lease TTL must be a whole number of seconds ≥ 1, got ${opts.leaseTtlSeconds}`);
    }
    this.#options = opts;
    this.replica = opts.replica;
    this.#log = opts.log ?? NO_LOG;
    this.#clock = opts.clock ?? systemClock;
    this.#wallNow = opts.wallNow ?? Date.now;
    this.#ttlMs = opts.leaseTtlSeconds * 1000;
    this.#timeoutMs = opts.requestTimeoutMs ?? Math.min(2000, Math.max(300, this.#ttlMs / 4));
    this.#startedAt = this.#wallNow();
    const timeoutMs = this.#timeoutMs;
    this.#client = new Etcd3({
      hosts: [...opts.endpoints],
      ...(opts.tls
        ? {
            credentials: {
              rootCertificate: opts.tls.ca,
              ...(opts.tls.key ? { privateKey: opts.tls.key } : {}),
              ...(opts.tls.cert ? { certChain: opts.tls.cert } : {}),
            },
          }
        : {}),
      ...(opts.auth ? { auth: { username: opts.auth.username, password: opts.auth.password } } : {}),
      dialTimeout: timeoutMs,
      // A member that hangs (stopped, or cut off by a partition that drops packets) keeps its
      // connections open and answers nothing: without pings, a watch on it would wait for ever
      // while the others move on. Pings find it within PING_MS + PING_TIMEOUT_MS and close the
      // connection, so the watch reconnects elsewhere. etcd turns away clients that ping more
      // often than every 5 s (--grpc-keepalive-min-time) or ping with no call open.
      grpcOptions: { 'grpc.keepalive_time_ms': PING_MS, 'grpc.keepalive_timeout_ms': PING_TIMEOUT_MS },
      // Every unary call has a deadline, so a call to a cluster without quorum fails in time
      // rather than hanging; streams (watch, keepalive) get theirs where they are opened.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeoutMs }),
      faultHandling: {
        // A member that fails (or lets a call run out its deadline) twice in a row is skipped for
        // a second; a failed call is tried once more on another member. So one member down or
        // hung costs a retry, not an outage.
        host: () =>
          circuitBreaker(
            handleWhen((err) => isRecoverableError(err) || err instanceof GRPCDeadlineExceededError),
            { halfOpenAfter: HOST_REST_MS, breaker: new ConsecutiveBreaker(2) },
          ),
        // With every member skipped (etcd just came back after they all failed), the call waits
        // out the rest and tries once more, rather than failing a cluster that answers again.
        global: wrap(
          retry(handleType(BrokenCircuitError), { maxAttempts: 1, backoff: new ConstantBackoff(HOST_REST_MS) }),
          retry(handleWhen(isRecoverableError), { maxAttempts: 1 }),
        ),
        // A watch cut off (its member died) comes back within a second. etcd3 declares this
        // an IBackoff but calls next() on it as a factory, which ExponentialBackoff is.
        watchBackoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 1000 }) as unknown as IBackoff<unknown>,
      },
    });
    this.#ns = this.#client.namespace(opts.prefix);
    this.#watchNs = this.#client.namespace(opts.prefix);
  }

  // ---- lifecycle -----------------------------------------------------------------------

  /** Reads the service's keys, watches them, takes a lease and campaigns. Rejects when etcd does not answer. */
  async start(listener: CoordinationListener): Promise<void> {
    if (this.#listener) throw new Error('etcd coordinator already started');
    this.#listener = listener;
    try {
      await this.#sync();
      await this.#openSession();
    } catch (err) {
      await this.close();
      throw new Error(`etcd at ${this.#options.endpoints.join(', ')} did not answer: ${message(err)}`, { cause: err });
    }
    this.#log.info(
      { replica: this.replica, prefix: this.#options.prefix, leader: this.#leader?.id },
      `etcd: joined as ${this.replica}; ${this.#leading ? 'leading' : `following ${this.#leader?.id ?? '(no leader yet)'}`}`,
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#sessionTimer?.cancel();
    this.#sessionTimer = undefined;
    for (const resolve of this.#pending.values()) {
      resolve({ ok: false, code: 'shutting_down', message: 'The gateway is shutting down.' });
    }
    this.#pending.clear();
    if (this.#leading) this.#setLeading(false, 'closing');
    const session = this.#session;
    this.#session = undefined;
    // Not awaited: a watch stuck connecting to a member that hangs would never answer.
    void this.#watcher?.cancel().catch(() => {});
    this.#watcher = undefined;
    // Revoking the lease deletes the leader, replica and load keys at once: the others need not wait out the TTL.
    if (session) await this.#ns.leaseClient.leaseRevoke({ ID: session.lease }).catch(() => {});
    this.#client.close();
  }

  status(): CoordinationStatus {
    return {
      kind: this.kind,
      replica: this.replica,
      leading: this.#leading,
      leader: this.#leader?.id,
      leaderSince: this.#leader?.since,
      replicas: [...this.#replicas.values()].sort((a, b) => a.id.localeCompare(b.id)),
      storeReachable: this.#reachable,
      storeUnreachableSince: this.#unreachableSince,
    };
  }

  // ---- fencing -------------------------------------------------------------------------

  holdsFence(): boolean {
    return this.#leading && this.#session !== undefined && this.#clock.now() < this.#session.deadline;
  }

  checkFence(action: string): void {
    if (this.#closed) throw new FencedError(action, 'the coordinator is closed');
    if (!this.#leading) throw new FencedError(action, 'this replica does not lead');
    if (!this.#session || this.#clock.now() >= this.#session.deadline) {
      // Maybe etcd still keeps the lease (and with it the leader key): give it up, so another
      // replica can lead at once, and rejoin with a new one.
      this.#dropSession(this.#session, 'no keepalive confirmed within the lease TTL', true);
      throw new FencedError(action, 'the lease may have run out (no keepalive confirmed within the TTL)');
    }
  }

  async fence(action: string): Promise<void> {
    this.checkFence(action);
    const term = this.#term;
    let succeeded: boolean;
    try {
      // The read makes it linearizable: etcd serves a transaction of compares alone from the
      // member it reaches, quorum or not (it counts as serializable), which fences nothing.
      const res = await this.#ns.if(KEYS.leader, 'Create', '==', term).then(this.#ns.get(KEYS.leader)).commit();
      succeeded = res.succeeded;
      this.#reached();
    } catch (err) {
      this.#unreached(err);
      throw new FencedError(action, `etcd did not confirm the leadership: ${message(err)}`);
    }
    if (!succeeded) {
      this.#lostTerm(term, 'the leader key changed');
      throw new FencedError(action, 'another replica leads now');
    }
    // etcd said yes; the lease may still have run out while the answer travelled.
    this.checkFence(action);
  }

  async publishFleet(fleet: FleetSnapshot): Promise<void> {
    this.checkFence('fleet write');
    const term = this.#term;
    const record: SharedFleet = { ...fleet, leader: this.replica, term };
    let succeeded: boolean;
    try {
      const res = await this.#ns
        .if(KEYS.leader, 'Create', '==', term)
        .then(this.#ns.put(KEYS.fleet).value(JSON.stringify(record)))
        .commit();
      succeeded = res.succeeded;
      this.#reached();
    } catch (err) {
      // Not refused, unanswered (etcd electing a new raft leader, or gone): the caller tries again.
      this.#unreached(err);
      throw new Error(`etcd did not take the fleet write: ${message(err)}`, { cause: err });
    }
    if (!succeeded) {
      this.#lostTerm(term, 'the leader key changed');
      throw new FencedError('fleet write', 'another replica leads now');
    }
  }

  async retireFleet(): Promise<void> {
    this.checkFence('fleet retirement');
    const res = await this.#ns
      .if(KEYS.leader, 'Create', '==', this.#term)
      .then(this.#ns.delete().key(KEYS.fleet))
      .commit();
    if (!res.succeeded) throw new FencedError('fleet retirement', 'another replica leads now');
    this.#fleet = undefined;
  }

  lastFleet(): SharedFleet | undefined {
    return this.#fleet;
  }

  // ---- launches --------------------------------------------------------------------------

  readonly launches: LaunchLedger = {
    record: (name) => this.#recordLaunch(name),
    clear: (name) => this.#clearLaunch(name),
    open: () => this.#openLaunches(),
  };

  async #recordLaunch(name: string): Promise<void> {
    const action = `launch record ${name}`;
    this.checkFence(action);
    const term = this.#term;
    let succeeded: boolean;
    try {
      const res = await this.#ns
        .if(KEYS.leader, 'Create', '==', term)
        .then(this.#ns.put(KEYS.launches + name).value(JSON.stringify({ leader: this.replica, term })))
        .commit();
      succeeded = res.succeeded;
      this.#reached();
    } catch (err) {
      this.#unreached(err);
      throw new Error(`etcd did not take the record of the launch of ${name}: ${message(err)}`, { cause: err });
    }
    if (!succeeded) {
      this.#lostTerm(term, 'the leader key changed');
      throw new FencedError(action, 'another replica leads now');
    }
  }

  /** Fenced too: a replica that no longer leads leaves the records to the leader. */
  async #clearLaunch(name: string): Promise<void> {
    if (!this.#leading) return;
    await this.#ns
      .if(KEYS.leader, 'Create', '==', this.#term)
      .then(this.#ns.delete().key(KEYS.launches + name))
      .commit();
  }

  async #openLaunches(): Promise<LaunchIntent[]> {
    const res = await this.#ns.getAll().prefix(KEYS.launches).exec();
    const out: LaunchIntent[] = [];
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      const value = parseLeaderStamp(kv.value.toString());
      if (!value) {
        this.#ignored(key);
        continue;
      }
      out.push({ name: key.slice(KEYS.launches.length), ...value });
    }
    return out;
  }

  // ---- load ----------------------------------------------------------------------------

  publishLoad(load: Omit<ReplicaLoad, 'replica'>): void {
    const value = JSON.stringify({
      queueLength: load.queueLength,
      inFlight: load.inFlight,
      waiting: load.waiting,
      buckets: load.buckets,
    });
    if (value === this.#loadWritten && !this.#loadWriting) return;
    this.#loadNext = value;
    if (!this.#loadWriting) void this.#writeLoad();
  }

  async #writeLoad(): Promise<void> {
    this.#loadWriting = true;
    try {
      while (this.#loadNext !== undefined && this.#session && !this.#closed) {
        const value = this.#loadNext;
        this.#loadNext = undefined;
        if (value === this.#loadWritten) continue;
        try {
          await this.#ns
            .put(KEYS.load + this.replica)
            .value(value)
            .lease(this.#session.lease);
          this.#loadWritten = value;
          this.#reached();
        } catch (err) {
          this.#unreached(err);
          return;
        }
      }
    } finally {
      this.#loadWriting = false;
    }
  }

  // ---- node control --------------------------------------------------------------------

  async submit(cmd: FleetCommand): Promise<FleetCommandResult> {
    const listener = this.#listener;
    if (this.#leading && listener) return listener.command(cmd);
    if (this.#closed) {
      return { ok: false, code: 'shutting_down', message: 'This replica has left the fleet; ask another replica.' };
    }
    // With no leader known (an election under way, or this replica not yet told of its outcome)
    // the command is written all the same: a replica that wins an election runs every command
    // waiting, so the caller waits for the election, up to the time below, rather than retrying.
    if (!this.#leader && !this.#reachable) {
      return noLeader(
        'This replica cannot reach etcd, so it cannot pass the command to the leader; retry later or ask another replica.',
      );
    }
    const id = randomUUID();
    const timeoutMs = this.#options.commandTimeoutMs ?? 15_000;
    // The command and its answer live on a lease of their own, as long as this replica waits for
    // them: not on the replica's, which it gives up (and revokes) when etcd is away for a TTL,
    // taking a command still waiting with it.
    let lease: string;
    try {
      lease = (await this.#ns.leaseClient.leaseGrant({ TTL: Math.ceil((2 * timeoutMs) / 1000) + 1 })).ID;
      this.#reached();
    } catch (err) {
      this.#unreached(err);
      return noLeader(`etcd did not take the command (${message(err)}); retry.`);
    }
    let timer: TimerHandle | undefined;
    const answer = new Promise<FleetCommandResult>((resolve) => {
      this.#pending.set(id, resolve);
      timer = this.#clock.setTimer(timeoutMs, () => void this.#giveUp(id, timeoutMs));
    }).finally(() => timer?.cancel());
    try {
      const value: CommandValue = { from: this.replica, command: cmd };
      await this.#ns
        .put(KEYS.commands + id)
        .value(JSON.stringify(value))
        .lease(lease);
    } catch (err) {
      this.#unreached(err);
      // Unanswered is not refused: etcd may still apply the write, so it is withdrawn (if it
      // landed) before the caller is told to retry; one a leader has claimed meanwhile is answered.
      const outcome = await this.#withdraw(id).catch(() => 'absent' as const);
      if (outcome !== 'claimed') {
        this.#settle(
          id,
          noLeader(
            `etcd did not take the command (${message(err)})${outcome === 'withdrawn' ? '; it was withdrawn and will not run' : ''}; retry.`,
          ),
        );
      }
    }
    const result = await answer;
    // The command, if a leader has not deleted it, and the answer go with their lease.
    void this.#revoke(lease).catch(() => {});
    return result;
  }

  /**
   * The leader has not answered in time: withdraw the command, so that no leader runs it after
   * the caller was told to retry. If a leader has claimed it already, its answer is still awaited
   * (once more as long), and if that does not come either the caller is told it may have run.
   */
  async #giveUp(id: string, timeoutMs: number): Promise<void> {
    if (!this.#pending.has(id)) return;
    let outcome: Withdrawal;
    try {
      outcome = await this.#withdraw(id);
    } catch (err) {
      this.#unreached(err);
      this.#settle(
        id,
        noLeader(
          `The leader did not answer within ${timeoutMs / 1000} s, and etcd could not withdraw the command (${message(err)}): it may still run; check the status before you retry.`,
        ),
      );
      return;
    }
    if (outcome === 'withdrawn') {
      this.#settle(
        id,
        noLeader(
          `The leader did not answer within ${timeoutMs / 1000} s; the command was withdrawn and will not run; retry.`,
        ),
      );
      return;
    }
    // Then the command goes with its lease (submit revokes it): no later leader starts it again.
    this.#clock.setTimer(timeoutMs, () =>
      this.#settle(
        id,
        noLeader(
          `The leader did not answer within ${(2 * timeoutMs) / 1000} s, and the command could not be withdrawn (a leader claimed it, or it was gone): it may have run; check the status before you retry.`,
        ),
      ),
    );
  }

  /** Answers a command this replica passed on, once: false if it was answered already. */
  #settle(id: string, result: FleetCommandResult): boolean {
    const resolve = this.#pending.get(id);
    if (!resolve) return false;
    this.#pending.delete(id);
    resolve(result);
    return true;
  }

  /**
   * Deletes a command no leader has claimed yet. 'claimed': a leader runs it; 'absent': it is
   * gone (never written, answered, or its lease ended).
   */
  async #withdraw(id: string): Promise<Withdrawal> {
    const res = await this.#ns
      .if(KEYS.commands + id, 'Version', '>', 0)
      .and(KEYS.claims + id, 'Version', '==', 0)
      .then(this.#ns.delete().key(KEYS.commands + id))
      .else(this.#ns.get(KEYS.claims + id))
      .commit();
    this.#reached();
    if (res.succeeded) return 'withdrawn';
    return res.responses[0]?.response_range?.kvs.length ? 'claimed' : 'absent';
  }

  /**
   * As leader: claims a follower's command (a claim key on this replica's lease, fenced, written
   * once: the follower can no longer withdraw it, no other leader runs it while this one lives),
   * runs it and writes the answer on the command's own lease (`lease`), so the answer outlives
   * this replica's own lease and goes when the one who asked has it. A claim whose answer etcd
   * lost is recognised as this replica's own when tried again. A command this replica could not
   * run because it no longer leads is given back (its claim deleted) for the next leader, which
   * takes it up when it sees the claim go. A leader that dies while it runs a command lets it go
   * with its lease, and the next leader may run it again: the one case it runs twice.
   */
  async #run(id: string, value: CommandValue, lease: string): Promise<void> {
    const listener = this.#listener;
    const session = this.#session;
    if (!listener || !session || !this.#leading || this.#ran.has(id)) return;
    this.#ran.add(id);
    const term = this.#term;
    const stamp = JSON.stringify({ leader: this.replica, term });
    try {
      const claim = await this.#ns
        .if(KEYS.leader, 'Create', '==', term)
        .and(KEYS.commands + id, 'Version', '>', 0)
        .and(KEYS.claims + id, 'Version', '==', 0)
        .then(
          this.#ns
            .put(KEYS.claims + id)
            .value(stamp)
            .lease(session.lease),
        )
        .else(this.#ns.get(KEYS.claims + id))
        .commit();
      this.#reached();
      const standing = claim.responses[0]?.response_range?.kvs[0]?.value.toString();
      if (!claim.succeeded && standing !== stamp) {
        // Withdrawn, answered, or another leader's: looked at again if that claim is given back.
        this.#ran.delete(id);
        return;
      }
    } catch (err) {
      // Unanswered (a member down or hung): tried again while this replica leads.
      this.#ran.delete(id);
      this.#unreached(err);
      this.#clock.setTimer(CLAIM_RETRY_MS, () => void this.#run(id, value, lease));
      return;
    }
    let result: FleetCommandResult;
    try {
      result = await listener.command(value.command);
    } catch (err) {
      result = { ok: false, code: 'internal', message: message(err) };
    }
    try {
      if (!result.ok && result.code === 'no_leader') {
        // Refused before it ran (this replica lost the leadership meanwhile): given back.
        this.#ran.delete(id);
        await this.#ns
          .if(KEYS.claims + id, 'Value', '==', stamp)
          .then(this.#ns.delete().key(KEYS.claims + id))
          .commit();
        return;
      }
      // Not fenced: the command ran under the term that claimed it, and its answer is owed, to a
      // follower still there (its command, on its lease, is).
      await this.#ns
        .if(KEYS.commands + id, 'Version', '>', 0)
        .then(
          this.#ns
            .put(KEYS.results + id)
            .value(JSON.stringify(result))
            .lease(lease),
          this.#ns.delete().key(KEYS.commands + id),
          this.#ns.delete().key(KEYS.claims + id),
        )
        .else(this.#ns.delete().key(KEYS.claims + id))
        .commit();
    } catch (err) {
      this.#unreached(err);
    }
    this.#log.info(
      { from: value.from, command: value.command, ok: result.ok },
      'etcd: ran node control for a follower',
    );
  }

  /** As leader: a claim went (given back, or its leader's lease ended): its command, if still there, is run here. */
  async #claimGone(id: string): Promise<void> {
    if (!this.#leading) return;
    try {
      const res = await this.#ns.get(KEYS.commands + id).exec();
      const kv = res.kvs[0];
      if (kv) this.#onCommand(kv.key.toString(), kv);
    } catch (err) {
      this.#unreached(err);
    }
  }

  // ---- leaving -------------------------------------------------------------------------

  async leave(): Promise<LeaveOutcome> {
    this.#leaving = true;
    try {
      if (this.#session) await this.#putReplica(this.#session);
      else await this.#dropStaleReplicaKey();
      for (let round = 0; round < 20 && !this.#closed; round++) {
        if (this.#leading) {
          const outcome = await this.#handOver();
          if (outcome) return outcome;
          continue;
        }
        const kv = await this.#ns.get(KEYS.leader).exec();
        this.#reached();
        const holder = kv.kvs[0] ? parseLeader(kv.kvs[0].value.toString()) : undefined;
        if (holder && holder.id !== this.replica) return 'handed-over';
        // Nobody leads (the leader just resigned, or died): take it, so that someone decides.
        await this.#campaign();
        if (!this.#leading) await this.#sleep(Math.min(500, this.#ttlMs / 4));
      }
      return 'unreachable';
    } catch (err) {
      this.#unreached(err);
      this.#log.warn({ err: message(err) }, 'etcd: could not agree on who keeps the fleet while leaving');
      return 'unreachable';
    }
  }

  /**
   * Leaving without a lease (etcd was cut off and this replica is not back yet): a replica key of
   * the lease it gave up, which etcd may still keep (a restored quorum renews every lease), names
   * it as staying, and a leaving leader would hand the fleet over to it. The key goes first.
   */
  async #dropStaleReplicaKey(): Promise<void> {
    const abandoned = this.#abandoned;
    if (abandoned) {
      await this.#revoke(abandoned);
      if (this.#abandoned === abandoned) this.#abandoned = undefined;
    }
    await this.#ns
      .delete()
      .key(KEYS.replicas + this.replica)
      .exec();
  }

  /** A leaving leader: resign to a replica that stays, or report that none does. Undefined: decide again. */
  async #handOver(): Promise<LeaveOutcome | undefined> {
    const term = this.#term;
    const res = await this.#ns.getAll().prefix(KEYS.replicas).exec();
    this.#reached();
    const staying = res.kvs
      .map((kv) => ({ kv, info: parseReplica(kv.value.toString()) }))
      .find(({ info }) => info && info.id !== this.replica && !info.leaving);
    if (!staying) return 'last';
    // Resign only if that replica has not started leaving meanwhile (its key is unchanged).
    const txn = await this.#ns
      .if(KEYS.leader, 'Create', '==', term)
      .and(staying.kv.key.toString(), 'Mod', '==', staying.kv.mod_revision)
      .then(this.#ns.delete().key(KEYS.leader))
      .commit();
    if (txn.succeeded) {
      this.#setLeading(false, `handed over (${staying.info!.id} stays)`);
      return 'handed-over';
    }
    await this.#confirmTerm(term);
    return undefined;
  }

  // ---- session: lease, replica key, keepalive ------------------------------------------

  async #openSession(): Promise<void> {
    if (this.#abandoned) {
      // Until it is revoked (or runs out), a leader key on it names this replica, which does not lead.
      await this.#revoke(this.#abandoned);
      this.#abandoned = undefined;
    }
    const sentAt = this.#clock.now();
    const grant = await this.#ns.leaseClient.leaseGrant({ TTL: this.#options.leaseTtlSeconds });
    const session: Session = { lease: grant.ID, deadline: sentAt + Number(grant.TTL) * 1000 };
    try {
      await this.#putReplica(session);
    } catch (err) {
      this.#abandoned = session.lease;
      throw err;
    }
    this.#session = session;
    this.#loadWritten = undefined;
    this.#reached();
    this.#scheduleKeepAlive();
    await this.#campaign();
  }

  /** Revokes a lease; one etcd no longer has counts as revoked, any other failure is thrown. */
  async #revoke(lease: string): Promise<void> {
    try {
      await this.#ns.leaseClient.leaseRevoke({ ID: lease });
    } catch (err) {
      if (!(err instanceof EtcdLeaseInvalidError)) throw err;
    }
  }

  #putReplica(session: Session): Promise<unknown> {
    const info: ReplicaInfo = { id: this.replica, startedAt: this.#startedAt, leaving: this.#leaving };
    return this.#ns
      .put(KEYS.replicas + this.replica)
      .value(JSON.stringify(info))
      .lease(session.lease)
      .exec();
  }

  #scheduleKeepAlive(delayMs = this.#ttlMs / 3): void {
    if (this.#closed) return;
    this.#sessionTimer?.cancel();
    this.#sessionTimer = this.#clock.setTimer(delayMs, () => {
      this.#sessionTimer = undefined;
      void this.#keepAlive();
    });
  }

  async #keepAlive(): Promise<void> {
    const session = this.#session;
    if (this.#closed) return;
    if (!session) {
      // The lease was lost: try for a new one.
      try {
        await this.#openSession();
        this.#log.info({ replica: this.replica }, 'etcd: reachable again; rejoined with a new lease');
      } catch (err) {
        this.#unreached(err);
        this.#scheduleKeepAlive();
      }
      return;
    }
    const sentAt = this.#clock.now();
    try {
      const ttl = await this.#keepAliveOnce(session.lease);
      this.#reached();
      if (ttl <= 0) {
        this.#dropSession(session, 'etcd says the lease expired');
      } else if (this.#session === session) {
        session.deadline = Math.max(session.deadline, sentAt + ttl * 1000);
      }
    } catch (err) {
      this.#unreached(err);
      if (this.#session === session && this.#clock.now() >= session.deadline) {
        this.#dropSession(session, 'no keepalive confirmed within the lease TTL (etcd unreachable)', true);
      } else if (this.#session === session) {
        // Soon again, most likely on another member: the lease has a TTL to spend, not a third of one.
        this.#scheduleKeepAlive(KEEPALIVE_RETRY_MS);
        return;
      }
    }
    // A dropped session has its rejoin scheduled already.
    if (this.#session === session) this.#scheduleKeepAlive();
  }

  /** One keepalive round trip; resolves with the TTL etcd granted (0: the lease is gone). */
  async #keepAliveOnce(lease: string): Promise<number> {
    const stream = await this.#ns.leaseClient.leaseKeepAlive({ deadline: Date.now() + this.#timeoutMs });
    try {
      return await new Promise<number>((resolve, reject) => {
        stream.on('data', (res: { TTL: string }) => resolve(Number(res.TTL)));
        stream.on('error', reject);
        stream.on('end', () => reject(new Error('keepalive stream ended')));
        stream.write({ ID: lease });
      });
    } finally {
      stream.end();
    }
  }

  /**
   * Gives up the lease of `session` if it is still this replica's. `abandon`: etcd may still keep
   * it, so it is revoked before the next one is taken (which frees the leader key at once if it was
   * ours). The keepalive loop rejoins. A keepalive answered late speaks for the session it was sent
   * for: "expired" about a lease this replica already gave up (and revoked) says nothing about the
   * one it holds now.
   */
  #dropSession(session: Session | undefined, why: string, abandon = false): void {
    if (!session || this.#session !== session) return;
    this.#session = undefined;
    if (abandon) this.#abandoned = session.lease;
    // The leader key, if it names this replica, is on that lease: nobody leads until a new election.
    if (this.#leader?.id === this.replica) this.#leader = undefined;
    this.#log.warn({ replica: this.replica, why }, `etcd: gave up the lease: ${why}`);
    if (this.#leading) this.#setLeading(false, why);
    this.#scheduleKeepAlive(0);
  }

  // ---- election ------------------------------------------------------------------------

  async #campaign(): Promise<void> {
    const session = this.#session;
    if (!session || this.#leading || this.#campaigning || this.#closed) return;
    this.#campaigning = true;
    try {
      const since = this.#wallNow();
      const value: LeaderValue = { id: this.replica, since };
      // The fleet record is read in the same transaction: the fleet this replica takes over is the
      // one at its election, not what the watch has delivered so far (the last one out may have
      // retired the record just before).
      const res = await this.#ns
        .if(KEYS.leader, 'Create', '==', 0)
        .then(this.#ns.put(KEYS.leader).value(JSON.stringify(value)).lease(session.lease), this.#ns.get(KEYS.fleet))
        .else(this.#ns.get(KEYS.leader))
        .commit();
      this.#reached();
      if (res.succeeded && this.#session === session && !this.#closed) {
        const record = res.responses[1]?.response_range?.kvs[0];
        this.#fleet = record ? parseFleet(record.value.toString()) : undefined;
        this.#term = Number(res.header.revision);
        this.#seenAt.leader = Math.max(this.#seenAt.leader, this.#term);
        this.#seenAt.fleet = Math.max(this.#seenAt.fleet, this.#term);
        this.#leader = { ...value, term: this.#term };
        this.#setLeading(true, 'won the election');
      } else if (!res.succeeded) {
        const kv = res.responses[0]?.response_range?.kvs[0];
        if (kv) this.#seeLeader(kv);
      }
    } catch (err) {
      this.#unreached(err);
    } finally {
      this.#campaigning = false;
    }
  }

  /** After a failed fenced transaction: is the term still ours (the compare that failed was another one)? */
  async #confirmTerm(term: number): Promise<void> {
    const res = await this.#ns.get(KEYS.leader).exec();
    const kv = res.kvs[0];
    if (!kv || Number(kv.create_revision) !== term) this.#lostTerm(term, 'the leader key changed');
  }

  #lostTerm(term: number, why: string): void {
    if (this.#leading && this.#term === term) this.#setLeading(false, why);
  }

  #setLeading(leading: boolean, why: string): void {
    if (this.#leading === leading) return;
    this.#leading = leading;
    if (leading) {
      this.#ran.clear();
      this.#log.info(
        { replica: this.replica, term: this.#term, why },
        `etcd: ${this.replica} leads (term ${this.#term})`,
      );
    } else {
      this.#log.warn({ replica: this.replica, term: this.#term, why }, `etcd: ${this.replica} no longer leads: ${why}`);
    }
    this.#tell((l) => l.leadership(leading, this.#term));
    if (leading) void this.#runWaitingCommands();
  }

  async #runWaitingCommands(): Promise<void> {
    try {
      const res = await this.#ns.getAll().prefix(KEYS.commands).exec();
      for (const kv of res.kvs) this.#onCommand(kv.key.toString(), kv);
    } catch (err) {
      this.#unreached(err);
    }
  }

  // ---- watching ------------------------------------------------------------------------

  /**
   * Reads every key of the service, then watches from the next revision on, so nothing falls
   * between. Again after a watch etcd cancelled: a key this replica knew that the read does not
   * find was deleted while nothing watched, and counts as deleted now.
   */
  async #sync(): Promise<void> {
    const res = await this.#ns.getAll().prefix('').exec();
    const revision = Number(res.header.revision);
    const present = new Set<string>();
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      present.add(key);
      this.#onPut(key, kv);
    }
    for (const key of this.#knownKeys()) if (!present.has(key)) this.#onDelete(key, revision);
    const next = (BigInt(res.header.revision) + 1n).toString();
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#watchFrom(next);
        return;
      } catch (err) {
        if (this.#closed || attempt >= WATCH_ATTEMPTS) throw err;
      }
    }
  }

  #knownKeys(): string[] {
    return [
      ...(this.#leader ? [KEYS.leader] : []),
      ...(this.#fleet ? [KEYS.fleet] : []),
      ...[...this.#replicas.keys()].map((id) => KEYS.replicas + id),
      ...[...this.#loads.keys()].map((id) => KEYS.load + id),
    ];
  }

  /**
   * Watches every key from `revision` on; resolves once etcd has the watch. It is given up (and
   * the replica reads everything and watches anew on a new stream) when etcd cancels it (its
   * start revision compacted away while it reconnected, say), or when it takes WATCH_CONNECT_MS
   * to (re)connect: on a member that hangs it would wait for ever, as no ping runs before the
   * connection is up. Given up before it first connected, the promise rejects instead.
   */
  #watchFrom(revision: string): Promise<void> {
    const watcher = this.#watchNs.watch().prefix('').startRevision(revision).watcher();
    this.#watcher = watcher;
    // Events of a watcher given up on (its stream may still come to life) are not this replica's news.
    const mine = (): boolean => this.#watcher === watcher;
    // The namespace takes the prefix off every key it returns, read or watched.
    watcher.on('put', (kv) => mine() && this.#onPut(kv.key.toString(), kv));
    watcher.on('delete', (kv) => mine() && this.#onDelete(kv.key.toString(), Number(kv.mod_revision)));
    // Cut off: the client reconnects by itself, from the revision after the last event it delivered.
    watcher.on('disconnected', (err) => mine() && this.#unreached(err));
    return new Promise<void>((resolve, reject) => {
      let connected = false;
      let timer: TimerHandle | undefined;
      const lose = (err: unknown): void => {
        timer?.cancel();
        if (!mine()) return;
        this.#watcher = undefined;
        void watcher.cancel().catch(() => {});
        this.#watchNs = this.#client.namespace(this.#options.prefix);
        if (!connected) return reject(err);
        this.#log.warn({ err: message(err) }, 'etcd: the watch was lost; reading every key again and watching anew');
        this.#unreached(err);
        void this.#resync();
      };
      const wait = (): void => {
        timer?.cancel();
        timer = this.#clock.setTimer(WATCH_CONNECT_MS, () =>
          lose(new Error(`the watch did not connect within ${WATCH_CONNECT_MS / 1000} s`)),
        );
      };
      wait();
      watcher.on('connecting', wait);
      watcher.on('connected', () => {
        timer?.cancel();
        if (!connected) resolve();
        connected = true;
      });
      watcher.on('error', lose);
    });
  }

  /** Reads everything and watches anew until a watch holds; one loop at a time. */
  async #resync(): Promise<void> {
    if (this.#resyncing) return;
    this.#resyncing = true;
    try {
      while (!this.#closed && !this.#watcher) {
        try {
          await this.#sync();
        } catch (err) {
          this.#unreached(err);
          await this.#sleep(RESYNC_RETRY_MS);
        }
      }
    } finally {
      this.#resyncing = false;
    }
  }

  #onPut(key: string, kv: IKeyValue): void {
    const text = kv.value.toString();
    if (key === KEYS.leader) {
      this.#seeLeader(kv);
    } else if (key === KEYS.fleet) {
      if (!this.#fresh('fleet', Number(kv.mod_revision))) return;
      const fleet = parseFleet(text);
      if (!fleet) return this.#ignored(key);
      this.#fleet = fleet;
      this.#tell((l) => l.fleet(fleet));
    } else if (key.startsWith(KEYS.replicas)) {
      const info = parseReplica(text);
      if (!info) return this.#ignored(key);
      this.#replicas.set(key.slice(KEYS.replicas.length), info);
    } else if (key.startsWith(KEYS.load)) {
      const id = key.slice(KEYS.load.length);
      if (id === this.replica) return;
      const load = parseLoad(text);
      if (!load) return this.#ignored(key);
      this.#loads.set(id, { replica: id, ...load });
      this.#tellLoads();
    } else if (key.startsWith(KEYS.commands)) {
      this.#onCommand(key, kv);
    } else if (key.startsWith(KEYS.results)) {
      const id = key.slice(KEYS.results.length);
      if (!this.#pending.has(id)) return;
      this.#settle(
        id,
        parseResult(text) ?? { ok: false, code: 'internal', message: 'The leader answered with something unreadable.' },
      );
    }
  }

  #onDelete(key: string, revision: number): void {
    if (key === KEYS.leader) {
      if (!this.#fresh('leader', revision)) return;
      this.#leader = undefined;
      if (this.#leading) this.#setLeading(false, 'the leader key was deleted');
      // A leaving replica campaigns only from leave(), when it finds nobody leading.
      if (!this.#leaving) void this.#campaign();
    } else if (key === KEYS.fleet) {
      // Retired by the last one out: there is no fleet to follow or take over.
      if (this.#fresh('fleet', revision)) this.#fleet = undefined;
    } else if (key.startsWith(KEYS.replicas)) {
      this.#replicas.delete(key.slice(KEYS.replicas.length));
    } else if (key.startsWith(KEYS.load)) {
      if (this.#loads.delete(key.slice(KEYS.load.length))) this.#tellLoads();
    } else if (key.startsWith(KEYS.claims)) {
      void this.#claimGone(key.slice(KEYS.claims.length));
    }
  }

  #seeLeader(kv: IKeyValue): void {
    if (!this.#fresh('leader', Number(kv.mod_revision))) return;
    const value = parseLeader(kv.value.toString());
    if (!value) return this.#ignored(KEYS.leader);
    const term = Number(kv.create_revision);
    if (value.id === this.replica && kv.lease !== this.#session?.lease) {
      // A key of ours on a lease this replica gave up (etcd was cut off, or an earlier process
      // with this id died): nobody acts on it, so it goes now rather than when etcd expires it.
      this.#leader = undefined;
      this.#revoke(kv.lease).catch((err: unknown) => this.#unreached(err));
      return;
    }
    this.#leader = { ...value, term };
    // Our own key, seen before our campaign's answer: the answer sets the term.
    if (this.#leading && term !== this.#term) this.#setLeading(false, `${value.id} leads now`);
  }

  /** Whether a state of the leader key or the fleet record at `revision` is newer than the one applied (and, if so, records it). */
  #fresh(what: 'leader' | 'fleet', revision: number): boolean {
    if (revision <= this.#seenAt[what]) return false;
    this.#seenAt[what] = revision;
    return true;
  }

  #onCommand(key: string, kv: IKeyValue): void {
    if (!this.#leading) return;
    const id = key.slice(KEYS.commands.length);
    const value = parseCommandValue(kv.value.toString());
    if (!value) return this.#ignored(key);
    void this.#run(id, value, kv.lease);
  }

  #tellLoads(): void {
    const loads = [...this.#loads.values()];
    this.#tell((l) => l.loads(loads));
  }

  #ignored(key: string): void {
    this.#log.warn(
      { key: this.#options.prefix + key },
      `etcd: ignoring ${this.#options.prefix}${key}: not a value this version reads`,
    );
  }

  // ---- store health --------------------------------------------------------------------

  #reached(): void {
    this.#lastAnswer = this.#clock.now();
    if (this.#reachable) return;
    this.#reachable = true;
    this.#log.info({ since: this.#unreachableSince }, 'etcd: reachable again');
    this.#unreachableSince = undefined;
    this.#tell((l) => l.store(true));
  }

  /**
   * A call failed. etcd counts as unreachable once nothing has answered for a third of the lease
   * (at most a second): a member that dies costs a failed call or two, retried on another
   * member, and should not read as etcd being gone.
   */
  #unreached(err: unknown): void {
    if (!this.#reachable || this.#closed) return;
    if (this.#clock.now() - this.#lastAnswer < Math.min(1000, this.#ttlMs / 3)) return;
    this.#reachable = false;
    this.#unreachableSince = this.#wallNow();
    this.#log.warn(
      { err: message(err) },
      'etcd: unreachable; serving with the last fleet seen, no scaling until it answers again',
    );
    this.#tell((l) => l.store(false));
  }

  #tell(fn: (l: CoordinationListener) => void): void {
    const l = this.#listener;
    if (!l || this.#closed) return;
    try {
      fn(l);
    } catch (err) {
      this.#log.error({ err }, 'etcd: a coordination listener threw');
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.#clock.setTimer(ms, resolve));
  }
}

function noLeader(message: string): FleetCommandResult {
  return { ok: false, code: 'no_leader', message };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
