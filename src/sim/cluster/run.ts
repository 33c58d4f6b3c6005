/**
 * The virtual-time cluster simulation: the gateway's real core — WorkerPool, Admission
 * (gateway queue), balancer, LoadTracker, Fleet and AutoscalerController — on a
 * VirtualClock, against SIMULATED workers (EngineModel, the engine simulator's model) made
 * by a SIMULATED provisioner, fed the arrivals of a real trace.
 *
 * Time only moves when nothing is left to do at the current instant: after a timer that
 * may have started promise work (the core's hand-offs are promises: a lease, a launch, a
 * teardown), the loop lets pending promise callbacks run before the clock jumps to the next
 * timer. So a request handed a slot at t starts on its worker at t, not at the next timer.
 * The engines' step timers are the exception (hundreds of thousands per run, no promises):
 * they fire on the bare clock, and only a finished request (which releases its slot) asks
 * for a settle. That keeps the one-hour trace at a few seconds.
 */
import { AutoscalerController } from '../../core/autoscaler/controller.js';
import { createAutoscaler } from '../../core/autoscaler/registry.js';
import { activeWorkers, scaleConfig, takeSnapshot } from '../../core/autoscaler/snapshot.js';
import { Admission } from '../../core/admission.js';
import { balancerOptions, createBalancer } from '../../core/balancer/registry.js';
import { VirtualClock, seededRandom, type Clock } from '../../core/clock.js';
import { GatewayError } from '../../core/errors.js';
import { Fleet } from '../../core/fleet.js';
import { LoadTracker } from '../../core/load-tracker.js';
import { WorkerPool } from '../../core/pool.js';
import type { TaskSpec } from '../../core/types.js';
import type { Config } from '../../config/options.js';
import type { EngineProfile } from '../engine-model.js';
import { launchDelaySampler, type LaunchDelaySpec } from './launch-delay.js';
import { SimMetrics, type RequestRecord, type SimSummary } from './metrics.js';
import { SimProvisioner } from './provisioner.js';
import type { TraceRequest } from './trace.js';

export interface SimulationOptions {
  readonly trace: readonly TraceRequest[];
  /** The gateway's resolved options; the simulation reads the autoscaling, queue and fleet ones. */
  readonly config: Config;
  /** Arrivals come this many times faster than in the trace (4 → one hour in 15 minutes). */
  readonly timeScale: number;
  readonly launchDelay: LaunchDelaySpec;
  readonly seed: number;
  /** Time between timeline rows, ms. */
  readonly sampleIntervalMs: number;
  /**
   * Workers already up when the trace starts (default min_workers): a gateway that has been
   * running, not one launching its first worker as the first request arrives.
   */
  readonly initialWorkers?: number;
  /**
   * After the last request, keep going until the fleet is back at min_workers (nothing
   * launching or draining) and report how long that took and what it cost, apart.
   */
  readonly settle?: boolean;
  readonly profile?: Partial<EngineProfile>;
}

export interface TimelineRow {
  readonly tS: number;
  /** Workers that exist (and cost): launching, up, draining. */
  readonly workers: number;
  readonly ready: number;
  /** Provisioning or starting. */
  readonly launching: number;
  /** Queue length now: in flight + waiting at the gateway. */
  readonly queue: number;
  readonly waiting: number;
  /** The running mean the autoscaler reads (queue_tracking_window). */
  readonly queueMean: number;
}

export interface ScaleEvent {
  readonly tS: number;
  readonly from: number;
  readonly to: number;
  readonly reason: string;
}

export interface SimulationResult {
  readonly summary: SimSummary;
  readonly timeline: readonly TimelineRow[];
  readonly scaleEvents: readonly ScaleEvent[];
  /** Fleet launches (workers started), including replacements. */
  readonly launches: number;
}

const SIM_TASK: TaskSpec = Object.freeze({ path: '(simulated)', name: 'simulated', envs: {}, ports: [], raw: {} });

/** Lets every pending promise callback run (a macrotask boundary drains the microtask queue). */
const settleCallbacks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Runs the trace to the end (every request answered or failed) and returns what happened. */
export async function simulate(o: SimulationOptions): Promise<SimulationResult> {
  if (!(o.timeScale > 0)) throw new RangeError(`time scale must be > 0, got ${o.timeScale}`);
  if (!(o.sampleIntervalMs > 0)) throw new RangeError(`sample interval must be > 0 ms, got ${o.sampleIntervalMs}`);
  const c = o.config;
  const initialWorkers = Math.min(c.maxWorkers, o.initialWorkers ?? c.minWorkers);
  const virtual = new VirtualClock(0);
  // Every timer of the core may resolve or reject a promise: mark that callbacks must settle.
  let unsettled = true;
  const clock: Clock = {
    now: () => virtual.now(),
    setTimer: (ms, fn) =>
      virtual.setTimer(ms, () => {
        unsettled = true;
        fn();
      }),
  };
  const pool = new WorkerPool(clock);
  const metrics = new SimMetrics(clock, pool);
  const tracker = new LoadTracker(clock, c.queueTrackingWindow * 1000);
  const panicTracker = tracker.withWindow(c.panicWindow * 1000);
  // Separate streams, so a change in how often one is drawn does not shift the other.
  const random = seededRandom(o.seed);
  const launchRandom = seededRandom((o.seed ^ 0x5bd1e995) >>> 0);
  const provisioner = new SimProvisioner({
    clock,
    engineClock: virtual,
    launchDelayMs: launchDelaySampler(o.launchDelay, launchRandom),
    instantLaunches: initialWorkers,
    ...(o.profile ? { profile: o.profile } : {}),
  });
  const admission: Admission = new Admission({
    pool,
    balancer: createBalancer(c.loadBalancer, balancerOptions(c, clock)),
    clock,
    tracker,
    random,
    maxQueueLength: c.maxQueueLength,
    coldStartTimeoutMs: c.coldStartTimeout * 1000,
    onDemand: () => autoscaler.demand(),
  });
  const fleet = new Fleet({
    pool,
    provisioner,
    prober: provisioner.prober,
    task: SIM_TASK,
    clock,
    namePrefix: 'sim-worker',
    capacity: c.workerCapacity,
    probeIntervalMs: c.workerProbeInterval * 1000,
    unhealthyTimeoutMs: c.workerUnhealthyTimeout * 1000,
    drainTimeoutMs: c.drainTimeout * 1000,
    onReady: () => admission.wake(),
  });
  const scaleEvents: ScaleEvent[] = [];
  const bounds = { min: c.minWorkers, max: c.maxWorkers };
  const config = scaleConfig(c);
  const autoscaler: AutoscalerController = new AutoscalerController({
    clock,
    policy: createAutoscaler(c.autoscaler, c),
    intervalMs: c.autoscaleInterval * 1000,
    snapshot: () => takeSnapshot({ tracker, panicTracker, workers: () => pool.list(), bounds: () => bounds, config }),
    apply: (desired, decision, snap) => {
      scaleEvents.push({ tS: clock.now() / 1000, from: activeWorkers(snap), to: desired, reason: decision.reason });
      fleet.scaleTo(desired);
    },
  });

  const timeline: TimelineRow[] = [];
  const sample = (): void => {
    let ready = 0;
    let launching = 0;
    for (const w of pool.list()) {
      if (w.state === 'ready') ready++;
      else if (w.state === 'provisioning' || w.state === 'starting') launching++;
    }
    timeline.push({
      tS: clock.now() / 1000,
      workers: metrics.billableWorkers,
      ready,
      launching,
      queue: tracker.current(),
      waiting: admission.waiting,
      queueMean: tracker.mean(),
    });
  };
  const sampleEvery = (): void => {
    sample();
    clock.setTimer(o.sampleIntervalMs, sampleEvery);
  };

  const queueTimeoutMs = c.queueTimeout * 1000;
  const arrive = (req: TraceRequest): void => {
    const rec = metrics.arrived();
    admission.acquire({ ctx: {}, timeoutMs: queueTimeoutMs }).then(
      (lease) => {
        metrics.leased(rec);
        const worker = provisioner.worker(lease.worker.name);
        let released = false;
        const release = (): void => {
          if (released) return;
          released = true;
          unsettled = true; // the slot may go to a waiter, whose lease is a promise
          lease.release();
          fleet.notifyRelease();
        };
        if (!worker) {
          metrics.failed(rec, 'worker_lost');
          return release();
        }
        worker.run({
          promptTokens: req.promptTokens,
          maxTokens: req.outputTokens,
          outputTokens: req.outputTokens,
          onToken: (i) => {
            if (i === 0) metrics.firstToken(rec);
          },
          onDone: () => {
            metrics.done(rec);
            release();
          },
          fail: () => {
            metrics.failed(rec, 'worker_lost');
            release();
          },
        });
      },
      (err: unknown) => failRequest(metrics, rec, err),
    );
  };

  let next = 0;
  const scheduleArrival = (): void => {
    const req = o.trace[next];
    if (!req) return;
    clock.setTimer(req.arrivalMs / o.timeScale - clock.now(), () => {
      next++;
      arrive(req);
      scheduleArrival();
    });
  };

  fleet.scaleTo(initialWorkers);
  autoscaler.start();
  sampleEvery();
  scheduleArrival();

  // A guard, not a limit anyone should meet: every request has a timeout, so the run ends
  // long before. Past it, open requests are reported as unfinished rather than looping on.
  const lastArrivalMs = (o.trace.at(-1)?.arrivalMs ?? 0) / o.timeScale;
  const stopAt = lastArrivalMs + 6 * 3600_000 + c.coldStartTimeout * 1000 + c.queueTimeout * 1000;
  let trafficOver = false;
  const atFloor = (): boolean => metrics.billableWorkers === bounds.min && fleet.live().length === bounds.min;
  for (;;) {
    if (unsettled) {
      unsettled = false;
      await settleCallbacks();
    }
    if (!trafficOver && next >= o.trace.length && metrics.open === 0) {
      trafficOver = true;
      metrics.markTrafficEnd();
    }
    if (trafficOver && (!o.settle || atFloor())) break;
    const at = virtual.nextTimerAt();
    if (at === undefined || at > stopAt) break;
    virtual.runUntil(at);
  }
  sample();
  autoscaler.stop();
  const summary = metrics.summary();
  return { summary, timeline, scaleEvents, launches: fleet.stats.launched };
}

function failRequest(metrics: SimMetrics, rec: RequestRecord, err: unknown): void {
  metrics.failed(rec, err instanceof GatewayError ? err.code : 'error');
}
