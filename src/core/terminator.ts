import type { Clock, TimerHandle } from './clock.js';
import { errorMessage } from './errors.js';
import { isFencedError } from './coordination.js';
import { load, type WorkerPool } from './pool.js';
import type { ProvisionerGate } from './provisioner-gate.js';
import type { FleetLog, Worker } from './types.js';

export interface TerminatorOptions {
  readonly pool: WorkerPool;
  readonly clock: Clock;
  readonly provisioner: ProvisionerGate;
  /** How long a draining worker's in-flight requests get before it is terminated (option drain_timeout). */
  readonly drainTimeoutMs: number;
  /** How often a draining worker is looked at, in case no release is notified. */
  readonly drainPollMs: number;
  /** A failed terminate is tried again after retryDelayMs × attempts so far (5 s → 5, 10, 15 ... s). */
  readonly retryDelayMs?: number;
  /** Attempts at provisioner.terminate before a worker is left `failed` (and logged as possibly leaked). */
  readonly terminateAttempts?: number;
  readonly log?: FleetLog;
}

/**
 * How a departure ended: `terminated` (the cluster is gone), `kept` (drained and left
 * running) or `unterminated` (teardown given up on; the worker is `failed`, a later
 * departure may try again).
 */
export type DepartureOutcome = 'terminated' | 'kept' | 'unterminated';

/** What the owner of a departing worker tells the Terminator, and is told back. */
export interface Departure {
  /** Settles once the worker's launch has settled: the teardown waits for it, so it never races the launch. */
  readonly launchSettled: () => Promise<void>;
  /** Once the cluster is gone, leave the worker listed `failed` for this reason instead of removing it. */
  readonly keepFailed?: string;
  /**
   * Another replica began this teardown and may have finished it: the provisioner's list is read
   * first, and a cluster no longer listed is not torn down again.
   */
  readonly mayBeGone?: boolean;
  /** Runs right after the last state change of the departure. */
  readonly settled: (outcome: DepartureOutcome) => void;
}

export interface TerminatorStats {
  terminated: number;
  terminateFailures: number;
  /** Teardowns given up on after terminateAttempts: clusters that may still be running (and billing). */
  teardownGiveUps: number;
}

/** A drain in progress. */
interface Drain {
  readonly deadline: number;
  readonly timers: TimerHandle[];
  /** Ends the drain (and starts the teardown). */
  readonly finish: () => void;
}

/**
 * Termination: drains a worker (no new requests; those in flight get the drain timeout),
 * then tears it down through the provisioner, retrying a failed terminate and giving up
 * after terminateAttempts, and keeps the list of clusters it gave up on. Pure: time from
 * the Clock, I/O only through the ProvisionerGate, state changes through the WorkerPool.
 */
export class Terminator {
  readonly #options: TerminatorOptions;
  readonly #pool: WorkerPool;
  readonly #clock: Clock;
  readonly #log: FleetLog;
  readonly #drains = new Map<string, Drain>();
  readonly #stats: TerminatorStats = { terminated: 0, terminateFailures: 0, teardownGiveUps: 0 };
  /** Clusters whose teardown was given up on: reported until a later terminate succeeds. */
  readonly #unterminated = new Set<string>();
  /** Bumped by standDown: a teardown begun before it makes no further call. */
  #epoch = 0;

  constructor(opts: TerminatorOptions) {
    this.#options = opts;
    this.#pool = opts.pool;
    this.#clock = opts.clock;
    this.#log = opts.log ?? (() => {});
  }

  get stats(): Readonly<TerminatorStats> {
    return { ...this.#stats };
  }

  /** Clusters that would not go away after terminateAttempts tries: they may still be running. */
  unterminated(): string[] {
    return [...this.#unterminated].sort();
  }

  /**
   * Takes `w` out of service whatever its state: a provisioning worker is cancelled
   * (terminating at once), a failed or terminating one is torn down, any other drains first.
   * Without `terminate`, a drained worker is left running (`kept`). `reason` is what the state
   * change and the log say happened (scale-down, removed, drained, shutdown...). Resolves when it
   * is over; never rejects.
   */
  drain(w: Worker, terminate: boolean, d: Departure, reason: string): Promise<void> {
    const name = w.name;
    if (w.state === 'provisioning') {
      // Not up yet: the owner aborted the launch; terminate whatever it made.
      this.#pool.setState(name, 'terminating', 'cancelled while provisioning');
      return this.teardown(name, d);
    }
    if (w.state === 'failed' || w.state === 'terminating') return this.teardown(name, d);
    this.#pool.setState(name, 'draining', reason);
    this.#log('info', `fleet: draining ${name} (${reason}; ${load(w)} in flight)`, {
      worker: name,
      inFlight: load(w),
      reason,
    });
    const timers: TimerHandle[] = [];
    const done = new Promise<void>((resolve) => {
      const finish = (): void => {
        for (const timer of timers) timer.cancel();
        this.#drains.delete(name);
        if (load(w) > 0) {
          this.#log('warn', `fleet: ${name} still had ${load(w)} in flight after the drain timeout`, {
            worker: name,
          });
        }
        if (terminate) resolve(this.teardown(name, d));
        else {
          d.settled('kept');
          resolve();
        }
      };
      this.#drains.set(name, { deadline: this.#clock.now() + this.#options.drainTimeoutMs, timers, finish });
    });
    // Checked on release notifications, on a poll (in case nobody notifies), and at the deadline.
    const poll = (): void => {
      if (!this.#checkDrain(name)) timers.push(this.#clock.setTimer(this.#options.drainPollMs, poll));
    };
    timers.push(this.#clock.setTimer(this.#options.drainTimeoutMs, () => this.#checkDrain(name)));
    poll();
    return done;
  }

  /**
   * Several gateway replicas, when this one stops leading: drains under way stop where they are
   * (the next leader finishes them); their departures never settle. Teardowns already under
   * way find their provisioner calls fenced and stop.
   */
  standDown(): void {
    for (const drain of this.#drains.values()) for (const timer of drain.timers) timer.cancel();
    this.#drains.clear();
    this.#epoch++;
  }

  /** Call when a request on some worker finished: a draining worker may now be empty. */
  notifyRelease(): void {
    for (const name of [...this.#drains.keys()]) this.#checkDrain(name);
  }

  /** terminating → provisioner.terminate → gone (or `keepFailed`), retrying; never rejects. */
  async teardown(name: string, d: Departure): Promise<void> {
    const epoch = this.#epoch;
    await d.launchSettled();
    if (epoch !== this.#epoch) return; // stood down meanwhile: the next leader tears it down
    const gone = d.mayBeGone === true && (await this.#unlisted(name));
    const outcome = gone
      ? 'gone'
      : await this.#terminate(name, () => {
          const w = this.#pool.get(name);
          if (w && w.state !== 'terminating') this.#pool.setState(name, 'terminating', 'terminate');
        });
    // Fenced: this replica stopped leading; the worker is the next leader's, as it is.
    if (outcome === 'fenced') return;
    // Stood down while the call ran: the pool mirrors the next leader's fleet now, whose state
    // for the worker is its own to change; only the departure learns how the call ended.
    if (epoch !== this.#epoch) return d.settled(outcome === 'gone' ? 'terminated' : 'unterminated');
    const w = this.#pool.get(name);
    if (outcome === 'gone' && d.keepFailed !== undefined && w) {
      this.#pool.setState(name, 'failed', d.keepFailed);
      d.settled('terminated');
    } else if (outcome === 'gone') {
      if (w) this.#pool.setState(name, 'gone', 'terminated');
      d.settled('terminated');
    } else {
      if (w && w.state !== 'failed') this.#pool.setState(name, 'failed', 'terminate failed');
      d.settled('unterminated');
    }
  }

  /** Tears down a cluster that has no worker in the pool; true once it is gone. */
  async terminate(name: string): Promise<boolean> {
    return (await this.#terminate(name)) === 'gone';
  }

  /** Whether the provisioner no longer lists `name`; false when the list fails (the teardown then tries). */
  async #unlisted(name: string): Promise<boolean> {
    try {
      if ((await this.#options.provisioner.list(name)).some((c) => c.name === name)) return false;
    } catch {
      return false;
    }
    this.#log('info', `fleet: ${name} is already torn down`, { worker: name });
    return true;
  }

  /**
   * Ends the drain once nothing is in flight (from any gateway replica, as they last published
   * it) or the drain timeout has passed; true when it is over.
   */
  #checkDrain(name: string): boolean {
    const drain = this.#drains.get(name);
    if (!drain) return true;
    const w = this.#pool.get(name);
    if (w && load(w) > 0 && this.#clock.now() < drain.deadline) return false;
    drain.finish();
    return true;
  }

  /**
   * Calls provisioner.terminate up to terminateAttempts times: 'gone' once it succeeded,
   * 'failed' after the last attempt failed, 'fenced' when this replica may no longer act.
   */
  async #terminate(name: string, beforeAttempt?: () => void): Promise<'gone' | 'failed' | 'fenced'> {
    const attempts = this.#options.terminateAttempts ?? 3;
    for (let i = 1; ; i++) {
      try {
        // The fence is checked first, so a replica that no longer leads changes nothing here.
        await this.#options.provisioner.terminate(name, beforeAttempt);
        this.#stats.terminated++;
        this.#unterminated.delete(name);
        this.#log('info', `fleet: ${name} terminated`, { worker: name });
        return 'gone';
      } catch (err) {
        if (isFencedError(err)) {
          // This replica no longer leads: the cluster is the next leader's to tear down, not a leak.
          this.#log('warn', `fleet: not tearing down ${name}: ${err.why}; the leader does`, { worker: name });
          return 'fenced';
        }
        this.#stats.terminateFailures++;
        const w = this.#pool.get(name);
        if (w && w.state === 'terminating')
          this.#pool.setState(name, 'failed', `terminate failed: ${errorMessage(err)}`);
        if (i >= attempts) {
          // Given up on once per cluster: a later teardown of the same one (the fleet tries again)
          // that fails too is no new give-up, and says so at warn.
          const again = this.#unterminated.has(name);
          if (!again) this.#stats.teardownGiveUps++;
          this.#unterminated.add(name);
          this.#log(
            again ? 'warn' : 'error',
            again
              ? `fleet: ${name} is still not torn down (${errorMessage(err)})`
              : `fleet: could not terminate ${name} after ${i} attempts; it may still be running (and billing): tear it down by hand`,
            { worker: name, error: errorMessage(err) },
          );
          return 'failed';
        }
        const delay = (this.#options.retryDelayMs ?? 5000) * i;
        this.#log('warn', `fleet: terminate of ${name} failed (${errorMessage(err)}); retrying in ${delay} ms`);
        const epoch = this.#epoch;
        await new Promise<void>((resolve) => this.#clock.setTimer(delay, resolve));
        if (epoch !== this.#epoch) return 'fenced'; // stood down meanwhile: the next leader tears it down
      }
    }
  }
}
