import type { Clock, TimerHandle } from './clock.js';
import type { Worker, WorkerPool } from './pool.js';
import type { Prober, Provisioner, TaskSpec, WorkerState } from './types.js';

export type FleetLogLevel = 'debug' | 'info' | 'warn' | 'error';
export type FleetLog = (level: FleetLogLevel, msg: string, fields?: Record<string, unknown>) => void;

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
}

/** How many given-up workers stay listed as `failed` (their names are not reused meanwhile). */
const FAILED_RECORDS_KEPT = 10;

/** The states that count toward the target (workers still provisioning count too). */
const LIVE: readonly WorkerState[] = ['provisioning', 'starting', 'ready', 'not_ready'];
const PROBED: readonly WorkerState[] = ['starting', 'ready', 'not_ready'];

/** The fleet's bookkeeping for one worker it owns. */
interface Tracked {
  readonly name: string;
  /** Aborts the launch while provisioning, and any probe in flight afterwards. */
  readonly abort: AbortController;
  /** Settles (never rejects) once provisioner.launch has settled. */
  launchSettled: Promise<void>;
  /** Set once the worker is asked to go: resolves when it is gone (or given up on). */
  done: Promise<void> | undefined;
  /** True when it was removed on purpose while provisioning: the launch's rejection is expected. */
  cancelled: boolean;
  /** Launch attempts under this name so far (retries after failures count). */
  attempt: number;
  probing: boolean;
  probeTimer: TimerHandle | undefined;
  drainTimers: TimerHandle[];
  drainDeadline: number;
  /** Set while draining: finishes the drain (and starts the teardown). */
  drainFinish: (() => void) | undefined;
}

/**
 * Keeps a number of workers running: launches them through a Provisioner, probes them
 * until ready, replaces the unhealthy, drains and terminates the surplus. Pure: time
 * comes from the Clock, I/O only through the Provisioner and Prober interfaces, and
 * every state change goes through the WorkerPool.
 *
 * Public `launch()` / `remove()` move the target by one (manual add/remove); the
 * autoscaler sets it with `scaleTo(n)`.
 */
export class Fleet {
  readonly #o: FleetOptions;
  readonly #pool: WorkerPool;
  readonly #clock: Clock;
  readonly #log: FleetLog;
  readonly #tracked = new Map<string, Tracked>();
  /** Teardowns of clusters that never joined the pool (adoption). */
  readonly #orphanTeardowns = new Map<string, Promise<void>>();
  readonly #stats: FleetStats = emptyFleetStats();
  /** Workers given up on after their launch retries, oldest first, kept as `failed` records. */
  readonly #failedRecords: string[] = [];
  /** Clusters whose teardown was given up on: reported until a later terminate succeeds. */
  readonly #unterminated = new Set<string>();
  #target = 0;
  #failuresInARow = 0;
  /** No launches before this time (backoff after failures). */
  #retryAt = -Infinity;
  #retryTimer: TimerHandle | undefined;
  #closing = false;

  constructor(opts: FleetOptions) {
    if (opts.capacity < 1) throw new Error('fleet: capacity must be ≥ 1');
    if (opts.probeIntervalMs <= 0) throw new Error('fleet: probeIntervalMs must be > 0');
    this.#o = opts;
    this.#pool = opts.pool;
    this.#clock = opts.clock;
    this.#log = opts.log ?? (() => {});
  }

  get target(): number {
    return this.#target;
  }

  get stats(): Readonly<FleetStats> {
    return { ...this.#stats };
  }

  /** Clusters that would not go away after terminateAttempts tries: they may still be running. */
  unterminated(): string[] {
    return [...this.#unterminated].sort();
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
   * (reconcile will launch a replacement if the fleet is now short). `reason` is what the
   * state change and the log say happened.
   */
  drain(name: string, reason = 'drained'): Promise<void> {
    const t = this.#tracked.get(name);
    const w = this.#pool.get(name);
    if (!t || !w) return Promise.reject(new Error(`fleet: unknown worker ${name}`));
    return this.#drain(t, w, true, reason);
  }

  /** Call when a request on some worker finished: a draining worker may now be empty. */
  notifyRelease(): void {
    for (const t of this.#tracked.values()) this.#checkDrain(t);
  }

  /**
   * The worker's cluster/process is gone on its own (preemption, crash): tear down what
   * is left and launch a replacement.
   */
  lost(name: string, reason: string): void {
    const t = this.#tracked.get(name);
    const w = this.#pool.get(name);
    if (!t || !w || t.done) return;
    this.#log('warn', `fleet: worker ${name} lost: ${reason}`, { worker: name, reason });
    this.#stats.replaced++;
    this.#stopProbing(t);
    if (w.state !== 'failed') this.#pool.setState(name, 'failed', `lost: ${reason}`);
    t.done = this.#teardown(t);
    this.#reconcile();
  }

  /**
   * At start-up: UP clusters named `<prefix>-<n>` that have an endpoint join the pool as
   * `starting` (and are probed); other `<prefix>-<n>` clusters are torn down so that a
   * crash never leaks a worker. The target rises to at least the number of live workers.
   */
  async adopt(opts: { reinit?: boolean } = {}): Promise<AdoptResult> {
    const clusters = await this.#o.provisioner.list(this.#o.namePrefix);
    const result: AdoptResult = { adopted: [], terminated: [], ignored: [], reinitialized: [] };
    const ours = new RegExp(`^${escapeRegExp(this.#o.namePrefix)}-\\d+$`);
    for (const c of clusters) {
      if (!ours.test(c.name)) {
        result.ignored.push(c.name);
        continue;
      }
      if (this.#pool.get(c.name) || this.#tracked.has(c.name) || this.#orphanTeardowns.has(c.name)) continue;
      if (c.status === 'UP' && c.endpoint && !this.#closing && opts.reinit) {
        // --reinit: stop the old jobs, then launch the task on the same cluster.
        const cancel = this.#o.provisioner.cancelJobs?.bind(this.#o.provisioner);
        this.#startLaunch(c.name, cancel ? () => cancel(c.name) : undefined);
        result.reinitialized.push(c.name);
      } else if (c.status === 'UP' && c.endpoint && !this.#closing) {
        const t = this.#track(c.name);
        this.#pool.add(c.name, this.#o.capacity, 'provisioning');
        const w = this.#pool.get(c.name)!;
        w.url = c.endpoint.url;
        w.detail = { ...c.endpoint.detail };
        this.#pool.setState(c.name, 'starting', 'adopted');
        result.adopted.push(c.name);
        this.#startProbing(t);
      } else {
        result.terminated.push(c.name);
        this.#log('info', `fleet: tearing down ${c.name} (${c.status}${c.endpoint ? '' : ', no endpoint'})`);
        const p = this.#terminateWithRetries(c.name).then(() => {
          this.#orphanTeardowns.delete(c.name);
        });
        this.#orphanTeardowns.set(c.name, p);
      }
    }
    if (result.adopted.length + result.terminated.length + result.reinitialized.length > 0) {
      this.#log(
        'info',
        `fleet: adopted ${result.adopted.length}, reinitialising ${result.reinitialized.length}, tearing down ${result.terminated.length}`,
        { adopted: result.adopted, reinitialized: result.reinitialized, terminated: result.terminated },
      );
    }
    // Keep what was adopted: the target rises to cover it, and the autoscaler's next
    // scaleTo drains any surplus the usual way.
    this.#target = Math.max(this.#target, this.live().length);
    return result;
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
    const waits: Promise<void>[] = [...this.#orphanTeardowns.values()];
    for (const t of [...this.#tracked.values()]) {
      const w = this.#pool.get(t.name);
      if (!w) continue;
      const keep = opts.keepWorkers === true && w.state !== 'provisioning' && w.state !== 'failed';
      waits.push(this.#drain(t, w, !keep, keep ? 'shutdown (keeping workers)' : 'shutdown'));
    }
    await Promise.all(waits);
  }

  // ---- launching -------------------------------------------------------------------

  /** Tracks a new worker and launches it; `before` runs first (reinit: cancel the old jobs). */
  #startLaunch(name: string, before?: () => Promise<void>): Worker {
    const t = this.#track(name);
    const w = this.#pool.add(name, this.#o.capacity, 'provisioning');
    this.#stats.launched++;
    this.#log('info', `fleet: launching ${name}`, { worker: name });
    this.#runLaunch(t, w, before);
    return w;
  }

  /** One launch attempt of an already tracked, provisioning worker. */
  #runLaunch(t: Tracked, w: Worker, before?: () => Promise<void>): void {
    t.attempt++;
    const launched = (before ? before() : Promise.resolve()).then(() =>
      this.#o.provisioner.launch(t.name, this.#o.task, t.abort.signal),
    );
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
    const base = this.#o.retryDelayMs ?? 5000;
    const delay = Math.min(base * 2 ** (n - 1), this.#o.maxRetryDelayMs ?? 300_000);
    const r = this.#o.random;
    return Math.round(r ? delay * (0.8 + 0.4 * r()) : delay);
  }

  #onLaunched(t: Tracked, w: Worker, url: string, detail: Readonly<Record<string, string>> | undefined): void {
    if (t.cancelled || t.done || this.#pool.get(t.name) !== w) return; // removed meanwhile; teardown runs
    w.url = url;
    w.detail = { ...detail };
    this.#pool.setState(t.name, 'starting', 'launched');
    this.#log('info', `fleet: ${t.name} is up at ${url}; waiting for readiness`, { worker: t.name, url });
    this.#startProbing(t);
  }

  #onLaunchFailed(t: Tracked, w: Worker, err: unknown): void {
    if (t.cancelled || t.done || this.#pool.get(t.name) !== w) return; // expected: we aborted it
    this.#stats.launchFailures++;
    const retries = this.#o.maxLaunchRetries ?? 0;
    if (t.attempt <= retries && !this.#closing) {
      this.#retryLaunch(t, w, errorMessage(err));
      return;
    }
    const givenUp = retries > 0;
    if (givenUp) {
      this.#stats.launchGiveUps++;
      this.#log('error', `fleet: giving up on ${t.name} after ${t.attempt} failed launch attempts`, {
        worker: t.name,
        attempts: t.attempt,
      });
    }
    this.#failuresInARow++;
    const delay = this.#backoff(this.#failuresInARow);
    this.#retryAt = this.#clock.now() + delay;
    const message = errorMessage(err);
    this.#log('warn', `fleet: launch of ${t.name} failed: ${message}; next launch in ${delay} ms`, {
      worker: t.name,
      error: message,
      retryInMs: delay,
    });
    this.#pool.setState(t.name, 'failed', `launch failed: ${message}`);
    // The provisioner may have made part of a worker (a half-up cluster): tear it down.
    // A worker given up on stays listed as `failed` (its name is not reused) once its cluster is gone.
    t.done = this.#teardown(t, givenUp);
    this.#reconcile();
  }

  /**
   * Tears down what the failed attempt left, waits the backoff, and launches the same
   * name again; the worker stays `provisioning` meanwhile (a scale-down may still cancel it).
   */
  #retryLaunch(t: Tracked, w: Worker, message: string): void {
    const delay = this.#backoff(t.attempt);
    const retries = this.#o.maxLaunchRetries ?? 0;
    this.#log(
      'warn',
      `fleet: launch of ${t.name} failed (attempt ${t.attempt} of ${retries + 1}): ${message}; tearing it down and retrying in ${delay} ms`,
      { worker: t.name, attempt: t.attempt, error: message, retryInMs: delay },
    );
    w.detail = { ...w.detail, attempt: String(t.attempt), last_error: message };
    const still = (): boolean => !t.cancelled && !t.done && !this.#closing && this.#pool.get(t.name) === w;
    t.launchSettled = (async () => {
      const gone = await this.#terminateWithRetries(t.name);
      if (!still()) return;
      if (!gone) {
        // The partial cluster would not go away: relaunching under its name could reuse a broken cluster.
        this.#pool.setState(t.name, 'failed', `launch failed and its teardown failed: ${message}`);
        this.#tracked.delete(t.name);
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

  // ---- probing -----------------------------------------------------------------------

  #startProbing(t: Tracked): void {
    this.#tick(t);
  }

  #stopProbing(t: Tracked): void {
    t.probeTimer?.cancel();
    t.probeTimer = undefined;
    if (!t.abort.signal.aborted) t.abort.abort(new Error('worker leaving'));
  }

  /** Every probe interval: replace if unhealthy too long, else probe (unless one is still out). */
  #tick(t: Tracked): void {
    t.probeTimer = undefined;
    const w = this.#pool.get(t.name);
    if (!w || t.done || this.#closing || !PROBED.includes(w.state)) return;
    const stuck = w.state === 'starting' || w.state === 'not_ready';
    if (stuck && this.#clock.now() - w.stateSince >= this.#o.unhealthyTimeoutMs) {
      this.#replace(t, w);
      return;
    }
    t.probeTimer = this.#clock.setTimer(this.#o.probeIntervalMs, () => this.#tick(t));
    if (!t.probing) void this.#probe(t, w);
  }

  async #probe(t: Tracked, w: Worker): Promise<void> {
    t.probing = true;
    let ok: boolean;
    try {
      ok = await this.#o.prober.probe(w.url ?? '', t.abort.signal);
    } catch {
      ok = false;
    } finally {
      t.probing = false;
    }
    if (t.done || this.#closing || this.#pool.get(t.name) !== w || !PROBED.includes(w.state)) return;
    w.lastProbeAt = this.#clock.now();
    if (ok && w.state !== 'ready') {
      this.#pool.setState(t.name, 'ready', 'readiness probe passed');
      this.#failuresInARow = 0;
      this.#log('info', `fleet: ${t.name} is ready`, { worker: t.name });
      try {
        this.#o.onReady?.(w);
      } catch (err) {
        this.#log('error', `fleet: onReady threw: ${errorMessage(err)}`);
      }
    } else if (!ok && w.state === 'ready') {
      this.#pool.setState(t.name, 'not_ready', 'readiness probe failed');
      this.#log('warn', `fleet: ${t.name} failed its readiness probe`, { worker: t.name });
    }
    try {
      this.#o.onProbe?.(w, ok);
    } catch (err) {
      this.#log('error', `fleet: onProbe threw: ${errorMessage(err)}`);
    }
  }

  #replace(t: Tracked, w: Worker): void {
    const since = this.#clock.now() - w.stateSince;
    this.#log(
      'warn',
      `fleet: ${t.name} ${w.state} for ${since} ms (limit ${this.#o.unhealthyTimeoutMs}); replacing it`,
      {
        worker: t.name,
        state: w.state,
      },
    );
    this.#stats.replaced++;
    void this.#drain(t, w, true, `${w.state} too long, replacing`);
    this.#reconcile();
  }

  // ---- scaling -----------------------------------------------------------------------

  #reconcile(): void {
    if (this.#closing) return;
    const live = this.live();
    if (live.length > this.#target) {
      for (const w of this.#pickVictims(live.length - this.#target)) {
        const t = this.#tracked.get(w.name)!;
        void this.#drain(t, w, true, 'scale-down');
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
   * first: the least sunk cost), then ready with the fewest requests in flight.
   */
  #pickVictims(n: number): Worker[] {
    const rank: Partial<Record<WorkerState, number>> = { not_ready: 0, provisioning: 1, starting: 2, ready: 3 };
    // Reversed first so that, all else equal, the later-added worker goes (the sort is stable).
    return this.live()
      .reverse()
      .sort(
        (a, b) => (rank[a.state] ?? 9) - (rank[b.state] ?? 9) || a.inFlight - b.inFlight || b.createdAt - a.createdAt,
      )
      .slice(0, n);
  }

  #nextName(): string {
    for (let n = 1; ; n++) {
      const name = `${this.#o.namePrefix}-${n}`;
      if (!this.#pool.get(name) && !this.#tracked.has(name) && !this.#orphanTeardowns.has(name)) return name;
    }
  }

  // ---- draining and teardown ---------------------------------------------------------

  /** Drains (or cancels, if still provisioning) and then, if `terminate`, tears down; `reason` says why. */
  #drain(t: Tracked, w: Worker, terminate: boolean, reason: string): Promise<void> {
    if (t.done) return t.done;
    this.#stopProbing(t);
    if (w.state === 'provisioning') {
      // Not up yet: abort the launch, then terminate whatever it made.
      t.cancelled = true;
      this.#pool.setState(t.name, 'terminating', 'cancelled while provisioning');
      t.done = this.#teardown(t);
      return t.done;
    }
    if (w.state === 'failed' || w.state === 'terminating') {
      t.done = this.#teardown(t);
      return t.done;
    }
    this.#pool.setState(t.name, 'draining', reason);
    this.#log('info', `fleet: draining ${t.name} (${reason}; ${w.inFlight} in flight)`, {
      worker: t.name,
      inFlight: w.inFlight,
      reason,
    });
    t.drainDeadline = this.#clock.now() + this.#o.drainTimeoutMs;
    t.done = new Promise<void>((resolve) => {
      t.drainFinish = () => {
        for (const timer of t.drainTimers) timer.cancel();
        t.drainTimers = [];
        t.drainFinish = undefined;
        if (w.inFlight > 0) {
          this.#log('warn', `fleet: ${t.name} still had ${w.inFlight} in flight after the drain timeout`, {
            worker: t.name,
          });
        }
        if (terminate) resolve(this.#teardown(t));
        else {
          this.#tracked.delete(t.name);
          resolve();
        }
      };
    });
    // Checked on release notifications, on a poll (in case nobody notifies), and at the deadline.
    const poll = (): void => {
      if (!this.#checkDrain(t)) t.drainTimers.push(this.#clock.setTimer(this.#o.probeIntervalMs, poll));
    };
    t.drainTimers.push(this.#clock.setTimer(this.#o.drainTimeoutMs, () => this.#checkDrain(t)));
    poll();
    return t.done;
  }

  /** Ends the drain once nothing is in flight or the drain timeout has passed; true when it is over. */
  #checkDrain(t: Tracked): boolean {
    const finish = t.drainFinish;
    if (!finish) return true;
    const w = this.#pool.get(t.name);
    if (w && w.inFlight > 0 && this.#clock.now() < t.drainDeadline) return false;
    finish();
    return true;
  }

  /** terminating → provisioner.terminate → gone, retrying; never rejects. */
  async #teardown(t: Tracked, keepRecord = false): Promise<void> {
    this.#stopProbing(t);
    await t.launchSettled;
    const gone = await this.#terminateWithRetries(t.name, () => {
      const w = this.#pool.get(t.name);
      if (w && w.state !== 'terminating') this.#pool.setState(t.name, 'terminating', 'terminate');
    });
    const w = this.#pool.get(t.name);
    if (gone && keepRecord && w) {
      this.#pool.setState(t.name, 'failed', `given up after ${t.attempt} failed launches; cluster torn down`);
      this.#tracked.delete(t.name);
      this.#keepFailedRecord(t.name);
    } else if (gone) {
      if (w) this.#pool.setState(t.name, 'gone', 'terminated');
      this.#tracked.delete(t.name);
    } else {
      if (w && w.state !== 'failed') this.#pool.setState(t.name, 'failed', 'terminate failed');
      t.done = undefined; // drain(name), remove(name) or shutdown() tries again
    }
    this.#reconcile();
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

  /** Calls provisioner.terminate up to terminateAttempts times; true once it succeeded. */
  async #terminateWithRetries(name: string, beforeAttempt?: () => void): Promise<boolean> {
    const attempts = this.#o.terminateAttempts ?? 3;
    for (let i = 1; ; i++) {
      beforeAttempt?.();
      try {
        await this.#o.provisioner.terminate(name);
        this.#stats.terminated++;
        this.#unterminated.delete(name);
        this.#log('info', `fleet: ${name} terminated`, { worker: name });
        return true;
      } catch (err) {
        this.#stats.terminateFailures++;
        const w = this.#pool.get(name);
        if (w && w.state === 'terminating')
          this.#pool.setState(name, 'failed', `terminate failed: ${errorMessage(err)}`);
        if (i >= attempts) {
          this.#stats.teardownGiveUps++;
          this.#unterminated.add(name);
          this.#log(
            'error',
            `fleet: could not terminate ${name} after ${i} attempts; it may still be running (and billing): tear it down by hand`,
            { worker: name, error: errorMessage(err) },
          );
          return false;
        }
        const delay = (this.#o.retryDelayMs ?? 5000) * i;
        this.#log('warn', `fleet: terminate of ${name} failed (${errorMessage(err)}); retrying in ${delay} ms`);
        await new Promise<void>((resolve) => this.#clock.setTimer(delay, resolve));
      }
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
      probing: false,
      probeTimer: undefined,
      drainTimers: [],
      drainDeadline: Infinity,
      drainFinish: undefined,
    };
    this.#tracked.set(name, t);
    return t;
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
