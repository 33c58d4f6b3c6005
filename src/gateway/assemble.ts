/**
 * The composition root: the whole gateway core built from the resolved options, a clock, a
 * random source, a provisioner, a prober and an upstream. The live gateway (src/index.ts) and
 * the virtual-time simulation (src/sim/cluster/run.ts) both call it, so `flockserve simulate`
 * runs the gateway users run: the same queue, balancer, outlier detection, fleet (launch
 * retries with backoff and jitter), autoscaler (with the manual-add hold) and inference
 * service (request retries). Nothing else wires core pieces together.
 *
 * With a coordinator (src/coordination: etcd) the gateway is one replica of several that share
 * the fleet: its Replica leads (the fleet and autoscaler run, every provisioner call fenced) or
 * follows (the pool mirrors the leader's fleet). The default in-process coordinator leads alone.
 *
 * It imports core, the inference service and interfaces only: no HTTP, no gRPC, no undici
 * (the live upstream, prober and engine-metrics sampler come in from outside).
 */
import type { Config } from '../config/options.js';
import { Admission } from '../core/admission.js';
import { AutoscalerController } from '../core/autoscaler/controller.js';
import { sloStanding, type SloStanding } from '../core/autoscaler/history-readings.js';
import { createAutoscaler } from '../core/autoscaler/registry.js';
import type { Coordinator, SharedFleet } from '../core/coordination.js';
import { LaunchTimes, activeWorkers, scaleConfig, takeSnapshot } from '../core/autoscaler/snapshot.js';
import type { AutoscalerPolicy, ScaleDecision, ScaleSnapshot } from '../core/autoscaler/types.js';
import { balancerOptions, createBalancer } from '../core/balancer/registry.js';
import { isEngineLoadSink, type BalancerPolicy, type EngineLoadSample } from '../core/balancer/types.js';
import type { Clock } from '../core/clock.js';
import { Fleet } from '../core/fleet.js';
import { FleetHistory } from '../core/fleet-history.js';
import { LoadHistory } from '../core/load-history.js';
import { LoadTracker } from '../core/load-tracker.js';
import { OncePer } from '../core/once-per.js';
import { OutlierDetector } from '../core/outlier.js';
import { WorkerPool } from '../core/pool.js';
import { SloWatch } from '../core/slo-watch.js';
import { GlobalQueue, Replica } from '../core/replica.js';
import type {
  Prober,
  Provisioner,
  ProvisionerFence,
  StructuredLog,
  TaskSpec,
  Worker,
  WorkerStateChange,
} from '../core/types.js';
import { AdapterSync } from '../service/adapters.js';
import type { ScaleState } from '../service/control-plane.js';
import type { DecisionEvent } from '../service/events.js';
import { InferenceService } from '../service/inference.js';
import { InProcessCoordinator } from '../coordination/in-process.js';
import { EngineMetricsScraper } from '../upstream/engine-metrics.js';
import type { Upstream } from '../upstream/types.js';

/** The log lines the core's parts write; pino's Logger fits, the simulation passes none. */
export type GatewayLog = StructuredLog;

/** What the parts count as they go; the telemetry's GatewayMetrics fits. Every method is optional. */
export interface GatewayMetricsHooks {
  workerChanged?(change: WorkerStateChange, now: number): void;
  ejection?(worker: string, reason: string): void;
  retry?(worker: string, reason: string): void;
  answerFailure?(worker: string, code: string): void;
  repetitionGuardTrip?(worker: string): void;
  /** A request named a stored answer whose worker (`worker`) no longer serves. */
  storedAnswerMiss?(worker: string): void;
  autoscalerEvaluated?(direction: 'up' | 'down' | 'none'): void;
  /** A decision the autoscaler could not take in full: it wanted `wanted` workers, max_workers is `max`. */
  autoscalerHeldBack?(wanted: number, max: number): void;
}

/** Where worker changes and autoscaler decisions go as they happen (WatchEvents' EventHub fits). */
export interface GatewayEventSink {
  workerChanged(change: WorkerStateChange): void;
  decision(event: DecisionEvent): void;
}

/**
 * What a provisioner is made from: the fleet's lost() path, for workers that vanish on their
 * own, and the fence it checks right before a command that makes or unmakes a cluster runs.
 */
export type ProvisionerFactory = (
  onWorkerLost: (name: string, reason: string) => void,
  fence: ProvisionerFence,
) => Provisioner;

/** One worker's engine load, as a scrape of its /metrics would say (the engine-load policy's input). */
export type EngineLoadSampler = (worker: Worker, signal: AbortSignal) => Promise<EngineLoadSample | undefined>;

/**
 * Everything the assembly is built from. One object, so a new collaborator (e.g. a coordinator
 * for several gateways) is one more optional field, not a new signature.
 */
export interface GatewayAssemblyOptions {
  readonly config: Config;
  readonly clock: Clock;
  /** Uniform [0, 1): the balancer's and the queue's tie-breaks, the fleet's backoff jitter. */
  readonly random: () => number;
  readonly task: TaskSpec;
  /** A provisioner, or a factory given the fleet's lost() path (a provisioner that reports vanished workers). */
  readonly provisioner: Provisioner | ProvisionerFactory;
  readonly prober: Prober;
  readonly upstream: Upstream;
  /**
   * A balancer built by the caller instead of the one `load_balancer` names (the simulation's
   * clairvoyant yardstick, which reads the simulated engines).
   */
  readonly balancer?: BalancerPolicy | undefined;
  /** How the engine-load policy's scraper samples a worker; default: GET its /metrics. */
  readonly engineLoad?: EngineLoadSampler | undefined;
  readonly log?: GatewayLog | undefined;
  readonly metrics?: GatewayMetricsHooks | undefined;
  readonly events?: GatewayEventSink | undefined;
  /** Default: [min_workers, max_workers] from the options, no hold. */
  readonly scale?: ScaleState | undefined;
  /**
   * How this gateway shares its fleet with other replicas (src/coordination: etcd); default
   * in-process: one gateway that leads alone.
   */
  readonly coordinator?: Coordinator | undefined;
  /** The autoscaler changed the fleet's target (after the fleet was told). */
  readonly onScale?: ((desired: number, decision: ScaleDecision, snapshot: ScaleSnapshot) => void) | undefined;
}

/** The gateway core, assembled. */
export interface Gateway {
  readonly config: Config;
  readonly clock: Clock;
  readonly pool: WorkerPool;
  /** In flight + waiting, and its running mean over queue_tracking_window. */
  readonly tracker: LoadTracker;
  readonly panicTracker: { mean(): number };
  readonly admission: Admission;
  readonly balancer: BalancerPolicy;
  readonly outlier: OutlierDetector;
  readonly fleet: Fleet;
  readonly policy: AutoscalerPolicy;
  readonly autoscaler: AutoscalerController;
  readonly service: InferenceService;
  /** The fleet's run-time LoRA adapters: every change made on every worker, every worker brought to them. */
  readonly adapters: AdapterSync;
  readonly upstream: Upstream;
  readonly provisioner: Provisioner;
  /** This gateway among the replicas that share the fleet (it leads alone without etcd). */
  readonly replica: Replica;
  /** Only with a balancer that reads engine load (engine-load). */
  readonly engineMetrics: EngineMetricsScraper | undefined;
  readonly scale: ScaleState;
  /** Whether the p99 queue wait held queue_wait_slo over the load history the autoscaler reads. */
  sloStanding(): SloStanding;
  /**
   * Starts the engine-metrics scrapes and joins the replicas; resolves once joined and, when this
   * replica leads, once it has taken the fleet over (adopted the clusters, set the target) and
   * started the autoscaler.
   */
  start(): Promise<void>;
  /**
   * Stops the autoscaler and the scrapes; the replica's leave and close, the fleet's shutdown
   * and the upstream's close are the caller's (they take time).
   */
  stop(): void;
}

export type { ScaleState };

const NO_LOG: GatewayLog = { debug() {}, info() {}, warn() {}, error() {} };

export function assembleGateway(o: GatewayAssemblyOptions): Gateway {
  const c = o.config;
  const clock = o.clock;
  const log = o.log ?? NO_LOG;
  const metrics = o.metrics ?? {};
  const scale: ScaleState = o.scale ?? { min: c.minWorkers, max: c.maxWorkers, lastManualAddAt: undefined };
  const coordinator = o.coordinator ?? new InProcessCoordinator();
  const fence: ProvisionerFence = {
    check: (action) => coordinator.checkFence(action),
    holds: () => coordinator.holdsFence(),
  };
  const pool = new WorkerPool(clock);
  const tracker = new LoadTracker(clock, c.queueTrackingWindow * 1000);
  const panicTracker = tracker.withWindow(c.panicWindow * 1000);
  // The autoscaler's short-bucket view of the load (peaks, rates), and how long launches take.
  // Admission records this replica's; the autoscaler reads the fleet's (every replica's, summed).
  const history = new LoadHistory(clock, { aligned: coordinator.replicated, lateAfterMs: c.queueWaitSlo * 1000 });
  const fleetHistory = new FleetHistory(history);
  const launchTimes = new LaunchTimes();
  const balancer = o.balancer ?? createBalancer(c.loadBalancer, balancerOptions(c, clock));
  // engine-load reads the engines' /metrics; the scraper pushes them in, off the request path.
  const engineMetrics = isEngineLoadSink(balancer)
    ? new EngineMetricsScraper({
        clock,
        intervalMs: c.engineMetricsInterval * 1000,
        workers: () => pool.readyWorkers(),
        sink: balancer,
        ...(o.engineLoad ? { sample: o.engineLoad } : {}),
        onError: (worker, err) =>
          log.warn({ worker: worker.name, err }, 'engine metrics scrape failing; its load counts as unknown'),
        onRecover: (worker) => log.info({ worker: worker.name }, 'engine metrics scrape recovered'),
      })
    : undefined;
  // The provisioner reports lost workers to the fleet, which is made after it.
  const fleetRef: { current?: Fleet } = {};
  const provisioner =
    typeof o.provisioner === 'function'
      ? o.provisioner((name, reason) => fleetRef.current?.lost(name, reason), fence)
      : o.provisioner;
  const upstream = o.upstream;
  // Run-time LoRA adapters: changed on every worker serving, and brought to each worker before it serves.
  // With several replicas the leader keeps them and shares them; a follower passes a change on.
  const adapters = new AdapterSync({
    upstream,
    serving: () => pool.serving(),
    log,
    clock,
    leading: () => replica.leading,
    submit: (cmd) => coordinator.submit(cmd),
    onChange: () => replica.adaptersChanged(),
    lastShared: () => coordinator.lastFleet()?.adapters,
  });
  const prober = adapters.prober(o.prober);
  // The autoscaler's queue length: this replica's, plus what the other replicas publish.
  const queue = new GlobalQueue(tracker);
  // Requests held at the gateway by worker_capacity are said once a minute at most, not per request.
  const capacityNotice = new OncePer(clock, 60_000);
  // So are requests that name a stored answer whose worker is gone (a scale-in may orphan many).
  const homeGoneNotice = new OncePer(clock, 60_000);
  const admission: Admission = new Admission({
    pool,
    balancer,
    clock,
    tracker: queue,
    history,
    random: o.random,
    maxQueueLength: c.maxQueueLength,
    coldStartTimeoutMs: c.coldStartTimeout * 1000,
    // Scale from zero: a request with no worker anywhere launches one at once (a follower asks the leader).
    onDemand: () => replica.demand(),
    onHeldAtCapacity: (waiting) => {
      if (!capacityNotice.take()) return;
      log.info(
        { waiting, workerCapacity: c.workerCapacity, readyWorkers: pool.loads.readyCount, maxWorkers: scale.max },
        `requests wait at the gateway: every ready worker is at worker_capacity (${c.workerCapacity}); more workers or a higher worker_capacity would let them through`,
      );
    },
  });
  const outlier = new OutlierDetector({
    pool,
    clock,
    consecutiveFailures: c.outlierConsecutiveFailures,
    baseEjectionMs: c.outlierEjectionTime * 1000,
    onEject: (w, info) => {
      metrics.ejection?.(w.name, 'consecutive_failures');
      log.warn({ worker: w.name, ...info }, `worker ${w.name} ejected after ${info.failures} failures in a row`);
    },
    onReadmit: (w, reason) => {
      log.info({ worker: w.name, reason }, `worker ${w.name} readmitted`);
      admission.wake();
    },
  });
  const fleet = new Fleet({
    pool,
    provisioner,
    prober,
    task: o.task,
    clock,
    namePrefix: c.workerNamePrefix,
    capacity: c.workerCapacity,
    probeIntervalMs: c.workerProbeInterval * 1000,
    unhealthyTimeoutMs: c.workerUnhealthyTimeout * 1000,
    drainTimeoutMs: c.drainTimeout * 1000,
    maxLaunchRetries: c.maxLaunchRetries,
    retryDelayMs: c.launchRetryDelay * 1000,
    random: o.random,
    log: (level, msg, fields) => log[level](fields ?? {}, msg),
    onReady: () => admission.wake(),
    onProbe: (w, ok) => outlier.probed(w, ok),
    // A launch aborted as this replica stopped leading: the leader, which awaits it, learns it ended.
    onLaunchAbandoned: (name) => replica.launchAbandoned(name),
    // With several replicas every provisioner call waits until etcd confirms this one still leads.
    // and every launch is recorded in the store first, so that the next leader awaits it rather than redoing it.
    ...(coordinator.replicated
      ? { fence: (action: string) => coordinator.fence(action), launches: coordinator.launches }
      : {}),
    launchTimeoutMs: c.launchTimeout * 1000,
  });
  fleetRef.current = fleet;
  let ready = 0;
  pool.onChange((change) => {
    metrics.workerChanged?.(change, clock.now());
    launchTimes.change(change, clock.now());
    // State changes are rare (launches, drains): counting the ready workers again is cheap.
    const nowReady = pool.inState('ready').length;
    if (nowReady !== ready) history.setReady((ready = nowReady));
    const { worker, previous, reason } = change;
    log.info(
      { worker: worker.name, from: previous, to: worker.state, reason },
      `worker ${worker.name} ${worker.state}`,
    );
    if (worker.state === 'gone' && worker.url) {
      void upstream.forget(worker.url);
      adapters.forget(worker.url);
    }
    o.events?.workerChanged(change);
  });
  const service = new InferenceService({
    admission,
    upstream,
    queueTimeoutMs: c.queueTimeout * 1000,
    maxRetries: c.maxRetries,
    retryBackoffMs: c.retryBackoff * 1000,
    requestTimeoutMs: c.requestTimeout * 1000,
    repetitionGuard: c.repetitionGuard,
    clock,
    adapters,
    onRelease: () => fleet.notifyRelease(),
    onRetry: (worker, reason) => {
      metrics.retry?.(worker, reason);
      log.warn({ worker, reason }, 'retrying on another worker');
    },
    onOutcome: (w, ok) => (ok ? outlier.success(w) : outlier.failure(w)),
    onMidStreamFailure: (worker, err) => {
      metrics.answerFailure?.(worker, err.code);
      log.warn({ worker, code: err.code, err: err.message }, 'answer failed after its headers');
    },
    onRepetitionGuard: (worker) => {
      metrics.repetitionGuardTrip?.(worker);
      log.warn({ worker }, 'repetition guard ended a stream');
    },
    onHomeGone: (id, worker) => {
      metrics.storedAnswerMiss?.(worker);
      if (!homeGoneNotice.take()) return;
      log.info(
        { answer: id, worker },
        `a request names answer ${id}, stored by worker ${worker}, which no longer serves: it goes to another worker, which answers 404 unless the engines share their store (said once a minute at most; flockserve_stored_answer_misses counts them)`,
      );
    },
  });
  const policy = createAutoscaler(c.autoscaler, c);
  const config = scaleConfig(c);
  const bounds = (): ScaleState => scale;
  // max_workers holding the autoscaler back: a warning when it starts, a note when it ends, and
  // the wanted count in the shared scale state (the status and the metrics read it).
  const reportCapped = (decision: ScaleDecision, snap: ScaleSnapshot): void => {
    const wanted = decision.wanted !== undefined && decision.wanted > snap.maxWorkers ? decision.wanted : undefined;
    if (wanted !== undefined && scale.wanted === undefined)
      log.warn(
        { ...decisionFields(decision, snap), policy: policy.name, wanted, maxWorkers: snap.maxWorkers },
        `autoscaler wants ${wanted} workers; max_workers ${snap.maxWorkers} holds it back (its queue-wait target may not hold)`,
      );
    else if (wanted === undefined && scale.wanted !== undefined)
      log.info({ policy: policy.name, maxWorkers: snap.maxWorkers }, 'autoscaler is within max_workers again');
    scale.wanted = wanted;
    if (wanted !== undefined) metrics.autoscalerHeldBack?.(wanted, snap.maxWorkers);
  };
  // A p99 queue wait over queue_wait_slo: a warning when it begins, a note when it holds again,
  // whatever the policy and whatever the cause (max_workers; a start, a rise or a burst faster than a launch).
  const slo = (): SloStanding => sloStanding(fleetHistory.buckets(), fleetHistory.bucketMs);
  const sloWatch = new SloWatch();
  const planHint = c.requestLog
    ? `\`flockserve plan --trace ${c.requestLog}\` names how many`
    : '`flockserve plan` on a trace of this traffic names how many; `--request_log` records one';
  const reportSlo = (): void => {
    const s = slo();
    const change = sloWatch.update(s);
    if (change === undefined) return;
    const allowed = Math.floor(s.budget);
    const fields = { late: s.late, requests: s.requests, allowed, queueWaitSlo: c.queueWaitSlo };
    const over = `${s.late} of ${s.requests} requests in the last ${Math.round(s.windowMs / 60_000)} min waited longer than ${c.queueWaitSlo} s for a worker (${allowed} allowed at p99)`;
    if (change === 'held-again') log.info(fields, `p99 queue wait within queue_wait_slo again: ${over}`);
    else
      log.warn(
        { ...fields, policy: policy.name },
        `p99 queue wait over queue_wait_slo: ${over}; ${
          scale.wanted !== undefined
            ? `max_workers ${scale.max} holds the autoscaler back`
            : `the load outran the workers up (a start, or a rise or burst faster than a launch): only workers kept up hold it (min_workers; ${planHint})`
        }`,
      );
  };
  const autoscaler: AutoscalerController = new AutoscalerController({
    clock,
    policy,
    intervalMs: c.autoscaleInterval * 1000,
    snapshot: () => {
      const snap = takeSnapshot({
        tracker,
        panicTracker,
        workers: () => pool.list(),
        bounds,
        config,
        waiting: () => admission.waiting + queue.remoteWaiting,
        history: fleetHistory,
        launches: launchTimes,
      });
      return scale.lastManualAddAt === undefined ? snap : { ...snap, lastScaleUpAt: scale.lastManualAddAt };
    },
    // Every decision with its inputs at debug (counted, and sent to WatchEvents); the ones that change the fleet at info.
    onDecision: (decision, snap) => {
      reportCapped(decision, snap);
      reportSlo();
      const current = activeWorkers(snap);
      metrics.autoscalerEvaluated?.(decision.desired > current ? 'up' : decision.desired < current ? 'down' : 'none');
      if (o.log) log.debug({ ...decisionFields(decision, snap), policy: policy.name }, 'autoscaler decision');
      o.events?.decision({
        policy: policy.name,
        currentWorkers: current,
        desiredWorkers: decision.desired,
        queueLengthRunningMean: snap.queueLengthMean,
        reason: decision.reason,
      });
    },
    apply: (desired, decision, snap) => {
      log.info({ ...decisionFields(decision, snap), policy: policy.name }, 'autoscaler scales the fleet');
      fleet.scaleTo(desired);
      o.onScale?.(desired, decision, snap);
    },
    onError: (err) => log.error({ err }, 'autoscaler evaluation failed'),
  });
  const replica: Replica = new Replica({
    coordinator,
    pool,
    fleet: {
      get target() {
        return fleet.target;
      },
      takeOver: (shared, reinit, leaving) => takeOver(fleet, scale, shared, { reinit, leaving }, log),
      standDown: () => fleet.standDown(),
      launchEnded: (name) => fleet.launchEnded(name),
    },
    autoscaler,
    scale,
    queue,
    history: fleetHistory,
    waiting: () => admission.waiting,
    wake: () => admission.wake(),
    clock,
    prober,
    onProbe: (w, ok) => outlier.probed(w, ok),
    probeIntervalMs: c.workerProbeInterval * 1000,
    reinit: c.reinit,
    log,
    adapters,
  });
  return {
    config: c,
    clock,
    pool,
    tracker,
    panicTracker,
    admission,
    balancer,
    outlier,
    fleet,
    policy,
    autoscaler,
    service,
    adapters,
    upstream,
    provisioner,
    replica,
    engineMetrics,
    scale,
    sloStanding: slo,
    async start() {
      engineMetrics?.start();
      await replica.start();
    },
    stop() {
      autoscaler.stop();
      engineMetrics?.stop();
    },
  };
}

/**
 * A replica comes to lead: the workers it mirrored become the fleet's, the provisioner's
 * clusters are adopted (or torn down when unusable), and the target is set: the previous
 * leader's, or (a fresh fleet) what was adopted, within [min_workers, max_workers]. A replica
 * that is leaving keeps what runs as the target, whatever the bounds.
 */
async function takeOver(
  fleet: Fleet,
  scale: ScaleState,
  shared: SharedFleet | undefined,
  { reinit, leaving }: { reinit: boolean; leaving: boolean },
  log: GatewayLog,
): Promise<void> {
  fleet.own({ leaving });
  const adopted = await fleet.adopt({ reinit });
  if (adopted.adopted.length > 0) log.info({ adopted: adopted.adopted }, 'adopted running workers');
  if (adopted.reinitialized.length > 0) {
    log.info({ reinitialized: adopted.reinitialized }, 'reinit: relaunching the task on running workers');
  }
  // A replica on its way out holds what runs for its teardown or the next leader: no launch.
  if (leaving) return fleet.scaleTo(fleet.live().length);
  const want = shared ? shared.target : fleet.live().length;
  fleet.scaleTo(Math.min(scale.max, Math.max(scale.min, want)));
}

/** A decision and the inputs it was made on, as log fields. */
function decisionFields(decision: ScaleDecision, s: ScaleSnapshot): Record<string, unknown> {
  return {
    desired: decision.desired,
    reason: decision.reason,
    queueMean: Number(s.queueLengthMean.toFixed(3)),
    queueNow: s.queueLength,
    panicMean: Number(s.panicQueueLengthMean.toFixed(3)),
    workers: s.workers,
    bounds: [s.minWorkers, s.maxWorkers],
  };
}
