import type { Clock, TimerHandle } from './clock.js';
import { errorMessage } from './errors.js';
import { HealthChecker } from './health-checker.js';
import type { LaunchIntent, LaunchLedger } from './launch-ledger.js';
import { load, type WorkerPool } from './pool.js';
import { ProvisionerGate } from './provisioner-gate.js';
import { Terminator, type Departure } from './terminator.js';
import type { ClusterInfo, Endpoint, FleetLog, Prober, Provisioner, TaskSpec, Worker, WorkerState } from './types.js';

export interface FleetOptions {
  readonly pool: WorkerPool;
  readonly provisioner: Provisioner;
  readonly prober: Prober;
  readonly task: TaskSpec;
  readonly clock: Clock;
  /** Workers are named `<namePrefix>-<n>` (option worker_name_prefix). */
  readonly namePrefix: string;
  /** Concurrent requests per worker (option worker_capacity). */
  readonly capacity: number;
  /** Time between readiness probes of one worker (option worker_probe_interval). */
  readonly probeIntervalMs: number;
  /** A worker starting or not_ready this long is replaced (option worker_unhealthy_timeout). */
  readonly unhealthyTimeoutMs: number;
  /** How long a draining worker's in-flight requests get before it is terminated (option drain_timeout). */
  readonly drainTimeoutMs: number;
  /**
   * Wait before launching again after a failed launch; doubles with each failure in a row
   * up to maxRetryDelayMs. E.g. 5 s → 5, 10, 20, 40 ... 300 s. A worker turning ready resets it.
   */
  readonly retryDelayMs?: number;
  readonly maxRetryDelayMs?: number;
  /** Attempts at provisioner.terminate before a worker is left `failed` (and logged as possibly leaked). */
  readonly terminateAttempts?: number;
  /**
   * A failed launch is torn down and retried under the same name this many times
   * (option max_launch_retries), after retryDelayMs × 2^(attempt−1); then the worker is
   * `failed` and a new name is launched after the usual backoff. Default 0.
   * E.g. 2 retries, 5 s: attempts at 0 s, ~5 s, ~15 s, then give up.
   */
  readonly maxLaunchRetries?: number;
  /**
   * Uniform [0, 1) source for backoff jitter: each delay is scaled by 0.8 + 0.4·r, so
   * workers that failed together do not retry in lockstep (5 s → 4..6 s). Without it,
   * delays are exact.
   */
  readonly random?: () => number;
  readonly log?: FleetLog;
  /** A worker became ready (wire to the admission queue's wake-up). */
  readonly onReady?: (w: Worker) => void;
  /** Every readiness probe's result, after the state change it caused (outlier detection readmits on it). */
  readonly onProbe?: (w: Worker, ok: boolean) => void;
  /**
   * Several gateway replicas: every provisioner call waits for it; it rejects (a FencedError)
   * once this replica no longer leads, and the call is not made.
   */
  readonly fence?: (action: string) => Promise<void>;
  /**
   * Several gateway replicas: every launch is recorded here before it starts and cleared once it
   * has ended; adopt() awaits the launches the previous leader left under way.
   */
  readonly launches?: LaunchLedger;
  /**
   * How long a launch may take (option launch_timeout): a launch the previous leader left under
   * way that is not up this long after the takeover is given up on and its cluster torn down.
   * Default 30 min.
   */
  readonly launchTimeoutMs?: number;
  /**
   * A launch this fleet aborted as it stood down has ended (its provisioner call settled): the
   * leader that awaits it can stop waiting (Replica tells it).
   */
  readonly onLaunchAbandoned?: (name: string) => void;
}

export interface FleetStats {
  launched: number;
  launchFailures: number;
  /** Workers replaced for staying starting/not_ready past the unhealthy timeout, or lost. */
  replaced: number;
  terminated: number;
  terminateFailures: number;
  /** Workers given up on after maxLaunchRetries failed attempts (they end `failed`). */
  launchGiveUps: number;
  /** Teardowns given up on after terminateAttempts: clusters that may still be running (and billing). */
  teardownGiveUps: number;
}

/** Every counter at zero: a new fleet's stats. */
export function emptyFleetStats(): FleetStats {
  return {
    launched: 0,
    launchFailures: 0,
    replaced: 0,
    terminated: 0,
    terminateFailures: 0,
    launchGiveUps: 0,
    teardownGiveUps: 0,
  };
}

export interface AdoptResult {
  /** UP clusters with an endpoint, now in the pool as `starting`. */
  readonly adopted: string[];
  /** Clusters that were not usable (not UP, no endpoint) and were torn down. */
  readonly terminated: string[];
  /** Names with the prefix that are not `<prefix>-<n>`: left alone, they may belong to someone else. */
  readonly ignored: string[];
  /** UP clusters whose jobs were cancelled and the task launched again on them (reinit). */
  readonly reinitialized: string[];
  /** Launches the previous leader left under way: awaited as `provisioning` workers, adopted once up. */
  readonly inherited: string[];
}

/** How many given-up workers stay listed as `failed` (their names are not reused meanwhile). */
const FAILED_RECORDS_KEPT = 10;

/** How often the provisioner's list is read while a launch the previous leader began is awaited. */
const INHERITED_POLL_MS = 5000;

/**
 * A launch the previous leader recorded that its provisioner has not listed for this long is
 * taken for one that never started (the leader stopped between the record and the command).
 */
const INHERITED_UNLISTED_MS = 60_000;

/**
 * A cluster adoption found unusable that would not go away is torn down again this long after
 * (its launch, left running by a gateway that crashed, may hold SkyPilot's cluster lock for
 * minutes), until it goes, the gateway stops, or this replica stops leading.
 */
const ORPHAN_RETRY_MS = 60_000;

/** The states that count toward the target (workers still provisioning count too). */
const LIVE: readonly WorkerState[] = ['provisioning', 'starting', 'ready', 'not_ready'];

/** The fleet's bookkeeping for one worker it owns. */
interface Tracked {
  readonly name: string;
  /** Aborts the launch while provisioning, and the wait before a launch retry. */
  readonly abort: AbortController;
  /** Settles (never rejects) once provisioner.launch has settled. */
  launchSettled: Promise<void>;
  /** Set once the worker is asked to go: resolves when it is gone (or given up on). */
  done: Promise<void> | undefined;
  /** True when it was removed on purpose while provisioning: the launch's rejection is expected. */
  cancelled: boolean;
  /** Launch attempts under this name so far (retries after failures count). */
  attempt: number;
  /** Its launch is the previous leader's, awaited here: never retried, never made again. */
  inherited: boolean;
  /** Ends the wait between two reads of the provisioner's list (an inherited launch said to have ended). */
  wake: (() => void) | undefined;
}

/**
 * Keeps a number of workers running: holds the target, launches workers through the
 * provisioner (retrying failed launches with backoff), reconciles the live count with the
 * target, and adopts the clusters an earlier gateway left. Two units do the rest: the
 * HealthChecker probes workers until ready and asks for replacements, the Terminator drains
 * and tears down. Every provisioner call goes through one ProvisionerGate. Pure: time comes
 * from the Clock, I/O only through the Provisioner and Prober interfaces, and every state
 * change goes through the WorkerPool.
 *
 * Public `launch()` / `remove()` move the target by one (manual add/remove); the
 * autoscaler sets it with `scaleTo(n)`.
 */
export class Fleet {
  readonly #options: FleetOptions;
  readonly #pool: WorkerPool;
  readonly #clock: Clock;
  readonly #log: FleetLog;
  readonly #provisioner: ProvisionerGate;
  readonly #health: HealthChecker;
  readonly #terminator: Terminator;
  readonly #tracked = new Map<string, Tracked>();
  /** Teardowns of clusters that never joined the pool (adoption). */
  readonly #orphanTeardowns = new Map<string, Promise<void>>();
  /** Orphan teardowns waiting to try again: ending the wait now (shutdown) makes the last try. */
  readonly #orphanWaits = new Map<string, () => void>();
  readonly #launchStats = { launched: 0, launchFailures: 0, launchGiveUps: 0 };
  /** Workers given up on after their launch retries, oldest first, kept as `failed` records. */
  readonly #failedRecords: string[] = [];
  #target = 0;
  #failuresInARow = 0;
  /** No launches before this time (backoff after failures). */
  #retryAt = -Infinity;
  #retryTimer: TimerHandle | undefined;
  #closing = false;
  /** Bumped by standDown: an adoption listed before it is stale. */
  #epoch = 0;
  /** Launches of the previous leader's that it says have ended (they may be told before they are inherited). */
  readonly #endedLaunches = new Set<string>();
  /** Launch records cleared while adopt() reads the records and the list: what it read of them is stale. */
  #clearedWhileAdopting: Set<string> | undefined;

  constructor(opts: FleetOptions) {
    if (opts.capacity < 1) throw new Error('fleet: capacity must be ≥ 1');
    this.#options = opts;
    this.#pool = opts.pool;
    this.#clock = opts.clock;
    this.#log = opts.log ?? (() => {});
    const ledger = opts.launches;
    this.#provisioner = new ProvisionerGate(
      opts.provisioner,
      opts.fence,
      ledger ? (name) => ledger.record(name) : undefined,
    );
    this.#health = new HealthChecker({
      pool: opts.pool,
      prober: opts.prober,
      clock: opts.clock,
      probeIntervalMs: opts.probeIntervalMs,
      unhealthyTimeoutMs: opts.unhealthyTimeoutMs,
      log: this.#log,
      replace: (w) => this.#replace(w),
      onReady: (w) => {
        this.#failuresInARow = 0;
        opts.onReady?.(w);
      },
      onProbe: opts.onProbe,
    });
    this.#terminator = new Terminator({
      pool: opts.pool,
      clock: opts.clock,
      provisioner: this.#provisioner,
      drainTimeoutMs: opts.drainTimeoutMs,
      drainPollMs: opts.probeIntervalMs,
      retryDelayMs: opts.retryDelayMs,
      terminateAttempts: opts.terminateAttempts,
      log: this.#log,
    });
  }

  get target(): number {
    return this.#target;
  }

  get stats(): Readonly<FleetStats> {
    return { ...this.#launchStats, replaced: this.#health.replaced, ...this.#terminator.stats };
  }

  /** Clusters that would not go away after terminateAttempts tries: they may still be running. */
  unterminated(): string[] {
    return this.#terminator.unterminated();
  }

  /** Workers counting toward the target: provisioning, starting, ready, not_ready. */
  live(): Worker[] {
    return this.#pool.inState(...LIVE).filter((w) => this.#tracked.has(w.name));
  }

  /** Sets the number of live workers to keep; launches or drains to get there. */
  scaleTo(n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new Error(`fleet: target must be a whole number ≥ 0, got ${n}`);
    if (this.#closing) return;
    if (n !== this.#target) this.#log('info', `fleet: target ${this.#target} → ${n}`, { from: this.#target, to: n });
    this.#target = n;
    this.#reconcile();
  }

  /** Adds one worker now (target + 1), named `name` or the next free `<prefix>-<n>`. */
  launch(name?: string): Worker {
    if (this.#closing) throw new Error('fleet: shutting down');
    const chosen = name ?? this.#nextName();
    if (this.#pool.get(chosen) || this.#tracked.has(chosen) || this.#orphanTeardowns.has(chosen)) {
      throw new Error(`fleet: worker ${chosen} already exists`);
    }
    this.#target++;
    return this.#startLaunch(chosen);
  }

  /**
   * Removes one worker (target − 1): `name`, or the one scale-down would pick. Resolves
   * with its name once it is gone.
   */
  async remove(name?: string): Promise<string> {
    const victim = name ?? this.#pickVictims(1)[0]?.name;
    if (victim === undefined) throw new Error('fleet: no worker to remove');
    const w = this.#pool.get(victim);
    if (!w || !this.#tracked.has(victim)) throw new Error(`fleet: unknown worker ${victim}`);
    if (LIVE.includes(w.state)) this.#target = Math.max(0, this.#target - 1);
    await this.drain(victim, 'removed');
    return victim;
  }

  /**
   * Takes `name` out of service: no new requests, in-flight ones get drainTimeoutMs to
   * finish, then it is terminated. Resolves once it is gone. Does not change the target
   * (reconcile will launch a replacement if the fleet is now short).
   */
  drain(name: string, reason = 'drained'): Promise<void> {
    const t = this.#tracked.get(name);
    const w = this.#pool.get(name);
    if (!t || !w) return Promise.reject(new Error(`fleet: unknown worker ${name}`));
    return this.#retire(t, w, true, reason);
  }

  /** Call when a request on some worker finished: a draining worker may now be empty. */
  notifyRelease(): void {
    this.#terminator.notifyRelease();
  }

  /**
   * The worker's cluster/process is gone on its own (preemption, crash): tear down what
   * is left and launch a replacement.
   */
  lost(name: string, reason: string): void {
    const t = this.#tracked.get(name);
    const w = this.#pool.get(name);
    if (!t || !w || t.done) return;
    this.#health.lost(w, reason);
  }

  /**
   * At start-up, or when this replica comes to lead: UP clusters named `<prefix>-<n>` that have
   * an endpoint join the pool as `starting` (and are probed); other `<prefix>-<n>` clusters are
   * torn down so that a crash never leaks a worker. A cluster whose worker is listed only as
   * `failed` counts as unknown: its record says nothing runs, and something does. A launch the previous leader left under way
   * (recorded in the launch ledger, or `provisioning` in the pool it mirrored) is neither torn
   * down nor made again: it is awaited as a `provisioning` worker (see #inherit). The target
   * rises to at least the number of live workers.
   */
  async adopt(opts: { reinit?: boolean } = {}): Promise<AdoptResult> {
    const epoch = this.#epoch;
    // A teardown that own() took over may end meanwhile, clearing a record read here.
    const cleared = new Set<string>();
    this.#clearedWhileAdopting = cleared;
    let intents: LaunchIntent[], clusters: ClusterInfo[];
    try {
      intents = (await this.#options.launches?.open()) ?? [];
      clusters = await this.#provisioner.list(this.#options.namePrefix);
    } finally {
      this.#clearedWhileAdopting = undefined;
    }
    const result: AdoptResult = { adopted: [], terminated: [], ignored: [], reinitialized: [], inherited: [] };
    if (epoch !== this.#epoch) return result; // stood down meanwhile: nothing is ours to adopt
    const ours = new RegExp(`^${escapeRegExp(this.#options.namePrefix)}-\\d+$`);
    const known = (name: string): boolean => this.#tracked.has(name) || this.#orphanTeardowns.has(name);
    // Launches under way when the previous leader stopped: its records, and its provisioning workers.
    const inherited = new Set<string>();
    for (const { name } of intents) {
      if (!ours.test(name) || cleared.has(name)) continue;
      const w = this.#pool.get(name);
      if (known(name) || (w && w.state !== 'provisioning'))
        void this.#clearLaunch(name); // ended, record left
      else inherited.add(name);
    }
    for (const w of this.#pool.inState('provisioning')) if (!known(w.name)) inherited.add(w.name);
    for (const c of clusters) {
      if (!ours.test(c.name)) {
        result.ignored.push(c.name);
        continue;
      }
      const up = c.status === 'UP' && c.endpoint !== undefined;
      // A cluster whose only record says `failed` (a launch given up on that reached the list
      // late, or a teardown that failed) still runs: it is handled as any unknown cluster.
      if (this.#pool.get(c.name)?.state === 'failed' && !known(c.name) && !inherited.has(c.name)) {
        this.#pool.setState(c.name, 'gone', 'its cluster is listed after all');
      }
      if (known(c.name) || (this.#pool.get(c.name) && !inherited.has(c.name))) continue;
      // Not up yet: its launch is still running somewhere (awaited below), or ended half-done (torn down then).
      if (inherited.has(c.name) && !up) continue;
      inherited.delete(c.name);
      if (up && !this.#closing && opts.reinit) {
        // --reinit: stop the old jobs, then launch the task on the same cluster.
        const gate = this.#provisioner;
        this.#startLaunch(c.name, gate.canCancelJobs ? () => gate.cancelJobs(c.name) : undefined);
        result.reinitialized.push(c.name);
      } else if (up && !this.#closing) {
        this.#track(c.name);
        const w = this.#pool.get(c.name) ?? this.#pool.add(c.name, this.#options.capacity, 'provisioning');
        w.url = c.endpoint!.url;
        w.detail = { ...c.endpoint!.detail };
        this.#pool.setState(c.name, 'starting', 'adopted');
        result.adopted.push(c.name);
        this.#health.watch(w);
        void this.#clearLaunch(c.name);
      } else {
        result.terminated.push(c.name);
        this.#log('info', `fleet: tearing down ${c.name} (${c.status}${c.endpoint ? '' : ', no endpoint'})`);
        this.#tearDownOrphan(c.name);
      }
    }
    for (const name of inherited) {
      if (this.#closing) break;
      this.#inherit(name);
      result.inherited.push(name);
    }
    const acted = result.adopted.length + result.terminated.length + result.reinitialized.length;
    if (acted + result.inherited.length > 0) {
      this.#log(
        'info',
        `fleet: adopted ${result.adopted.length}, reinitialising ${result.reinitialized.length}, tearing down ${result.terminated.length}, awaiting ${result.inherited.length} launches of the previous leader`,
        {
          adopted: result.adopted,
          reinitialized: result.reinitialized,
          terminated: result.terminated,
          inherited: result.inherited,
        },
      );
    }
    // Keep what was adopted: the target rises to cover it, and the autoscaler's next
    // scaleTo drains any surplus the usual way.
    this.#target = Math.max(this.#target, this.live().length);
    return result;
  }

  /**
   * Tears down a cluster no worker stands for, trying again every ORPHAN_RETRY_MS while it will
   * not go: a gateway killed mid-launch leaves its `sky launch` running, which holds the
   * cluster's lock, so a teardown at the next start fails until that launch ends, and a cluster
   * given up on then would come up unknown to the fleet and bill for good. Shutdown makes one
   * last try (the cluster is then reported unterminated); standing down leaves it to the next leader.
   * `triedJustNow`: a teardown just failed, so the first try waits a minute too.
   */
  #tearDownOrphan(name: string, triedJustNow = false): void {
    const epoch = this.#epoch;
    const p = (async () => {
      for (let tried = triedJustNow; ; tried = true) {
        if (tried && !(await this.#orphanPause(name, epoch))) return;
        if (await this.#terminator.terminate(name)) {
          void this.#clearLaunch(name);
          // A worker left listed as failed for it (a launch retry whose teardown failed) is gone now.
          if (this.#pool.get(name)?.state === 'failed' && !this.#tracked.has(name))
            this.#pool.setState(name, 'gone', 'terminated');
          return;
        }
      }
    })().finally(() => {
      if (this.#orphanTeardowns.get(name) === p) this.#orphanTeardowns.delete(name);
    });
    this.#orphanTeardowns.set(name, p);
  }

  /**
   * The minute between two teardowns of an orphan (shutdown ends it early, for the last try);
   * false when there is to be no next try: the gateway is stopping or this replica stood down.
   */
  async #orphanPause(name: string, epoch: number): Promise<boolean> {
    if (this.#closing || epoch !== this.#epoch) return false;
    const retryIn = `${ORPHAN_RETRY_MS / 1000} s`;
    this.#log('warn', `fleet: ${name} would not go away (a launch may still hold it); trying again in ${retryIn}`, {
      worker: name,
    });
    await new Promise<void>((resolve) => {
      const timer = this.#clock.setTimer(ORPHAN_RETRY_MS, resolve);
      this.#orphanWaits.set(name, () => (timer.cancel(), resolve()));
    });
    this.#orphanWaits.delete(name);
    return epoch === this.#epoch;
  }

  /**
   * Several gateway replicas, when this one comes to lead: the workers already in the pool (the
   * previous leader's, as this replica mirrored them) become this fleet's as they are. Serving
   * and starting workers keep their state and are probed from now on; a draining or
   * terminating one is drained and torn down, finishing what the previous leader began (a
   * terminating one's cluster is looked up first: the teardown may have ended unrecorded). A
   * provisioning one stays as it is: its launch was the previous leader's, and adopt() awaits
   * it. Call adopt() next.
   *
   * `leaving`: this replica leads only to hand the fleet on or to end it, and its shutdown()
   * tears every worker down or keeps it. A draining worker is left to that: it may be one the
   * last replica out kept (kept workers are drained, and shown so), which finishing the drain
   * would tear down.
   */
  own(opts: { leaving?: boolean } = {}): void {
    if (this.#closing) return;
    for (const w of this.#pool.list()) {
      if (this.#tracked.has(w.name)) continue;
      if (w.state === 'provisioning') continue; // adopt() awaits its launch
      if (w.state === 'failed') continue; // a record (given up on), or a teardown that failed: nothing runs
      const t = this.#track(w.name);
      if (w.url !== undefined) this.#provisioner.claim(w.name, { url: w.url, detail: w.detail });
      // A teardown the previous leader began may have finished: looked up before it is made again.
      if (w.state === 'terminating') void this.#retire(t, w, true, 'the previous leader was taking it out', true);
      else if (w.state === 'draining' && opts.leaving !== true)
        void this.#retire(t, w, true, 'the previous leader was taking it out');
      else if (w.state !== 'draining') this.#health.watch(w);
    }
    // Until the caller sets the target, it covers what serves: a departure that settles while
    // adopt() runs reconciles to it, not to the 0 a stood-down fleet holds.
    this.#target = Math.max(this.#target, this.live().length);
  }

  /**
   * Several gateway replicas, when this one stops leading: every fleet action stops (probes,
   * launches in progress are aborted, drains, retries, teardowns not yet under way) and the
   * fleet owns nothing. No cluster is touched: the next leader takes them over. The pool stays
   * as it is.
   */
  standDown(): void {
    this.#retryTimer?.cancel();
    this.#retryTimer = undefined;
    this.#retryAt = -Infinity;
    this.#failuresInARow = 0;
    const tracked = [...this.#tracked.values()];
    // Forgotten first: the callbacks of launches and drains under way find their worker untracked and do nothing.
    this.#tracked.clear();
    this.#orphanTeardowns.clear();
    for (const wake of this.#orphanWaits.values()) wake();
    this.#orphanWaits.clear();
    this.#endedLaunches.clear();
    this.#epoch++;
    for (const t of tracked) {
      const launching = this.#pool.get(t.name)?.state === 'provisioning' && !t.inherited && !t.done;
      this.#stopLaunchAndProbes(t);
      if (launching) void t.launchSettled.then(() => this.#options.onLaunchAbandoned?.(t.name));
    }
    this.#terminator.standDown();
    this.#target = 0;
  }

  /**
   * The previous leader says its launch of `name` has ended (aborted as it stood down): the
   * wait for it ends at once; a cluster not up now is torn down.
   */
  launchEnded(name: string): void {
    this.#endedLaunches.add(name);
    this.#tracked.get(name)?.wake?.();
  }

  /**
   * Stops launching and probing; drains every worker (bounded by drainTimeoutMs) and
   * terminates it unless keepWorkers (then running workers stay up, e.g. to be adopted
   * by the next gateway; launches still in progress are torn down either way).
   * Resolves when all are gone (or, with keepWorkers, drained).
   */
  async shutdown(opts: { keepWorkers?: boolean } = {}): Promise<void> {
    this.#closing = true;
    this.#retryTimer?.cancel();
    this.#retryTimer = undefined;
    for (const wake of this.#orphanWaits.values()) wake();
    const waits: Promise<void>[] = [...this.#orphanTeardowns.values()];
    for (const t of [...this.#tracked.values()]) {
      const w = this.#pool.get(t.name);
      if (!w) continue;
      const keep = opts.keepWorkers === true && w.state !== 'provisioning' && w.state !== 'failed';
      waits.push(this.#retire(t, w, !keep, keep ? 'shutdown (keeping workers)' : 'shutdown'));
    }
    await Promise.all(waits);
  }

  // ---- launching -------------------------------------------------------------------

  /** Tracks a new worker and launches it; `before` runs first (reinit: cancel the old jobs). */
  #startLaunch(name: string, before?: () => Promise<void>): Worker {
    const t = this.#track(name);
    const w = this.#pool.add(name, this.#options.capacity, 'provisioning');
    this.#launchStats.launched++;
    this.#log('info', `fleet: launching ${name}`, { worker: name });
    this.#runLaunch(t, w, before);
    return w;
  }

  /**
   * A launch the previous leader began: `name` is a `provisioning` worker of this fleet from now
   * on (it counts toward the target, so nothing is launched in its place), and the provisioner's
   * list is read every few seconds until its cluster is up (then it is this fleet's, as if this
   * fleet had launched it), its launch is over by launch_timeout, or its cluster never appears.
   * It is never launched again: the launch may still be running (the previous leader's `sky
   * launch` outlives a gateway killed with SIGKILL), and a second launch of one name would race
   * it for one cluster. A worker given up on is torn down once, and stays listed as `failed` so
   * that its name is not used again while the launch may still make its cluster.
   */
  #inherit(name: string): void {
    const t = this.#track(name);
    t.inherited = true;
    t.attempt = 1;
    const w = this.#pool.get(name) ?? this.#pool.add(name, this.#options.capacity, 'provisioning');
    w.detail = { ...w.detail, launch: 'the previous leader’s, awaited' };
    this.#log('info', `fleet: awaiting ${name}, launched by the previous leader`, { worker: name });
    this.#followLaunch(t, w, this.#awaitInherited(t));
  }

  /**
   * Reads the provisioner's list until `t`'s cluster is up. Removing the worker does not stop
   * the wait (its teardown must come after the launch, not race it); standing down does.
   */
  async #awaitInherited(t: Tracked): Promise<Endpoint> {
    try {
      return await this.#pollInherited(t);
    } finally {
      this.#endedLaunches.delete(t.name);
    }
  }

  async #pollInherited(t: Tracked): Promise<Endpoint> {
    const started = this.#clock.now();
    const deadline = started + (this.#options.launchTimeoutMs ?? 30 * 60_000);
    let listedAt: number | undefined;
    for (;;) {
      if (!this.#endedLaunches.has(t.name)) {
        await new Promise<void>((resolve) => {
          const timer = this.#clock.setTimer(INHERITED_POLL_MS, resolve);
          t.wake = () => (timer.cancel(), resolve());
        });
        t.wake = undefined;
      }
      if (this.#tracked.get(t.name) !== t) throw new Error('stood down');
      const ended = this.#endedLaunches.has(t.name);
      const c = (await this.#provisioner.list(this.#options.namePrefix)).find((x) => x.name === t.name);
      if (this.#tracked.get(t.name) !== t) throw new Error('stood down');
      if (c?.status === 'UP' && c.endpoint) return c.endpoint;
      if (ended) throw new Error(`the previous leader's launch ended (${c?.status ?? 'not listed'})`);
      const now = this.#clock.now();
      if (c) listedAt = now;
      if (listedAt === undefined && now - started >= INHERITED_UNLISTED_MS) {
        throw new Error(`the previous leader's launch never reached the provisioner's list`);
      }
      if (now >= deadline) {
        throw new Error(`the previous leader's launch was not up within launch_timeout (${c?.status ?? 'not listed'})`);
      }
    }
  }

  /** One launch attempt of an already tracked, provisioning worker. */
  #runLaunch(t: Tracked, w: Worker, before?: () => Promise<void>): void {
    t.attempt++;
    const launched = (before ? before() : Promise.resolve()).then(() => {
      // Removed, or stood down, before the call went out: it does not.
      t.abort.signal.throwIfAborted();
      return this.#provisioner.launch(t.name, this.#options.task, t.abort.signal);
    });
    this.#followLaunch(t, w, launched);
  }

  /** What a launch's end does to its worker: up → starting; failed → torn down, retried or replaced. */
  #followLaunch(t: Tracked, w: Worker, launched: Promise<Endpoint>): void {
    t.launchSettled = launched.then(
      () => undefined,
      () => undefined,
    );
    launched.then(
      (ep) => this.#onLaunched(t, w, ep.url, ep.detail),
      (err: unknown) => this.#onLaunchFailed(t, w, err),
    );
  }

  /** base × 2^(n−1), capped, scaled by the jitter factor. */
  #backoff(n: number): number {
    const base = this.#options.retryDelayMs ?? 5000;
    const delay = Math.min(base * 2 ** (n - 1), this.#options.maxRetryDelayMs ?? 300_000);
    const r = this.#options.random;
    return Math.round(r ? delay * (0.8 + 0.4 * r()) : delay);
  }

  /** Whether `t` is still this fleet's own, unchanged worker `w` (not removed, nor forgotten by standDown). */
  #owns(t: Tracked, w: Worker): boolean {
    return !t.cancelled && !t.done && this.#pool.get(t.name) === w && this.#tracked.get(t.name) === t;
  }

  #onLaunched(t: Tracked, w: Worker, url: string, detail: Readonly<Record<string, string>> | undefined): void {
    if (!this.#owns(t, w)) return; // removed meanwhile (its teardown runs), or stood down
    void this.#clearLaunch(t.name);
    w.url = url;
    w.detail = { ...detail };
    this.#pool.setState(t.name, 'starting', 'launched');
    this.#log('info', `fleet: ${t.name} is up at ${url}; waiting for readiness`, { worker: t.name, url });
    this.#health.watch(w);
  }

  #onLaunchFailed(t: Tracked, w: Worker, err: unknown): void {
    if (!this.#owns(t, w)) return; // expected: we aborted it
    if (!t.inherited) this.#launchStats.launchFailures++;
    const retries = this.#options.maxLaunchRetries ?? 0;
    if (t.attempt <= retries && !this.#closing && !t.inherited) {
      this.#retryLaunch(t, w, errorMessage(err));
      return;
    }
    const givenUp = retries > 0 || t.inherited;
    if (givenUp && !t.inherited) {
      this.#launchStats.launchGiveUps++;
      this.#log('error', `fleet: giving up on ${t.name} after ${t.attempt} failed launch attempts`, {
        worker: t.name,
        attempts: t.attempt,
      });
    }
    // A launch of the previous leader's that did not come up says nothing of this leader's launches.
    if (!t.inherited) this.#failuresInARow++;
    const delay = t.inherited ? 0 : this.#backoff(this.#failuresInARow);
    if (!t.inherited) this.#retryAt = this.#clock.now() + delay;
    const message = errorMessage(err);
    this.#log('warn', `fleet: launch of ${t.name} failed: ${message}; next launch in ${delay} ms`, {
      worker: t.name,
      error: message,
      retryInMs: delay,
    });
    this.#pool.setState(t.name, 'failed', `launch failed: ${message}`);
    // The provisioner may have made part of a worker (a half-up cluster): tear it down.
    // A worker given up on stays listed as `failed` (its name is not reused) once its cluster is gone.
    this.#stopLaunchAndProbes(t);
    t.done = this.#terminator.teardown(
      t.name,
      this.#departure(
        t,
        t.inherited
          ? 'the previous leader’s launch did not come up; cluster torn down'
          : givenUp
            ? `given up after ${t.attempt} failed launches; cluster torn down`
            : undefined,
      ),
    );
    this.#reconcile();
  }

  /**
   * Tears down what the failed attempt left, waits the backoff, and launches the same
   * name again; the worker stays `provisioning` meanwhile (a scale-down may still cancel it).
   */
  #retryLaunch(t: Tracked, w: Worker, message: string): void {
    const delay = this.#backoff(t.attempt);
    const retries = this.#options.maxLaunchRetries ?? 0;
    this.#log(
      'warn',
      `fleet: launch of ${t.name} failed (attempt ${t.attempt} of ${retries + 1}): ${message}; tearing it down and retrying in ${delay} ms`,
      { worker: t.name, attempt: t.attempt, error: message, retryInMs: delay },
    );
    w.detail = { ...w.detail, attempt: String(t.attempt), last_error: message };
    const still = (): boolean => this.#owns(t, w) && !this.#closing;
    t.launchSettled = (async () => {
      const gone = await this.#terminator.terminate(t.name);
      if (!still()) return;
      if (!gone) {
        // The partial cluster would not go away: relaunching under its name could reuse a broken
        // cluster. It is torn down again each minute, and at shutdown, as a cluster adoption
        // could not tear down (its name is not reused meanwhile), and the next launch (a new
        // name) waits the fleet's backoff, as after any launch given up on: a provisioner whose
        // launches and teardowns both fail is not asked for a new cluster every few seconds.
        this.#failuresInARow++;
        this.#retryAt = this.#clock.now() + this.#backoff(this.#failuresInARow);
        this.#pool.setState(t.name, 'failed', `launch failed and its teardown failed: ${message}`);
        this.#tracked.delete(t.name);
        this.#tearDownOrphan(t.name, true);
        this.#reconcile();
        return;
      }
      // A scale-down during the wait aborts it, so the teardown waiting on this does not sit out the delay.
      await new Promise<void>((resolve) => {
        const timer = this.#clock.setTimer(delay, resolve);
        t.abort.signal.addEventListener('abort', () => (timer.cancel(), resolve()), { once: true });
      });
      if (still()) this.#runLaunch(t, w);
    })();
  }

  // ---- scaling -----------------------------------------------------------------------

  #reconcile(): void {
    if (this.#closing) return;
    const live = this.live();
    if (live.length > this.#target) {
      for (const w of this.#pickVictims(live.length - this.#target)) {
        const t = this.#tracked.get(w.name)!;
        void this.#retire(t, w, true, 'scale-down');
      }
      return;
    }
    let missing = this.#target - live.length;
    if (missing <= 0) return;
    const now = this.#clock.now();
    if (now < this.#retryAt) {
      this.#retryTimer ??= this.#clock.setTimer(this.#retryAt - now, () => {
        this.#retryTimer = undefined;
        this.#reconcile();
      });
      return;
    }
    while (missing-- > 0) this.#startLaunch(this.#nextName());
  }

  /**
   * Who goes first on scale-down: not_ready, then provisioning, then starting (newest
   * first: the least sunk cost), then ready with the fewest requests in flight (from every
   * gateway replica).
   */
  #pickVictims(n: number): Worker[] {
    const rank: Partial<Record<WorkerState, number>> = { not_ready: 0, provisioning: 1, starting: 2, ready: 3 };
    // Reversed first so that, all else equal, the later-added worker goes (the sort is stable).
    return this.live()
      .reverse()
      .sort((a, b) => (rank[a.state] ?? 9) - (rank[b.state] ?? 9) || load(a) - load(b) || b.createdAt - a.createdAt)
      .slice(0, n);
  }

  #nextName(): string {
    for (let n = 1; ; n++) {
      const name = `${this.#options.namePrefix}-${n}`;
      if (!this.#pool.get(name) && !this.#tracked.has(name) && !this.#orphanTeardowns.has(name)) return name;
    }
  }

  // ---- leaving -----------------------------------------------------------------------

  /** The health checker's verdict: the worker goes (drained, or torn down if lost) and reconcile replaces it. */
  #replace(w: Worker): void {
    const t = this.#tracked.get(w.name);
    if (t) void this.#retire(t, w, true, `${w.state} too long, replacing`);
    this.#reconcile();
  }

  /**
   * Hands the worker to the Terminator (once): drained, or cancelled if still provisioning, then
   * torn down if `terminate`; `reason` says why (the state change and the log carry it).
   */
  #retire(t: Tracked, w: Worker, terminate: boolean, reason: string, mayBeGone = false): Promise<void> {
    if (t.done) return t.done;
    this.#stopLaunchAndProbes(t);
    // Not up yet: the launch is aborted above, and its rejection is expected.
    if (w.state === 'provisioning') t.cancelled = true;
    t.done = this.#terminator.drain(w, terminate, { ...this.#departure(t), mayBeGone }, reason);
    return t.done;
  }

  #stopLaunchAndProbes(t: Tracked): void {
    this.#health.unwatch(t.name);
    if (!t.abort.signal.aborted) t.abort.abort(new Error('worker leaving'));
  }

  /** What the Terminator needs of a tracked worker, and what the fleet does once it has left. */
  #departure(t: Tracked, keepFailed?: string): Departure {
    return {
      launchSettled: () => t.launchSettled,
      keepFailed,
      settled: (outcome) => {
        if (this.#tracked.get(t.name) !== t) return; // stood down meanwhile: not this fleet's any more
        if (outcome === 'unterminated') {
          t.done = undefined; // drain(name), remove(name) or shutdown() tries again
        } else {
          this.#tracked.delete(t.name);
          void this.#clearLaunch(t.name);
          if (outcome === 'kept') return;
          if (keepFailed !== undefined && this.#pool.get(t.name)) this.#keepFailedRecord(t.name);
        }
        this.#reconcile();
      },
    };
  }

  /** Keeps the last few given-up workers listed as `failed` (status shows them); older ones go. */
  #keepFailedRecord(name: string): void {
    this.#failedRecords.push(name);
    while (this.#failedRecords.length > FAILED_RECORDS_KEPT) {
      const old = this.#failedRecords.shift()!;
      if (this.#pool.get(old)?.state === 'failed' && !this.#tracked.has(old)) {
        this.#pool.setState(old, 'gone', 'dropped from the failed list');
      }
    }
  }

  /** The launch of `name` has ended (its worker is up, or gone): its record goes. A failure leaves it for the next leader. */
  async #clearLaunch(name: string): Promise<void> {
    this.#clearedWhileAdopting?.add(name);
    try {
      await this.#options.launches?.clear(name);
    } catch (err) {
      this.#log('warn', `fleet: could not clear the launch record of ${name}: ${errorMessage(err)}`, { worker: name });
    }
  }

  #track(name: string): Tracked {
    const t: Tracked = {
      name,
      abort: new AbortController(),
      launchSettled: Promise.resolve(),
      done: undefined,
      cancelled: false,
      attempt: 0,
      inherited: false,
      wake: undefined,
    };
    this.#tracked.set(name, t);
    return t;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
