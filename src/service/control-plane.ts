import type { Clock } from '../core/clock.js';
import { isFencedError, type Coordinator, type FleetCommand, type FleetCommandResult } from '../core/coordination.js';
import { ERRORS, GatewayError, isErrorCode, toGatewayError } from '../core/errors.js';
import type { SloStanding } from '../core/autoscaler/history-readings.js';
import type { Fleet } from '../core/fleet.js';
import { shareWorker, sharedWorkerView } from '../core/fleet-mirror.js';
import type { WorkerPool } from '../core/pool.js';
import type { CommandHandler } from '../core/replica.js';
import type { Worker } from '../core/types.js';
import type { EventHub, EventListener } from './events.js';
import { queueWaitSloStatus, type ControlPlane, type GatewayStatus, type ScaleBounds } from './status.js';
import { workerNameFor } from './workers.js';

/** The log lines node control writes (pino's Logger fits). */
export interface ControlPlaneLog {
  info(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

/**
 * The running gateway as node control reads and steers it (the assembled Gateway fits). The
 * `scale` object is the one the autoscaler's snapshot reads: bounds and the manual-add hold.
 */
export interface ControlledGateway {
  readonly pool: WorkerPool;
  readonly fleet: Fleet;
  readonly tracker: { mean(): number; current(): number };
  readonly admission: { readonly waiting: number; readonly heldAtCapacity: boolean };
  readonly service: { readonly totalRequests: number };
  readonly adapters: { loaded(): string[] };
  readonly autoscaler: { evaluateNow(): unknown };
  readonly provisioner: { readonly kind: string };
  /** Whether the p99 queue wait held queue_wait_slo over the load history. */
  sloStanding(): SloStanding;
  /** This gateway among the replicas that share the fleet: only the leader changes it. */
  readonly replica: {
    readonly leading: boolean;
    readonly coordinator: Pick<Coordinator, 'status' | 'submit' | 'fence'>;
    handleCommands(handler: CommandHandler): void;
    /** Resolves once this replica's takeover of the fleet (if one is under way) is over. */
    takenOver(): Promise<void>;
  };
}

/** The SLO's standing before the gateway runs: nothing seen. */
const NO_STANDING: SloStanding = { requests: 0, late: 0, budget: 0, verdict: 'unknown', windowMs: 0 };

/**
 * The autoscaler's bounds and the manual-add hold, read at every evaluation: one object shared
 * by the control plane (which changes the bounds at run time and sets the hold when an operator
 * adds a worker) and the assembly's autoscaler snapshot.
 */
export interface ScaleState {
  min: number;
  max: number;
  lastManualAddAt: number | undefined;
  /** Workers the autoscaler wants beyond max_workers, while max_workers holds it back (undefined otherwise). */
  wanted?: number | undefined;
}

export interface ControlPlaneOptions {
  readonly config: {
    readonly workerNamePrefix: string;
    readonly workerCapacity: number;
    readonly nodeControlKey?: string | undefined;
    readonly autoscaler: string;
    readonly loadBalancer: string;
    readonly provisioner: string;
    readonly queueWaitSlo: number;
  };
  readonly clock: Clock;
  readonly log: ControlPlaneLog;
  readonly events: EventHub;
  /** Shared with the assembly's autoscaler. */
  readonly scale: ScaleState;
}

/**
 * Node control (gRPC NodeControl, flockctl, the legacy /add_new_node routes) over the
 * assembled gateway. Before attach() and after shutdown() began, the commands that change
 * the fleet answer shutting_down; status and bounds work throughout.
 *
 * With several gateway replicas, only the leader changes the fleet: a command that reaches a
 * follower is passed to the leader (through the coordinator) and answered with the leader's
 * answer, errors included, so flockctl works against any replica.
 */
export class GatewayControlPlane implements ControlPlane {
  readonly #options: ControlPlaneOptions;
  readonly #startedAt: number;
  #gateway: ControlledGateway | undefined;
  #closing = false;

  constructor(options: ControlPlaneOptions) {
    this.#options = options;
    this.#startedAt = options.clock.now();
  }

  get nodeControlKey(): string | undefined {
    return this.#options.config.nodeControlKey;
  }

  /** The gateway is assembled: commands reach it from now on (on the leader, followers' too). */
  attach(gateway: ControlledGateway): void {
    this.#gateway = gateway;
    gateway.replica.handleCommands((cmd) => this.#runHere(cmd));
  }

  /** Shutdown began: commands that change the fleet answer shutting_down from now on. */
  shutdown(): void {
    this.#closing = true;
  }

  status(): GatewayStatus {
    const g = this.#gateway;
    const c = this.#options.config;
    const workers = g ? g.pool.list() : [];
    return {
      // An ejected worker is ready but takes no traffic: it does not count as ready here.
      readyWorkerCount: workers.filter((w) => w.state === 'ready' && !w.ejected).length,
      workerCount: workers.filter((w) => w.state !== 'gone').length,
      queueLengthRunningMean: g ? g.tracker.mean() : 0,
      currentQueueLength: g ? g.tracker.current() : 0,
      gatewayQueueLength: g ? g.admission.waiting : 0,
      workerCapacity: c.workerCapacity,
      heldAtWorkerCapacity: g ? g.admission.heldAtCapacity : false,
      uptimeSeconds: (this.#options.clock.now() - this.#startedAt) / 1000,
      totalRequests: g ? g.service.totalRequests : 0,
      workerNames: workers.map((w) => w.name),
      minWorkers: this.#options.scale.min,
      maxWorkers: this.#options.scale.max,
      autoscalerWantedWorkers: this.#options.scale.wanted,
      queueWaitSlo: queueWaitSloStatus(c.queueWaitSlo, g?.sloStanding() ?? NO_STANDING),
      autoscaler: c.autoscaler,
      loadBalancer: c.loadBalancer,
      provisioner: g?.provisioner.kind ?? c.provisioner,
      failedLaunches: g ? g.fleet.stats.launchGiveUps : 0,
      loraAdapters: g ? g.adapters.loaded() : [],
      unterminatedClusters: g ? g.fleet.unterminated() : [],
      coordination: g?.replica.coordinator.status(),
    };
  }

  workers(): Worker[] {
    return this.#gateway ? this.#gateway.pool.list() : [];
  }

  async addWorker(name?: string): Promise<Worker> {
    return this.#worker(await this.#command({ op: 'add', name }));
  }

  async removeWorker(name?: string): Promise<Worker> {
    return this.#worker(await this.#command({ op: 'remove', name }));
  }

  async drainWorker(name: string): Promise<Worker> {
    return this.#worker(await this.#command({ op: 'drain', name }));
  }

  /**
   * Changes [min_workers, max_workers] at runtime; an omitted bound keeps its value. The
   * autoscaler decides at once with the new bounds rather than at its next tick.
   */
  async setScaleBounds(min?: number, max?: number): Promise<ScaleBounds> {
    const g = this.#gateway;
    // Before the gateway runs, or on its way out, the bounds are this replica's own to set.
    if (!g || this.#closing || g.replica.leading) return this.#boundsHere(min, max);
    const r = await this.#command({ op: 'scale', min, max });
    return r.bounds ?? { minWorkers: this.#options.scale.min, maxWorkers: this.#options.scale.max };
  }

  /** Runs a command here when this replica leads, else on the leader; throws its error either way. */
  async #command(cmd: FleetCommand): Promise<Extract<FleetCommandResult, { ok: true }>> {
    const g = this.#live();
    const r = g.replica.leading ? this.#runHere(cmd) : g.replica.coordinator.submit(cmd);
    const result = await r;
    if (result.ok) return result;
    throw new GatewayError(isErrorCode(result.code) ? result.code : 'internal', {
      message: result.message,
      param: result.param,
    });
  }

  #worker(r: Extract<FleetCommandResult, { ok: true }>): Worker {
    if (!r.worker) throw new GatewayError('internal', { message: 'The leader answered without the worker.' });
    const here = this.#gateway?.pool.get(r.worker.name);
    return here?.state === r.worker.state ? here : sharedWorkerView(r.worker, this.#options.clock.now(), here);
  }

  /** A command carried out on this replica, which leads: the answer, or the error as the catalogue has it. */
  async #runHere(cmd: FleetCommand): Promise<FleetCommandResult> {
    try {
      const g = this.#live();
      if (!g.replica.leading) throw new GatewayError('no_leader');
      // The takeover sets the target from the shared fleet: a worker added or removed before it ends would be undone.
      await g.replica.takenOver();
      if (!g.replica.leading) throw new GatewayError('no_leader');
      // etcd confirms the leadership first: a leader cut off from it must not answer "added" for a launch it may not make.
      await g.replica.coordinator.fence(`node control: ${cmd.op}`).catch((err: unknown) => {
        throw isFencedError(err)
          ? new GatewayError('no_leader', { message: `${ERRORS.no_leader.message} (${err.why})`, cause: err })
          : err;
      });
      switch (cmd.op) {
        case 'add':
          return { ok: true, worker: shareWorker(this.#addHere(g, cmd.name)) };
        case 'remove':
          return { ok: true, worker: shareWorker(this.#removeHere(g, cmd.name)) };
        case 'drain':
          return { ok: true, worker: shareWorker(this.#drainHere(g, cmd.name)) };
        case 'scale':
          return { ok: true, bounds: this.#boundsHere(cmd.min, cmd.max) };
        case 'demand':
        case 'launch-ended':
          return { ok: true };
        case 'adapter':
          throw new GatewayError('bad_request', { message: 'An adapter change is not a node control command.' });
      }
    } catch (err) {
      const e = toGatewayError(err);
      return { ok: false, code: e.code, message: e.message, param: e.param };
    }
  }

  #addHere(g: ControlledGateway, name?: string): Worker {
    const scale = this.#options.scale;
    const chosen = name === undefined ? undefined : workerNameFor(name, this.#options.config.workerNamePrefix);
    if (chosen !== undefined && g.pool.get(chosen))
      throw new GatewayError('worker_exists', { message: `A worker named ${chosen} already exists.`, param: 'name' });
    // The target counts the replacement a drain still owes: a worker added now, and that
    // replacement once launched, would pass max_workers.
    const live = Math.max(g.fleet.live().length, g.fleet.target);
    if (live >= scale.max) {
      throw new GatewayError('at_max_workers', {
        message: `The fleet has ${live} workers and max_workers is ${scale.max}; raise it first (flockctl scale --max ${live + 1}).`,
      });
    }
    let w: Worker;
    try {
      w = g.fleet.launch(chosen);
    } catch (err) {
      // A cluster of that name is still being torn down (the pool check above passed).
      throw new GatewayError('worker_exists', { message: (err as Error).message, cause: err });
    }
    // A manual add holds off scale-down as an autoscaler scale-up does.
    scale.lastManualAddAt = this.#options.clock.now();
    this.#options.log.info({ worker: w.name }, 'node control: worker added');
    return w;
  }

  #removeHere(g: ControlledGateway, name?: string): Worker {
    const w = name === undefined ? leastLoaded(g.fleet.live()) : this.#known(g, name);
    if (!w) throw new GatewayError('unknown_worker', { message: 'There is no worker to remove.' });
    if (w.state === 'draining' || w.state === 'terminating') return w; // already leaving
    g.fleet
      .remove(w.name)
      .catch((err: unknown) => this.#options.log.error({ err, worker: w.name }, 'removing a worker failed'));
    this.#options.log.info({ worker: w.name }, 'node control: removing worker');
    return w;
  }

  #drainHere(g: ControlledGateway, name: string): Worker {
    const w = this.#known(g, name);
    if (w.state === 'draining' || w.state === 'terminating') return w;
    g.fleet
      .drain(w.name)
      .catch((err: unknown) => this.#options.log.error({ err, worker: w.name }, 'draining a worker failed'));
    this.#options.log.info({ worker: w.name }, 'node control: draining worker');
    return w;
  }

  #boundsHere(min?: number, max?: number): ScaleBounds {
    const scale = this.#options.scale;
    const next = { min: min ?? scale.min, max: max ?? scale.max };
    const whole = (n: number): boolean => Number.isInteger(n) && n >= 0;
    if (!whole(next.min) || !whole(next.max) || next.max < 1 || next.min > next.max) {
      throw new GatewayError('bad_request', {
        message: `scale bounds need 0 ≤ min_workers ≤ max_workers and max_workers ≥ 1, got min ${next.min}, max ${next.max}`,
      });
    }
    scale.min = next.min;
    scale.max = next.max;
    this.#options.log.info({ minWorkers: next.min, maxWorkers: next.max }, 'scale bounds changed');
    // A target over the new max (a drain's replacement not yet launched counts in it) comes
    // down now: the autoscaler compares its decision with the workers live, not with the target.
    if (this.#gateway?.replica.leading && !this.#closing && this.#gateway.fleet.target > next.max)
      this.#gateway.fleet.scaleTo(next.max);
    if (this.#gateway && !this.#closing) {
      try {
        this.#gateway.autoscaler.evaluateNow();
      } catch (err) {
        this.#options.log.error({ err }, 'autoscaler evaluation failed');
      }
    }
    return { minWorkers: next.min, maxWorkers: next.max };
  }

  watch(listener: EventListener): () => void {
    return this.#options.events.subscribe(listener);
  }

  /** The running gateway, or shutting_down once shutdown began (or before attach). */
  #live(): ControlledGateway {
    if (!this.#gateway || this.#closing) throw new GatewayError('shutting_down');
    return this.#gateway;
  }

  #known(g: ControlledGateway, name: string): Worker {
    const w = g.pool.get(name);
    if (w) return w;
    const names = g.pool.list().map((x) => x.name);
    throw new GatewayError('unknown_worker', {
      message: `No worker is named ${name} (workers: ${names.length > 0 ? names.join(', ') : 'none'}).`,
      param: 'name',
    });
  }
}

/** Whom an unnamed remove takes: the ready worker with the fewest requests in flight (the newest on a tie), else any live one. */
export function leastLoaded(live: Worker[]): Worker | undefined {
  const ready = live.filter((w) => w.state === 'ready');
  const pool = ready.length > 0 ? ready : live;
  return pool.reduce<Worker | undefined>(
    (best, w) =>
      !best || w.inFlight < best.inFlight || (w.inFlight === best.inFlight && w.createdAt >= best.createdAt) ? w : best,
    undefined,
  );
}
