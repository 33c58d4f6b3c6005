/**
 * The virtual-time cluster simulation: the gateway's core as src/gateway assembles it for the
 * live gateway — queue, balancer, load tracker, outlier detection, fleet (launch retries with
 * backoff and jitter), autoscaler and the inference service (retries before the first byte) —
 * on a VirtualClock, against SIMULATED workers (EngineModel, the engine simulator's model)
 * made by a SIMULATED provisioner and reached through a SIMULATED upstream (upstream.ts), fed a
 * workload: the arrivals of a real trace, or chat sessions that send each turn once the
 * previous reply is back (workload.ts). A request reaches the balancer with its session key and
 * prompt text, and its engine with the prompt's block hashes, as through the HTTP adapters:
 * affinity routing and the engines' prefix caches work in virtual time too. Seeded faults
 * (failed requests, failed launches, preemptions; all off by default) exercise the gateway's
 * recovery paths.
 *
 * Time only moves when nothing is left to do at the current instant: after a timer that
 * may have started promise work (the core's hand-offs are promises: a lease, a launch, a
 * teardown, a dispatch), the loop lets pending promise callbacks run before the clock jumps to
 * the next timer. So a request handed a slot at t starts on its worker at t, not at the next
 * timer. The engines' step timers are the exception (hundreds of thousands per run, no
 * promises): they fire on the bare clock, and only a finished request (whose answer's end
 * releases its slot) asks for a settle. That keeps the one-hour trace at a few seconds.
 */
import { activeWorkers } from '../../core/autoscaler/snapshot.js';
import { Cancellation } from '../../core/cancellation.js';
import { VirtualClock, seededRandom, type Clock } from '../../core/clock.js';
import { GatewayError } from '../../core/errors.js';
import type { TaskSpec } from '../../core/types.js';
import type { Config } from '../../config/options.js';
import { assembleGateway } from '../../gateway/assemble.js';
import { promptTextOf } from '../../service/prompt.js';
import type { EngineProfile } from '../engine-model.js';
import { chatPromptText } from '../openai-routes.js';
import { launchDelaySampler, type LaunchDelaySpec } from './launch-delay.js';
import { SimMetrics, type RequestRecord, type SimSummary } from './metrics.js';
import { SimProvisioner } from './provisioner.js';
import { SimUpstream } from './upstream.js';
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
  /** Seeded faults, each off by default. */
  readonly faults?: SimulationFaults;
}

export interface SimulationFaults {
  /** Fraction of request attempts a worker answers 503 before the first byte (the gateway retries elsewhere). */
  readonly requestFailureRate?: number;
  /** Fraction of launches that fail at the end of their delay (the fleet retries with backoff). */
  readonly launchFailureRate?: number;
  /** Preemptions per worker-hour of a running worker: it vanishes with its requests, and is replaced. */
  readonly preemptionsPerHour?: number;
}

/** What the gateway's recovery paths did, and the faults that made them. */
export interface GatewayCounts {
  /** Attempts retried on another worker (the service's retries). */
  readonly retries: number;
  /** Workers ejected by outlier detection. */
  readonly ejections: number;
  readonly launchFailures: number;
  /** Workers given up on after max_launch_retries. */
  readonly launchGiveUps: number;
  /** Workers replaced (lost or unhealthy). */
  readonly replaced: number;
  readonly injected: {
    readonly requestFailures: number;
    readonly launchFailures: number;
    readonly preemptions: number;
  };
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
  readonly gateway: GatewayCounts;
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
  // Separate streams, so a change in how often one is drawn does not shift the others.
  const random = seededRandom(o.seed);
  const launchRandom = seededRandom((o.seed ^ 0x5bd1e995) >>> 0);
  const faultRandom = seededRandom((o.seed ^ 0x27d4eb2f) >>> 0);
  const requestFaultRandom = seededRandom((o.seed ^ 0x165667b1) >>> 0);
  const faults = o.faults ?? {};
  const provisioner: SimProvisioner = new SimProvisioner({
    clock,
    engineClock: virtual,
    launchDelayMs: launchDelaySampler(o.launchDelay, launchRandom),
    instantLaunches: initialWorkers,
    ...(o.profile ? { profile: o.profile } : {}),
    faults: { ...faults, random: faultRandom },
    onWorkerLost: (name, reason) => gateway.fleet.lost(name, reason),
  });
  const upstream = new SimUpstream({
    worker: (name) => provisioner.worker(name),
    requestFailureRate: faults.requestFailureRate ?? 0,
    random: requestFaultRandom,
  });
  const scaleEvents: ScaleEvent[] = [];
  const gateway = assembleGateway({
    config: c,
    clock,
    random,
    task: SIM_TASK,
    provisioner,
    prober: provisioner.prober,
    upstream,
    // engine-load reads the engines' load as the gateway's scraper would, every engine_metrics_interval.
    engineLoad: (w) => Promise.resolve(provisioner.worker(w.name)?.engineLoad()),
    onScale: (desired, decision, snap) =>
      scaleEvents.push({ tS: clock.now() / 1000, from: activeWorkers(snap), to: desired, reason: decision.reason }),
  });
  const { pool, tracker, admission, fleet, service } = gateway;
  const metrics = new SimMetrics(clock, pool);
  const bounds = gateway.scale;

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

  let lastSendAt = 0;
  const send = (req: SimRequest, onEnd?: (outcome: RequestOutcome) => void): void => {
    lastSendAt = clock.now();
    const rec = metrics.arrived();
    const { routeText, engineText } = promptTexts(req.prompt);
    const headers = upstream.register({ promptTokens: req.promptTokens, outputTokens: req.outputTokens, engineText });
    const ended = (outcome: RequestOutcome): void => {
      upstream.unregister(headers);
      unsettled = true; // the slot's release follows the answer's end; a closed-loop workload may send from here
      onEnd?.(outcome);
    };
    const failed = (err: unknown): void => {
      failRequest(metrics, rec, err);
      ended({ ok: false });
    };
    service
      .dispatch({
        method: 'POST',
        path: '/v1/completions',
        headers,
        sessionKey: req.sessionKey,
        promptText: routeText,
        signal: new Cancellation(),
      })
      .then((reply) => {
        metrics.leased(rec, rec.arrivedAt + reply.queueWaitMs);
        if (reply.status !== 200) {
          reply.body.discard();
          return failed(new GatewayError('upstream_unavailable', { message: `status ${reply.status}` }));
        }
        reply.body
          .read({
            data: () => metrics.firstToken(rec),
            end: () => {
              metrics.done(rec, req.outputTokens);
              ended({ ok: true, outputTokens: req.outputTokens });
            },
            error: failed,
          })
          .resume();
      }, failed);
  };

  fleet.scaleTo(initialWorkers);
  await gateway.start();
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
  gateway.stop();
  const summary = metrics.summary();
  const { queryTokens, hitTokens } = provisioner.prefixCacheTotals();
  return {
    summary,
    timeline,
    scaleEvents,
    launches: fleet.stats.launched,
    prefixCache: { queryTokens, hitTokens, hitRate: queryTokens === 0 ? 0 : hitTokens / queryTokens },
    gateway: {
      retries: service.stats.retries,
      ejections: gateway.outlier.stats.ejections,
      launchFailures: fleet.stats.launchFailures,
      launchGiveUps: fleet.stats.launchGiveUps,
      replaced: fleet.stats.replaced,
      injected: { requestFailures: upstream.requestFailures, ...provisioner.faultCounts },
    },
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
