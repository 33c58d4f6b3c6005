import type { Tracer } from '@opentelemetry/api';
import { homedir } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { ConfigError, resolveOptions } from './config/resolve.js';
import type { Config, FlockServeOptions } from './config/options.js';
import { Admission } from './core/admission.js';
import { AutoscalerController } from './core/autoscaler/controller.js';
import { createAutoscaler } from './core/autoscaler/registry.js';
import type { ScaleDecision, ScaleSnapshot } from './core/autoscaler/types.js';
import { activeWorkers, scaleConfig, takeSnapshot } from './core/autoscaler/snapshot.js';
import { balancerOptions, createBalancer } from './core/balancer/registry.js';
import { isEngineLoadSink } from './core/balancer/types.js';
import { seededRandom, type Clock } from './core/clock.js';
import { GatewayError } from './core/errors.js';
import { Fleet } from './core/fleet.js';
import { LoadTracker } from './core/load-tracker.js';
import { OutlierDetector, type OutlierStats } from './core/outlier.js';
import { WorkerPool, type Worker } from './core/pool.js';
import type { Provisioner, TaskSpec } from './core/types.js';
import { buildHttpApp } from './http/app.js';
import { PROVISIONERS, type ProvisionerName } from './provisioners/registry.js';
import { loadTask, taskPort } from './provisioners/task.js';
import { systemClock } from './runtime/system-clock.js';
import { loadTls } from './runtime/tls.js';
import { EventHub, type EventListener } from './service/events.js';
import { createHealthHandlers, HealthStatus, ServingStatus } from './service/grpc-health.js';
import { createInferenceHandlers } from './service/grpc-inference.js';
import { createNodeControlHandlers } from './service/grpc-node-control.js';
import { startGrpcServer, type GrpcListener, type TlsFiles } from './service/grpc-server.js';
import { InferenceService, type InferenceStats } from './service/inference.js';
import type { ControlPlane, GatewayStatus, ScaleBounds } from './service/status.js';
import { workerNameFor } from './service/workers.js';
import { createLogger, type LogFormat, type Logger } from './telemetry/logger.js';
import { Telemetry } from './telemetry/telemetry.js';
import { EngineMetricsScraper } from './upstream/engine-metrics.js';
import { HttpProber } from './upstream/prober.js';
import { UpstreamClient } from './upstream/client.js';

export type { Config, FlockServeOptions } from './config/options.js';
export type { GatewayStatus, ScaleBounds } from './service/status.js';

export type ReliabilityStats = InferenceStats & OutlierStats;

export interface FlockServeDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Replaces the provisioner the options name (tests, embedding). */
  readonly provisioner?: Provisioner;
  /** Request spans go here when otel_traces is on (default: exported over OTLP to otel_collector_endpoint). */
  readonly tracer?: Tracer;
}

export interface Listening {
  readonly httpUrl: string;
  readonly httpPort: number;
  readonly grpcAddress: string;
  readonly grpcPort: number;
}

/**
 * The gateway: HTTP and gRPC listeners over one InferenceService, a fleet of workers made
 * by a provisioner, the autoscaler, and the status line.
 *
 *   const gw = new FlockServe({ skypilotTask: 'examples/serving_sim_local.yaml', provisioner: 'local' });
 *   await gw.run();  ...  await gw.close();
 */
export class FlockServe implements ControlPlane {
  readonly config: Config;
  readonly log: Logger;
  readonly #clock: Clock;
  readonly #deps: FlockServeDeps;
  readonly #startedAt: number;
  #parts: Parts | undefined;
  #closing: Promise<void> | undefined;
  /** [min_workers, max_workers], changed at runtime by setScaleBounds. */
  #bounds: { min: number; max: number };
  /** Worker state changes and autoscaler decisions for WatchEvents. */
  readonly #events: EventHub;
  /** grpc.health.v1 status: SERVING once listening, NOT_SERVING from the start of shutdown. */
  readonly #health = new HealthStatus(['flockserve.v1.InferenceService', 'flockserve.v1.NodeControlService']);
  /** When an operator last added a worker: holds off scale-down like an autoscaler scale-up. */
  #lastManualAddAt: number | undefined;

  constructor(options: FlockServeOptions | Config, deps: FlockServeDeps = {}) {
    // A resolved Config passes through unchanged; partial options get defaults and validation.
    this.config = resolveOptions(options as unknown as Record<string, unknown>);
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
    this.log = deps.logger ?? createLogger(this.config.verbosity, undefined, this.config.logFormat as LogFormat);
    this.#startedAt = this.#clock.now();
    this.#bounds = { min: this.config.minWorkers, max: this.config.maxWorkers };
    if (this.#bounds.min > this.#bounds.max) {
      throw new ConfigError(`min_workers ${this.#bounds.min} is above max_workers ${this.#bounds.max}`);
    }
    this.#events = new EventHub(this.#clock);
  }

  get nodeControlKey(): string | undefined {
    return this.config.nodeControlKey;
  }

  /** Loads the task, starts the listeners, adopts or launches workers. Resolves once listening. */
  async run(): Promise<Listening> {
    if (this.#parts) throw new Error('FlockServe is already running');
    const c = this.config;
    const task = await loadTask(c.skypilotTask);
    const port = taskPort(task, c.port);
    const tls = await loadTls(c.tlsCert, c.tlsKey);
    const parts = this.#assemble(task, tls);
    this.#parts = parts;
    // Fail before binding any port when the provisioner cannot work (e.g. `sky` is not installed).
    await parts.provisioner.start?.();

    await parts.http.listen({ host: c.host, port });
    const httpPort = (parts.http.server.address() as { port: number }).port;
    const grpcPort = c.grpcPort >= 0 ? c.grpcPort : httpPort + 1;
    parts.grpc = await startGrpcServer({
      host: c.host,
      port: grpcPort,
      inference: createInferenceHandlers(parts.service, parts.telemetry.observer),
      nodeControl: createNodeControlHandlers(this, this.#clock),
      health: createHealthHandlers(this.#health),
      maxMessageBytes: c.maxBodySize,
      tls,
    });
    this.#health.setAll(ServingStatus.SERVING);

    const adopted = await parts.fleet.adopt({ reinit: c.reinit });
    if (adopted.adopted.length > 0) this.log.info({ adopted: adopted.adopted }, 'adopted running workers');
    if (adopted.reinitialized.length > 0) {
      this.log.info({ reinitialized: adopted.reinitialized }, 'reinit: relaunching the task on running workers');
    }
    const kept = adopted.adopted.length + adopted.reinitialized.length;
    parts.fleet.scaleTo(Math.min(c.maxWorkers, Math.max(c.minWorkers, kept)));
    parts.autoscaler.start();
    parts.engineMetrics?.start();
    this.#scheduleStatusLine();

    const shown = c.host === '0.0.0.0' || c.host === '::' ? 'localhost' : c.host;
    return {
      httpUrl: `${tls ? 'https' : 'http'}://${shown}:${httpPort}`,
      httpPort,
      grpcAddress: `${shown}:${parts.grpc.port}`,
      grpcPort: parts.grpc.port,
    };
  }

  #assemble(task: TaskSpec, tls: TlsFiles | undefined): Parts {
    const c = this.config;
    const clock = this.#clock;
    const pool = new WorkerPool(clock);
    const tracker = new LoadTracker(clock, c.queueTrackingWindow * 1000);
    const panicTracker = tracker.withWindow(c.panicWindow * 1000);
    const random = seededRandom(c.seed ?? Math.floor(Math.random() * 2 ** 32));
    const balancer = createBalancer(c.loadBalancer, balancerOptions(c, clock));
    // engine-load reads the engines' /metrics; the scraper pushes them in, off the request path.
    const engineMetrics = isEngineLoadSink(balancer)
      ? new EngineMetricsScraper({
          clock,
          intervalMs: c.engineMetricsInterval * 1000,
          workers: () => pool.readyWorkers(),
          sink: balancer,
          onError: (worker, err) =>
            this.log.warn({ worker: worker.name, err }, 'engine metrics scrape failing; its load counts as unknown'),
          onRecover: (worker) => this.log.info({ worker: worker.name }, 'engine metrics scrape recovered'),
        })
      : undefined;
    // The provisioner and the admission queue call the fleet, which is made after them.
    const fleetRef: { current?: Fleet } = {};
    const provisioner =
      this.#deps.provisioner ??
      this.#createProvisioner(c.provisioner, task, (name, reason) => fleetRef.current?.lost(name, reason));
    const upstream = new UpstreamClient({
      connections: c.workerCapacity,
      connectTimeoutMs: c.connectTimeout * 1000,
      headersTimeoutMs: c.firstByteTimeout * 1000,
      bodyTimeoutMs: c.idleTimeout * 1000,
    });
    const admission = new Admission({
      pool,
      balancer,
      clock,
      tracker,
      random,
      maxQueueLength: c.maxQueueLength,
      coldStartTimeoutMs: c.coldStartTimeout * 1000,
      // Scale from zero: a request with no worker anywhere launches one at once.
      onDemand: () => autoscaler.demand(),
    });
    const outlier = new OutlierDetector({
      pool,
      clock,
      consecutiveFailures: c.outlierConsecutiveFailures,
      baseEjectionMs: c.outlierEjectionTime * 1000,
      onEject: (w, info) => {
        telemetry.metrics.ejection(w.name, 'consecutive_failures');
        this.log.warn({ worker: w.name, ...info }, `worker ${w.name} ejected after ${info.failures} failures in a row`);
      },
      onReadmit: (w, reason) => {
        this.log.info({ worker: w.name, reason }, `worker ${w.name} readmitted`);
        admission.wake();
      },
    });
    const fleet = new Fleet({
      pool,
      provisioner,
      prober: new HttpProber({ path: c.workerReadyPath, timeoutMs: c.workerProbeTimeout * 1000 }),
      task,
      clock,
      namePrefix: c.workerNamePrefix,
      capacity: c.workerCapacity,
      probeIntervalMs: c.workerProbeInterval * 1000,
      unhealthyTimeoutMs: c.workerUnhealthyTimeout * 1000,
      drainTimeoutMs: c.drainTimeout * 1000,
      maxLaunchRetries: c.maxLaunchRetries,
      retryDelayMs: c.launchRetryDelay * 1000,
      random,
      log: (level, msg, fields) => this.log[level](fields ?? {}, msg),
      onReady: () => admission.wake(),
      onProbe: (w, ok) => outlier.probed(w, ok),
    });
    fleetRef.current = fleet;
    const telemetry = new Telemetry({
      config: c,
      clock,
      log: this.log,
      tracer: this.#deps.tracer,
      state: {
        workers: () => pool.list(),
        queueLength: () => tracker.current(),
        queueLengthMean: () => tracker.mean(),
        gatewayQueueLength: () => admission.waiting,
        totalRequests: () => service.totalRequests,
        fleetStats: () => fleet.stats,
        targetWorkers: () => fleet.target,
      },
    });
    pool.onChange((change) => telemetry.metrics.workerChanged(change, clock.now()));
    pool.onChange(({ worker, previous, reason }) => {
      this.log.info(
        { worker: worker.name, from: previous, to: worker.state, reason },
        `worker ${worker.name} ${worker.state}`,
      );
      if (worker.state === 'gone' && worker.url) void upstream.forget(worker.url);
      this.#events.workerChanged({ worker, previous, reason });
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
      onRelease: () => fleet.notifyRelease(),
      onRetry: (worker, reason) => {
        telemetry.metrics.retry(worker, reason);
        this.log.warn({ worker, reason }, 'retrying on another worker');
      },
      onOutcome: (w, ok) => (ok ? outlier.success(w) : outlier.failure(w)),
      onMidStreamFailure: (worker, err) => {
        telemetry.metrics.answerFailure(worker, err.code);
        this.log.warn({ worker, code: err.code, err: err.message }, 'answer failed after its headers');
      },
      onRepetitionGuard: (worker) => {
        telemetry.metrics.repetitionGuardTrip(worker);
        this.log.warn({ worker }, 'repetition guard ended a stream');
      },
    });
    const policy = createAutoscaler(c.autoscaler, c);
    const config = scaleConfig(c);
    const autoscaler = new AutoscalerController({
      clock,
      policy,
      intervalMs: c.autoscaleInterval * 1000,
      // A manual add holds off scale-down as an autoscaler scale-up does.
      snapshot: () => ({
        ...takeSnapshot({ tracker, panicTracker, workers: () => pool.list(), bounds: () => this.#bounds, config }),
        ...(this.#lastManualAddAt === undefined ? {} : { lastScaleUpAt: this.#lastManualAddAt }),
      }),
      // Every decision with its inputs at debug (counted, and sent to WatchEvents); the ones that change the fleet at info.
      onDecision: (decision, snap) => {
        const current = activeWorkers(snap);
        telemetry.metrics.autoscalerEvaluated(
          decision.desired > current ? 'up' : decision.desired < current ? 'down' : 'none',
        );
        this.log.debug({ ...decisionFields(decision, snap), policy: policy.name }, 'autoscaler decision');
        this.#events.decision({
          policy: policy.name,
          currentWorkers: current,
          desiredWorkers: decision.desired,
          queueLengthRunningMean: snap.queueLengthMean,
          reason: decision.reason,
        });
      },
      apply: (desired, decision, snap) => {
        this.log.info({ ...decisionFields(decision, snap), policy: policy.name }, 'autoscaler scales the fleet');
        fleet.scaleTo(desired);
      },
      onError: (err) => this.log.error({ err }, 'autoscaler evaluation failed'),
    });
    const http = buildHttpApp({
      service,
      plane: this,
      maxBodySize: c.maxBodySize,
      maxHeaderSize: c.maxHeaderSize,
      maxJsonDepth: c.maxJsonDepth,
      tls,
      log: { warn: (o, m) => this.log.warn(o, m), error: (o, m) => this.log.error(o, m) },
      observer: telemetry.observer,
      metricsText: () => telemetry.prometheusText(),
    });
    return {
      pool,
      tracker,
      admission,
      fleet,
      outlier,
      service,
      upstream,
      provisioner,
      autoscaler,
      engineMetrics,
      http,
      telemetry,
      grpc: undefined,
    };
  }

  #createProvisioner(name: string, task: TaskSpec, onWorkerLost: (name: string, reason: string) => void): Provisioner {
    const factory = PROVISIONERS[name as ProvisionerName];
    if (!factory) throw new Error(`provisioner ${name} is not available in this build`);
    const c = this.config;
    return factory({
      workers: c.workers,
      log: (level, msg) => this.log[level](msg),
      onWorkerLost,
      logDir: c.logDir?.replace(/^~(?=$|\/)/, homedir()),
      workerPort: task.ports[0] ?? c.port,
      skypilot: {
        workerEnv: c.workerEnv,
        autostopMinutes: c.workerAutostopMinutes,
        maxConcurrentLaunches: c.maxConcurrentLaunches,
        launchTimeoutMs: c.launchTimeout * 1000,
        commandTimeoutMs: c.skyCommandTimeout * 1000,
        refreshIntervalMs: c.skyRefreshInterval * 1000,
      },
      clock: this.#clock,
    });
  }

  #statusTimer: { cancel(): void } | undefined;

  #scheduleStatusLine(): void {
    const every = this.config.statusLogInterval * 1000;
    if (every <= 0) return;
    this.#statusTimer = this.#clock.setTimer(every, () => {
      const s = this.status();
      this.log.info(
        `Workers: ${s.workerCount}, Workers Ready: ${s.readyWorkerCount}, Worker Load: ${s.currentQueueLength}, QLRM: ${s.queueLengthRunningMean.toFixed(2)}`,
      );
      this.#scheduleStatusLine();
    });
  }

  status(): GatewayStatus {
    const p = this.#parts;
    const workers = p ? p.pool.list() : [];
    return {
      // An ejected worker is ready but takes no traffic: it does not count as ready here.
      readyWorkerCount: workers.filter((w) => w.state === 'ready' && !w.ejected).length,
      workerCount: workers.filter((w) => w.state !== 'gone').length,
      queueLengthRunningMean: p ? p.tracker.mean() : 0,
      currentQueueLength: p ? p.tracker.current() : 0,
      gatewayQueueLength: p ? p.admission.waiting : 0,
      uptimeSeconds: (this.#clock.now() - this.#startedAt) / 1000,
      totalRequests: p ? p.service.totalRequests : 0,
      workerNames: workers.map((w) => w.name),
      minWorkers: this.#bounds.min,
      maxWorkers: this.#bounds.max,
      autoscaler: this.config.autoscaler,
      loadBalancer: this.config.loadBalancer,
      provisioner: p?.provisioner.kind ?? this.config.provisioner,
      failedLaunches: p ? p.fleet.stats.launchGiveUps : 0,
      unterminatedClusters: p ? p.fleet.unterminated() : [],
    };
  }

  /**
   * Reliability counters (retries, answers that failed after their headers, repetition-guard
   * trips, requests cut at shutdown, outlier ejections and readmissions), for metrics.
   */
  reliabilityStats(): ReliabilityStats {
    const p = this.#parts;
    return {
      ...(p?.service.stats ?? {
        requests: 0,
        retries: 0,
        midStreamFailures: 0,
        repetitionGuardTrips: 0,
        abortedAtShutdown: 0,
      }),
      ...(p?.outlier.stats ?? { ejections: 0, readmissions: 0, sparedLastWorker: 0 }),
    };
  }

  workers(): Worker[] {
    return this.#parts ? this.#parts.pool.list() : [];
  }

  // ---- node control (gRPC NodeControl, flockctl, /add_new_node) ------------------------

  /** The running parts, or shutting_down once close() began (or before run()). */
  #live(): Parts {
    if (!this.#parts || this.#closing) throw new GatewayError('shutting_down');
    return this.#parts;
  }

  #known(p: Parts, name: string): Worker {
    const w = p.pool.get(name);
    if (w) return w;
    const names = p.pool.list().map((x) => x.name);
    throw new GatewayError('unknown_worker', {
      message: `No worker is named ${name} (workers: ${names.length > 0 ? names.join(', ') : 'none'}).`,
      param: 'name',
    });
  }

  addWorker(name?: string): Worker {
    const p = this.#live();
    const chosen = name === undefined ? undefined : workerNameFor(name, this.config.workerNamePrefix);
    if (chosen !== undefined && p.pool.get(chosen))
      throw new GatewayError('worker_exists', { message: `A worker named ${chosen} already exists.`, param: 'name' });
    const live = p.fleet.live().length;
    if (live >= this.#bounds.max) {
      throw new GatewayError('at_max_workers', {
        message: `The fleet has ${live} workers and max_workers is ${this.#bounds.max}; raise it first (flockctl scale --max ${live + 1}).`,
      });
    }
    let w: Worker;
    try {
      w = p.fleet.launch(chosen);
    } catch (err) {
      // A cluster of that name is still being torn down (the pool check above passed).
      throw new GatewayError('worker_exists', { message: (err as Error).message, cause: err });
    }
    this.#lastManualAddAt = this.#clock.now();
    this.log.info({ worker: w.name }, 'node control: worker added');
    return w;
  }

  removeWorker(name?: string): Worker {
    const p = this.#live();
    const w = name === undefined ? leastLoaded(p.fleet.live()) : this.#known(p, name);
    if (!w) throw new GatewayError('unknown_worker', { message: 'There is no worker to remove.' });
    if (w.state === 'draining' || w.state === 'terminating') return w; // already leaving
    p.fleet.remove(w.name).catch((err: unknown) => this.log.error({ err, worker: w.name }, 'removing a worker failed'));
    this.log.info({ worker: w.name }, 'node control: removing worker');
    return w;
  }

  drainWorker(name: string): Worker {
    const p = this.#live();
    const w = this.#known(p, name);
    if (w.state === 'draining' || w.state === 'terminating') return w;
    p.fleet.drain(w.name).catch((err: unknown) => this.log.error({ err, worker: w.name }, 'draining a worker failed'));
    this.log.info({ worker: w.name }, 'node control: draining worker');
    return w;
  }

  /**
   * Changes [min_workers, max_workers] at runtime; an omitted bound keeps its value. The
   * autoscaler decides at once with the new bounds rather than at its next tick.
   */
  setScaleBounds(min?: number, max?: number): ScaleBounds {
    const next = { min: min ?? this.#bounds.min, max: max ?? this.#bounds.max };
    const whole = (n: number): boolean => Number.isInteger(n) && n >= 0;
    if (!whole(next.min) || !whole(next.max) || next.max < 1 || next.min > next.max) {
      throw new GatewayError('bad_request', {
        message: `scale bounds need 0 ≤ min_workers ≤ max_workers and max_workers ≥ 1, got min ${next.min}, max ${next.max}`,
      });
    }
    this.#bounds = next;
    this.log.info({ minWorkers: next.min, maxWorkers: next.max }, 'scale bounds changed');
    if (this.#parts && !this.#closing) {
      try {
        this.#parts.autoscaler.evaluateNow();
      } catch (err) {
        this.log.error({ err }, 'autoscaler evaluation failed');
      }
    }
    return { minWorkers: next.min, maxWorkers: next.max };
  }

  watch(listener: EventListener): () => void {
    return this.#events.subscribe(listener);
  }

  /**
   * Graceful stop: refuse new requests, let in-flight ones finish (up to drain_timeout),
   * then tear the workers down, or leave them running with keepWorkers (default: option
   * keep_workers_on_exit). Safe to call more than once.
   */
  close(opts: { keepWorkers?: boolean } = {}): Promise<void> {
    this.#closing ??= this.#shutdown({ keepWorkers: opts.keepWorkers ?? this.config.keepWorkersOnExit });
    return this.#closing;
  }

  async #shutdown(opts: { keepWorkers?: boolean }): Promise<void> {
    const p = this.#parts;
    if (!p) return;
    const graceMs = this.config.drainTimeout * 1000;
    this.#health.setAll(ServingStatus.NOT_SERVING);
    p.autoscaler.stop();
    p.engineMetrics?.stop();
    this.#statusTimer?.cancel();
    p.admission.close(new GatewayError('shutting_down'));
    // Keep-alive connections whose last response finished after close() began would hold the
    // server open until their idle timeout: close them as they go idle. At drain_timeout the
    // requests still running are ended with an explicit shutting_down error (a stream gets its
    // error event, a whole answer a 503); a second later whatever is left is cut.
    const sweep = setInterval(() => p.http.server.closeIdleConnections(), 50);
    const abort = setTimeout(() => {
      const n = p.service.abortAll(
        new GatewayError('shutting_down', {
          message: 'The gateway is shutting down and its drain timeout has passed.',
        }),
      );
      if (n > 0) this.log.warn({ requests: n }, 'drain timeout: ending the requests still running');
    }, graceMs);
    const force = setTimeout(() => p.http.server.closeAllConnections(), graceMs + CUT_AFTER_ABORT_MS);
    await Promise.all([p.http.close(), p.grpc?.close(graceMs + CUT_AFTER_ABORT_MS)]);
    clearInterval(sweep);
    clearTimeout(abort);
    clearTimeout(force);
    const names = p.fleet.live().map((w) => w.name);
    this.log.info(
      { workers: names },
      opts.keepWorkers
        ? `keep_workers_on_exit: leaving ${names.length} workers running for the next start to adopt (launches in progress are torn down)`
        : `tearing down ${names.length} workers`,
    );
    await p.fleet.shutdown({ keepWorkers: opts.keepWorkers ?? false });
    const leaked = p.fleet.unterminated();
    if (leaked.length > 0) {
      this.log.error(
        { clusters: leaked },
        `these clusters could not be torn down and may still be running: ${leaked.join(', ')}`,
      );
    }
    await p.upstream.close();
    await p.provisioner.close?.();
    await p.telemetry.close();
    this.log.info('stopped');
    this.log.flush();
  }
}

/** Time between ending the requests left at drain_timeout (error tails) and cutting their connections. */
const CUT_AFTER_ABORT_MS = 1000;

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

/** Whom an unnamed remove takes: the ready worker with the fewest requests in flight (the newest on a tie), else any live one. */
function leastLoaded(live: Worker[]): Worker | undefined {
  const ready = live.filter((w) => w.state === 'ready');
  const pool = ready.length > 0 ? ready : live;
  return pool.reduce<Worker | undefined>(
    (best, w) =>
      !best || w.inFlight < best.inFlight || (w.inFlight === best.inFlight && w.createdAt >= best.createdAt) ? w : best,
    undefined,
  );
}

interface Parts {
  readonly pool: WorkerPool;
  readonly tracker: LoadTracker;
  readonly admission: Admission;
  readonly fleet: Fleet;
  readonly outlier: OutlierDetector;
  readonly service: InferenceService;
  readonly upstream: UpstreamClient;
  readonly provisioner: Provisioner;
  readonly autoscaler: AutoscalerController;
  readonly engineMetrics: EngineMetricsScraper | undefined;
  readonly http: FastifyInstance;
  readonly telemetry: Telemetry;
  grpc: GrpcListener | undefined;
}
