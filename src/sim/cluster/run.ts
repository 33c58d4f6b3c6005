/**
 * The virtual-time cluster simulation: the gateway's real core — WorkerPool, Admission
 * (gateway queue), balancer, LoadTracker, Fleet and AutoscalerController — on a
 * VirtualClock, against SIMULATED workers (EngineModel, the engine simulator's model) made
 * by a SIMULATED provisioner, fed a workload: the arrivals of a real trace, or chat sessions
 * that send each turn once the previous reply is back (workload.ts). A request reaches the
 * balancer with its session key and prompt text, and its engine with the prompt's block
 * hashes, as through the HTTP adapters: affinity routing and the engines' prefix caches work
 * in virtual time too.
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
import { isEngineLoadSink } from '../../core/balancer/types.js';
import { VirtualClock, seededRandom, type Clock } from '../../core/clock.js';
import { GatewayError } from '../../core/errors.js';
import { promptBlockHashes } from '../../core/hashing.js';
import { Fleet } from '../../core/fleet.js';
import { LoadTracker } from '../../core/load-tracker.js';
import { WorkerPool } from '../../core/pool.js';
import type { TaskSpec } from '../../core/types.js';
import type { Config } from '../../config/options.js';
import { promptTextOf } from '../../service/prompt.js';
import { EngineMetricsScraper } from '../../upstream/engine-metrics.js';
import type { EngineProfile } from '../engine-model.js';
import { chatPromptText } from '../openai-routes.js';
import { launchDelaySampler, type LaunchDelaySpec } from './launch-delay.js';
import { SimMetrics, type RequestRecord, type SimSummary } from './metrics.js';
import { SimProvisioner } from './provisioner.js';
import type { RequestOutcome, SimPrompt, SimRequest, SimWorkload } from './workload.js';

export interface SimulationOptions {
  /** What is sent (traceWorkload, multiTurnWorkload); it is started once and used up. */
  readonly workload: SimWorkload;
  /** The gateway's resolved options; the simulation reads the autoscaling, queue, fleet and balancer ones. */
  readonly config: Config;
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
  /** Hears how far the run is, at most once per simulated minute: virtual seconds, requests sent so far. */
  readonly onProgress?: (tS: number, sent: number) => void;
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
  /** Prompt tokens looked up in the engines' prefix caches and found there, over all workers. */
  readonly prefixCache: { readonly queryTokens: number; readonly hitTokens: number; readonly hitRate: number };
}

const SIM_TASK: TaskSpec = Object.freeze({ path: '(simulated)', name: 'simulated', envs: {}, ports: [], raw: {} });

/** Lets every pending promise callback run (a macrotask boundary drains the microtask queue). */
const settleCallbacks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Runs the trace to the end (every request answered or failed) and returns what happened. */
export async function simulate(o: SimulationOptions): Promise<SimulationResult> {
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
  const balancer = createBalancer(c.loadBalancer, balancerOptions(c, clock));
  // engine-load reads the engines' load as the gateway's scraper would, every engine_metrics_interval.
  const engineMetrics = isEngineLoadSink(balancer)
    ? new EngineMetricsScraper({
        clock,
        intervalMs: c.engineMetricsInterval * 1000,
        workers: () => pool.readyWorkers(),
        sink: balancer,
        sample: (w) => Promise.resolve(provisioner.worker(w.name)?.engineLoad()),
      })
    : undefined;
  const admission: Admission = new Admission({
    pool,
    balancer,
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
  let lastSendAt = 0;
  const send = (req: SimRequest, onEnd?: (outcome: RequestOutcome) => void): void => {
    lastSendAt = clock.now();
    const rec = metrics.arrived();
    const ended = (outcome: RequestOutcome): void => {
      if (onEnd) {
        unsettled = true; // a closed-loop workload may send the next request from here
        onEnd(outcome);
      }
    };
    const { routeText, engineText } = promptTexts(req.prompt);
    admission.acquire({ ctx: { sessionKey: req.sessionKey, promptText: routeText }, timeoutMs: queueTimeoutMs }).then(
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
          release();
          return ended({ ok: false });
        }
        worker.run({
          promptTokens: req.promptTokens,
          maxTokens: req.outputTokens,
          outputTokens: req.outputTokens,
          ...(engineText === undefined ? {} : { promptBlocks: promptBlockHashes(engineText) }),
          onToken: (i) => {
            if (i === 0) metrics.firstToken(rec);
          },
          onDone: () => {
            metrics.done(rec, req.outputTokens);
            release();
            ended({ ok: true, outputTokens: req.outputTokens });
          },
          fail: () => {
            metrics.failed(rec, 'worker_lost');
            release();
            ended({ ok: false });
          },
        });
      },
      (err: unknown) => {
        failRequest(metrics, rec, err);
        ended({ ok: false });
      },
    );
  };

  fleet.scaleTo(initialWorkers);
  autoscaler.start();
  engineMetrics?.start();
  sampleEvery();
  o.workload.start({ clock, send });

  // A guard, not a limit anyone should meet: every request has a timeout, so the run ends
  // long before. Past it, open requests are reported as unfinished rather than looping on.
  const guardMs = 6 * 3600_000 + c.coldStartTimeout * 1000 + c.queueTimeout * 1000;
  let trafficOver = false;
  let progressAt = 0;
  const atFloor = (): boolean => metrics.billableWorkers === bounds.min && fleet.live().length === bounds.min;
  for (;;) {
    if (unsettled) {
      unsettled = false;
      await settleCallbacks();
    }
    const exhausted = o.workload.exhausted();
    if (!trafficOver && exhausted && metrics.open === 0) {
      trafficOver = true;
      metrics.markTrafficEnd();
    }
    if (trafficOver && (!o.settle || atFloor())) break;
    const at = virtual.nextTimerAt();
    if (at === undefined || (exhausted && at > lastSendAt + guardMs)) break;
    virtual.runUntil(at);
    if (o.onProgress && at >= progressAt) {
      progressAt = at + 60_000;
      o.onProgress(at / 1000, metrics.records.length);
    }
  }
  sample();
  autoscaler.stop();
  engineMetrics?.stop();
  const summary = metrics.summary();
  const { queryTokens, hitTokens } = provisioner.prefixCacheTotals();
  return {
    summary,
    timeline,
    scaleEvents,
    launches: fleet.stats.launched,
    prefixCache: { queryTokens, hitTokens, hitRate: queryTokens === 0 ? 0 : hitTokens / queryTokens },
  };
}

/**
 * The prompt as each side reads it: the gateway's balancer (promptTextOf, as the HTTP and
 * gRPC adapters pass it) and the engine simulator (whose block hashes its prefix cache keys on).
 */
function promptTexts(prompt: SimPrompt | undefined): { routeText?: string; engineText?: string } {
  if (!prompt) return {};
  if ('messages' in prompt)
    return { routeText: promptTextOf({ messages: prompt.messages }), engineText: chatPromptText(prompt.messages) };
  return { routeText: prompt.prompt, engineText: prompt.prompt };
}

function failRequest(metrics: SimMetrics, rec: RequestRecord, err: unknown): void {
  metrics.failed(rec, err instanceof GatewayError ? err.code : 'error');
}
