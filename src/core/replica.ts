import type { Clock, TimerHandle } from './clock.js';
import {
  isFencedError,
  type CoordinationListener,
  type Coordinator,
  type FleetCommand,
  type FleetCommandResult,
  type FleetSnapshot,
  type LeaveOutcome,
  type ReplicaLoad,
  type SharedAdapter,
  type SharedFleet,
} from './coordination.js';
import type { FleetHistory } from './fleet-history.js';
import { mirrorWorkers, shareWorkers } from './fleet-mirror.js';
import type { WorkerPool } from './pool.js';
import type { Prober, StructuredLog, Worker } from './types.js';

/** What a replica does with the fleet when it comes to lead it, and when it stops. */
export interface ReplicaFleet {
  /**
   * Takes the fleet over: the workers in the pool (the previous leader's, as this replica
   * mirrored them) and the provisioner's clusters become this replica's to probe, replace and
   * scale, without launching or tearing down anything that serves. `shared` is the fleet the
   * previous leader last wrote (its target and bounds carry over); `reinit` relaunches the task
   * on running workers (--reinit, on a fresh start only). `leaving`: this replica is on its way
   * out and leads only to hand the fleet on or tear it down, so it adopts what runs and launches
   * nothing.
   */
  takeOver(shared: SharedFleet | undefined, reinit: boolean, leaving: boolean): Promise<void>;
  /** Stops every fleet action (probes, launches, drains, retries) and owns nothing; the pool stays as it is. */
  standDown(): void;
  /** A launch of the previous leader's has ended (it says so): the fleet stops waiting for it. */
  launchEnded(name: string): void;
  /** Workers the fleet is asked to run. */
  readonly target: number;
}

/**
 * The queue length the autoscaler reads: this replica's (set by admission) plus the others'
 * (published); and the others' requests waiting for a slot, which the leader adds to its own.
 */
export class GlobalQueue {
  readonly #tracker: { set(value: number, now?: number): void };
  #local = 0;
  #remote = 0;
  #remoteWaiting = 0;

  constructor(tracker: { set(value: number, now?: number): void }) {
    this.#tracker = tracker;
  }

  /** This replica's in flight + waiting. */
  get local(): number {
    return this.#local;
  }

  set(local: number, now?: number): void {
    this.#local = local;
    this.#tracker.set(local + this.#remote, now);
  }

  /** Requests waiting at the other replicas, as they last published. */
  get remoteWaiting(): number {
    return this.#remoteWaiting;
  }

  setRemote(remote: number, waiting = 0): void {
    this.#remoteWaiting = waiting;
    if (remote === this.#remote) return;
    this.#remote = remote;
    this.#tracker.set(this.#local + remote);
  }
}

export type ReplicaLog = Pick<StructuredLog, 'info' | 'warn' | 'error'>;

export interface ReplicaOptions {
  readonly coordinator: Coordinator;
  readonly pool: WorkerPool;
  readonly fleet: ReplicaFleet;
  /** Runs only while this replica leads. */
  readonly autoscaler: { start(): void; stop(): void; demand(): unknown };
  /** The autoscaler's bounds: the leader publishes them, followers take them from the shared fleet. */
  readonly scale: { min: number; max: number };
  readonly queue: GlobalQueue;
  /** This replica's load history, published, and the others', kept for whenever this replica leads. */
  readonly history?: FleetHistory | undefined;
  /** Requests waiting at this replica for a slot. */
  readonly waiting: () => number;
  /** Hands free slots to waiting requests (admission's wake): the others' load fell, or workers joined. */
  readonly wake: () => void;
  readonly clock: Clock;
  /** A follower probes the workers its outlier detection ejected, to readmit them (readiness is the leader's). */
  readonly prober?: Prober | undefined;
  readonly onProbe?: ((w: Worker, ok: boolean) => void) | undefined;
  readonly probeIntervalMs?: number | undefined;
  /** How often this replica publishes its load. Default 1000 ms. */
  readonly loadIntervalMs?: number | undefined;
  /** --reinit: relaunch the task on running workers, when this replica starts a fresh fleet. */
  readonly reinit?: boolean | undefined;
  readonly log?: ReplicaLog | undefined;
  /** Leadership and store changes, for metrics and events. */
  readonly onLeadership?: ((leading: boolean) => void) | undefined;
  readonly onStore?: ((reachable: boolean) => void) | undefined;
  /** The fleet's run-time LoRA adapters (AdapterSync): the leader keeps and shares them. */
  readonly adapters?: ReplicaAdapters | undefined;
}

/** What a replica shares and takes of the fleet's run-time LoRA adapters, and where a follower's change is made. */
export interface ReplicaAdapters {
  /** The changes to share; undefined while none was ever made. */
  shared(): readonly SharedAdapter[] | undefined;
  /** This replica comes to lead: the changes the previous leader shared. */
  restore(shared: readonly SharedAdapter[]): void;
  /** On the leader: a change a follower passed on. */
  commanded(cmd: Extract<FleetCommand, { op: 'adapter' }>): Promise<FleetCommandResult>;
}

/** Node control run on the leader for a follower (the control plane sets it). */
export type CommandHandler = (cmd: FleetCommand) => Promise<FleetCommandResult>;

const NO_LOG: ReplicaLog = { info() {}, warn() {}, error() {} };

/** A replica that stood down tells the leader of its aborted launches this many times, this far apart, while none leads. */
const ABANDONED_TELL_ATTEMPTS = 30;
const ABANDONED_TELL_DELAY_MS = 1000;

/** After a fleet write etcd did not answer, the leader writes again this much later. */
const REPUBLISH_DELAY_MS = 250;
/**
 * A takeover that failed (the provisioner's list of clusters would not come: an API server not
 * up yet, a hung `sky status`) is tried again this long after, doubling to TAKEOVER_RETRY_MAX_MS:
 * until it succeeds nothing adopts, launches or scales, and no other leader will.
 */
const TAKEOVER_RETRY_MS = 5000;
const TAKEOVER_RETRY_MAX_MS = 60_000;

/**
 * One gateway replica's part in a fleet shared with others (src/core/coordination.ts).
 *
 * Leading: the fleet is this replica's (its probes decide readiness, it launches, drains and
 * tears down, the autoscaler runs on the load of every replica), and every change of the pool
 * is published at once, fenced. Following: the pool mirrors the fleet the leader last wrote,
 * and this replica serves over it. Followers trust the leader's readiness rather than probe every
 * worker themselves: one probe stream per worker whatever the number of replicas, and one view
 * of which workers serve, the same on every replica (a prefix-hash ring agrees only if the
 * ready sets do), at the cost of the write's delay (milliseconds). A follower still sees its
 * own requests fail: its outlier detection ejects a failing worker for itself at once, and it
 * probes the workers it ejected to readmit them.
 *
 * Every replica publishes its load (queue length, waiting, in flight per worker, its newest
 * load-history buckets) about once a second. The others' share counts in the autoscaler's
 * queue length, requests waiting and load history (the leader scales on the fleet's load) and
 * in each worker's load (least-connection on every replica weighs the whole fleet's requests,
 * and worker_capacity bounds all replicas together, give or take a second's drift).
 */
export class Replica implements CoordinationListener {
  readonly #options: ReplicaOptions;
  readonly #coordinator: Coordinator;
  readonly #log: ReplicaLog;
  #leading = false;
  #term = 0;
  #takeovers = 0;
  #takeover: Promise<void> | undefined;
  /** The next attempt at a takeover that failed; cancelled when this replica stops leading or leaves. */
  #takeoverRetry: TimerHandle | undefined;
  #handler: CommandHandler | undefined;
  #loadTimer: TimerHandle | undefined;
  #probeTimer: TimerHandle | undefined;
  #publishTimer: TimerHandle | undefined;
  /** The fleet write under way, if any. */
  #publishing: Promise<void> | undefined;
  #dirty = false;
  #published: string | undefined;
  #demanding = false;
  #closed = false;
  /** The fleet was shut down by this replica, the last one out: nothing is published any more. */
  #retired = false;
  /** leave() has begun: a leadership won from now on is only for handing the fleet on or tearing it down. */
  #leaving = false;
  readonly #unlisten: () => void;

  constructor(opts: ReplicaOptions) {
    this.#options = opts;
    this.#coordinator = opts.coordinator;
    this.#log = opts.log ?? NO_LOG;
    this.#unlisten = opts.pool.onChange(() => this.#schedulePublish());
  }

  get leading(): boolean {
    return this.#leading;
  }

  get coordinator(): Coordinator {
    return this.#coordinator;
  }

  /** Resolves once this replica's takeover of the fleet (if one is under way) is over; never rejects. */
  async takenOver(): Promise<void> {
    await this.#takeover;
  }

  /** Where followers' node control runs on the leader. */
  handleCommands(handler: CommandHandler): void {
    this.#handler = handler;
  }

  /** Joins the replicas; resolves once joined, and, if this replica leads, once it has taken the fleet over. */
  async start(): Promise<void> {
    await this.#coordinator.start(this);
    if (this.#coordinator.replicated) {
      this.#scheduleLoad();
      this.#scheduleProbes();
    }
    await this.#takeover;
  }

  /** Stops the timers and leaves the coordinator (the fleet's shutdown is the caller's, before this). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#unlisten();
    for (const t of [this.#loadTimer, this.#probeTimer, this.#publishTimer, this.#takeoverRetry]) t?.cancel();
    await this.#coordinator.close();
  }

  /**
   * A graceful exit, before the fleet's shutdown: hands the fleet to a replica that stays
   * (outcome 'handed-over': this replica stands down and keeps the workers running) or finds
   * none ('last': this replica still leads, and the caller tears the fleet down or keeps it).
   */
  async leave(): Promise<LeaveOutcome> {
    this.#leaving = true;
    this.#takeoverRetry?.cancel();
    this.#takeoverRetry = undefined;
    if (this.#leading) this.#options.autoscaler.stop();
    const outcome = await this.#coordinator.leave();
    if (outcome === 'last') {
      // Nobody else holds the fleet: the teardown is ours, fenced as ever.
      if (!this.#leading) return 'unreachable';
      await this.#takeover;
      return this.#leading ? 'last' : 'unreachable';
    }
    if (this.#leading) this.#stepDown('leaving');
    return outcome;
  }

  /**
   * The last one out, once the fleet is shut down: stops publishing and deletes the shared fleet,
   * so the next start adopts what runs (kept workers) from the provisioner, as a lone gateway
   * does. A failure is logged: the next leader then starts from the last record, and its probes
   * and the provisioner's list correct it.
   */
  async retire(): Promise<void> {
    this.#publishTimer?.cancel();
    this.#publishTimer = undefined;
    // The fleet as the shutdown left it (its last teardowns included, perhaps still waiting for
    // their scheduled write) is written first: a replica that comes to lead after this one
    // mirrors the last write it saw, and would tear down again a worker shown as terminating.
    await this.#publish();
    this.#retired = true;
    try {
      await this.#coordinator.retireFleet();
    } catch (err) {
      this.#log.warn({ err }, 'could not delete the shared fleet record');
    }
  }

  /** A request found no live worker: scale from zero (a follower asks the leader). */
  demand(): void {
    if (this.#leading) {
      this.#options.autoscaler.demand();
      return;
    }
    if (this.#demanding) return;
    this.#demanding = true;
    void this.#coordinator
      .submit({ op: 'demand' })
      .then((r) => {
        if (!r.ok) this.#log.warn({ code: r.code }, `could not ask the leader to scale from zero: ${r.message}`);
      })
      .finally(() => (this.#demanding = false));
  }

  /**
   * This replica stopped leading with a launch under way: it was aborted, and its `sky launch`
   * has ended. The leader awaits that launch; told, it tears the cluster down now rather than
   * at launch_timeout. Told again while no replica leads (an election), for a while.
   */
  launchAbandoned(name: string): void {
    const tell = (attempt: number): void => {
      if (this.#closed || this.#leading) return;
      void this.#coordinator.submit({ op: 'launch-ended', name }).then((r) => {
        if (r.ok) return;
        if (r.code === 'no_leader' && attempt < ABANDONED_TELL_ATTEMPTS) {
          this.#options.clock.setTimer(ABANDONED_TELL_DELAY_MS, () => tell(attempt + 1));
          return;
        }
        this.#log.warn(
          { worker: name, code: r.code },
          `could not tell the leader that the launch of ${name} ended: ${r.message}; it waits for launch_timeout`,
        );
      });
    };
    tell(1);
  }

  // ---- CoordinationListener --------------------------------------------------------

  leadership(leading: boolean, term: number): void {
    if (leading) {
      this.#leading = true;
      this.#term = term;
      this.#published = undefined;
      this.#takeover = this.#takeOver(term);
    } else if (this.#leading) {
      this.#stepDown('lost the leadership');
    }
    this.#options.onLeadership?.(leading);
  }

  fleet(shared: SharedFleet): void {
    if (this.#leading) return;
    this.#follow(shared);
  }

  loads(others: readonly ReplicaLoad[]): void {
    let queue = 0;
    let waiting = 0;
    const perWorker = new Map<string, number>();
    for (const l of others) {
      queue += l.queueLength;
      waiting += l.waiting ?? 0;
      for (const [name, n] of Object.entries(l.inFlight)) perWorker.set(name, (perWorker.get(name) ?? 0) + n);
    }
    for (const w of this.#options.pool.list()) this.#options.pool.setRemoteInFlight(w.name, perWorker.get(w.name) ?? 0);
    this.#options.queue.setRemote(queue, waiting);
    this.#options.history?.setRemote(others);
    this.#options.wake();
  }

  store(reachable: boolean): void {
    this.#options.onStore?.(reachable);
  }

  async command(cmd: FleetCommand): Promise<FleetCommandResult> {
    // Run on the fleet once it is taken over: the takeover sets the target from the shared
    // fleet, which would undo a worker added or removed meanwhile.
    await this.takenOver();
    if (cmd.op === 'demand') {
      this.#options.autoscaler.demand();
      return { ok: true };
    }
    if (cmd.op === 'launch-ended') {
      this.#options.fleet.launchEnded(cmd.name);
      return { ok: true };
    }
    if (cmd.op === 'adapter') {
      if (!this.#options.adapters) return { ok: false, code: 'not_found', message: 'This gateway keeps no adapters.' };
      return this.#options.adapters.commanded(cmd);
    }
    if (!this.#handler) return { ok: false, code: 'shutting_down', message: 'Node control is not available here.' };
    return this.#handler(cmd);
  }

  // ---- leading ---------------------------------------------------------------------

  async #takeOver(term: number): Promise<void> {
    const shared = this.#coordinator.lastFleet();
    const reinit = this.#options.reinit === true && this.#takeovers === 0 && shared === undefined;
    this.#takeovers++;
    const started = this.#options.clock.now();
    if (shared) {
      this.#options.scale.min = shared.minWorkers;
      this.#options.scale.max = shared.maxWorkers;
      if (shared.adapters) this.#options.adapters?.restore(shared.adapters);
    }
    await this.#tryTakeOver(term, shared, reinit, started, 1);
  }

  /**
   * One attempt at the takeover. A failure schedules the next (TAKEOVER_RETRY_MS, doubling) and
   * returns: what awaits the takeover (start, leave, node control) goes on with the fleet as it
   * is, as it would without the retry, rather than wait for the provisioner to come back.
   */
  async #tryTakeOver(
    term: number,
    shared: SharedFleet | undefined,
    reinit: boolean,
    started: number,
    attempt: number,
  ): Promise<void> {
    const current = (): boolean => this.#leading && this.#term === term && !this.#closed && !this.#leaving;
    try {
      await this.#options.fleet.takeOver(shared, reinit, this.#leaving);
    } catch (err) {
      if (!current()) return;
      const delay = Math.min(TAKEOVER_RETRY_MS * 2 ** (attempt - 1), TAKEOVER_RETRY_MAX_MS);
      this.#log.error(
        { err, attempt, retryInMs: delay },
        `taking the fleet over failed; nothing launches or scales until it works: trying again in ${delay / 1000} s`,
      );
      this.#takeoverRetry = this.#options.clock.setTimer(delay, () => {
        this.#takeoverRetry = undefined;
        if (current()) void this.#tryTakeOver(term, shared, reinit, started, attempt + 1);
      });
      return;
    }
    if (!this.#leading || this.#term !== term || this.#closed) return;
    if (!this.#leaving) this.#options.autoscaler.start();
    if (!this.#coordinator.replicated) return;
    this.#log.info(
      {
        term,
        workers: this.#options.pool.list().length,
        target: this.#options.fleet.target,
        tookMs: Math.round(this.#options.clock.now() - started),
      },
      shared ? `leading the fleet from ${shared.leader} on (term ${term})` : `leading the fleet (term ${term})`,
    );
    await this.#publish();
  }

  #stepDown(why: string): void {
    this.#leading = false;
    this.#takeoverRetry?.cancel();
    this.#takeoverRetry = undefined;
    this.#options.autoscaler.stop();
    this.#options.fleet.standDown();
    this.#publishTimer?.cancel();
    this.#publishTimer = undefined;
    this.#log.warn({ why }, `following: ${why}`);
    // Whatever this replica changed as it lost the leadership, the shared fleet is the truth.
    const shared = this.#coordinator.lastFleet();
    if (shared) this.#follow(shared);
  }

  #snapshot(): FleetSnapshot {
    const adapters = this.#options.adapters?.shared();
    return {
      target: this.#options.fleet.target,
      minWorkers: this.#options.scale.min,
      maxWorkers: this.#options.scale.max,
      workers: shareWorkers(this.#options.pool),
      ...(adapters ? { adapters } : {}),
    };
  }

  /** The fleet's adapters changed: the leader shares them with the fleet's next write. */
  adaptersChanged(): void {
    this.#schedulePublish();
  }

  /** A pool change: published at the end of this turn, with whatever else changes in it. */
  #schedulePublish(): void {
    if (!this.#leading || this.#publishTimer || this.#closed || this.#retired || !this.#coordinator.replicated) return;
    this.#publishTimer = this.#options.clock.setTimer(0, () => {
      this.#publishTimer = undefined;
      void this.#publish();
    });
  }

  /** Writes the fleet if it changed since the last write; one write at a time, the newest wins. */
  #publish(): Promise<void> {
    if (this.#publishing) {
      this.#dirty = true;
      return this.#publishing;
    }
    this.#publishing = this.#write().finally(() => (this.#publishing = undefined));
    return this.#publishing;
  }

  async #write(): Promise<void> {
    try {
      do {
        this.#dirty = false;
        if (!this.#leading || this.#retired) return;
        const snapshot = this.#snapshot();
        const text = JSON.stringify(snapshot);
        if (text === this.#published) continue;
        await this.#coordinator.publishFleet(snapshot);
        this.#published = text;
      } while (this.#dirty);
    } catch (err) {
      if (isFencedError(err)) {
        this.#log.warn({ why: err.why }, `fleet write refused: ${err.why}`);
      } else if (this.#leading && !this.#closed && !this.#retired) {
        this.#log.warn({ err }, 'fleet write unanswered; writing again shortly');
        this.#publishTimer ??= this.#options.clock.setTimer(REPUBLISH_DELAY_MS, () => {
          this.#publishTimer = undefined;
          void this.#publish();
        });
      }
    }
  }

  // ---- following -------------------------------------------------------------------

  #follow(shared: SharedFleet): void {
    this.#options.scale.min = shared.minWorkers;
    this.#options.scale.max = shared.maxWorkers;
    mirrorWorkers(this.#options.pool, shared.workers);
    this.#options.wake();
  }

  /** A follower probes the workers it ejected, past their ejection time, to readmit them. */
  #scheduleProbes(): void {
    const { prober, onProbe, probeIntervalMs } = this.#options;
    if (!prober || !onProbe || !probeIntervalMs || this.#closed) return;
    this.#probeTimer = this.#options.clock.setTimer(probeIntervalMs, () => {
      if (!this.#leading) {
        for (const w of this.#options.pool.inState('ready')) {
          if (!w.ejected || !w.url) continue;
          const abort = new AbortController();
          const timer = this.#options.clock.setTimer(probeIntervalMs, () => abort.abort(new Error('probe timed out')));
          void prober
            .probe(w.url, abort.signal)
            .then(
              (ok) => onProbe(w, ok),
              () => onProbe(w, false),
            )
            .finally(() => timer.cancel());
        }
      }
      this.#scheduleProbes();
    });
  }

  // ---- load --------------------------------------------------------------------------

  #scheduleLoad(): void {
    if (this.#closed) return;
    this.#loadTimer = this.#options.clock.setTimer(this.#options.loadIntervalMs ?? 1000, () => {
      this.#publishLoad();
      // Bounds changed by node control, or the target by the autoscaler: written with the next tick.
      this.#schedulePublish();
      this.#scheduleLoad();
    });
  }

  #publishLoad(): void {
    const inFlight: Record<string, number> = {};
    for (const w of this.#options.pool.list()) if (w.inFlight > 0) inFlight[w.name] = w.inFlight;
    this.#coordinator.publishLoad({
      queueLength: this.#options.queue.local,
      inFlight,
      waiting: this.#options.waiting(),
      ...(this.#options.history ? { buckets: this.#options.history.recent() } : {}),
    });
  }
}
