import type { FastifyInstance } from 'fastify';
import { resolveOptions } from './config/resolve.js';
import type { Config, FlockServeOptions } from './config/options.js';
import { Admission } from './core/admission.js';
import { AutoscalerController } from './core/autoscaler/controller.js';
import { createAutoscaler } from './core/autoscaler/registry.js';
import { countWorkers } from './core/autoscaler/snapshot.js';
import type { ScaleSnapshot } from './core/autoscaler/types.js';
import { createBalancer } from './core/balancer/registry.js';
import { isEngineLoadSink } from './core/balancer/types.js';
import { ENGINE_LOAD_DEFAULTS } from './core/balancer/engine-load.js';
import { seededRandom, type Clock } from './core/clock.js';
import { GatewayError } from './core/errors.js';
import { Fleet } from './core/fleet.js';
import { LoadTracker } from './core/load-tracker.js';
import { WorkerPool, type Worker } from './core/pool.js';
import type { Provisioner, TaskSpec } from './core/types.js';
import { buildHttpApp } from './http/app.js';
import { PROVISIONERS, type ProvisionerName } from './provisioners/registry.js';
import { loadTask, taskPort } from './provisioners/task.js';
import { systemClock } from './runtime/system-clock.js';
import { createInferenceHandlers } from './service/grpc-inference.js';
import { createNodeControlHandlers } from './service/grpc-node-control.js';
import { startGrpcServer, type GrpcListener } from './service/grpc-server.js';
import { InferenceService } from './service/inference.js';
import type { ControlPlane, GatewayStatus } from './service/status.js';
import { createLogger, type Logger } from './telemetry/logger.js';
import { EngineMetricsScraper } from './upstream/engine-metrics.js';
import { HttpProber } from './upstream/prober.js';
import { UpstreamClient } from './upstream/client.js';

export type { Config, FlockServeOptions } from './config/options.js';
export type { GatewayStatus } from './service/status.js';

export interface FlockServeDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Replaces the provisioner the options name (tests, embedding). */
  readonly provisioner?: Provisioner;
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

  constructor(options: FlockServeOptions | Config, deps: FlockServeDeps = {}) {
    // A resolved Config passes through unchanged; partial options get defaults and validation.
    this.config = resolveOptions(options as unknown as Record<string, unknown>);
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
    this.log = deps.logger ?? createLogger(this.config.verbosity);
    this.#startedAt = this.#clock.now();
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
    const parts = this.#assemble(task);
    this.#parts = parts;

    await parts.http.listen({ host: c.host, port });
    const httpPort = (parts.http.server.address() as { port: number }).port;
    const grpcPort = c.grpcPort >= 0 ? c.grpcPort : httpPort + 1;
    parts.grpc = await startGrpcServer({
      host: c.host,
      port: grpcPort,
      inference: createInferenceHandlers(parts.service),
      nodeControl: createNodeControlHandlers(this, this.#clock),
      maxMessageBytes: c.maxBodySize,
    });

    const adopted = await parts.fleet.adopt();
    if (adopted.adopted.length > 0) this.log.info({ adopted: adopted.adopted }, 'adopted running workers');
    parts.fleet.scaleTo(Math.min(c.maxWorkers, Math.max(c.minWorkers, adopted.adopted.length)));
    parts.autoscaler.start();
    parts.engineMetrics?.start();
    this.#scheduleStatusLine();

    const shown = c.host === '0.0.0.0' || c.host === '::' ? 'localhost' : c.host;
    return {
      httpUrl: `http://${shown}:${httpPort}`,
      httpPort,
      grpcAddress: `${shown}:${parts.grpc.port}`,
      grpcPort: parts.grpc.port,
    };
  }

  #assemble(task: TaskSpec): Parts {
    const c = this.config;
    const clock = this.#clock;
    const pool = new WorkerPool(clock);
    const tracker = new LoadTracker(clock, c.queueTrackingWindow * 1000);
    const random = seededRandom(c.seed ?? Math.floor(Math.random() * 2 ** 32));
    const balancer = createBalancer(c.loadBalancer, {
      clock,
      cacheThreshold: c.cacheThreshold,
      balanceAbsThreshold: c.balanceAbsThreshold,
      balanceRelThreshold: c.balanceRelThreshold,
      prefixTreeMaxChars: c.prefixTreeMaxChars,
      sessionLoadFactor: c.sessionLoadFactor,
      engineMetricsStaleMs: ENGINE_LOAD_DEFAULTS.staleIntervals * c.engineMetricsInterval * 1000,
    });
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
      this.#createProvisioner(c.provisioner, (name, reason) => fleetRef.current?.lost(name, reason));
    const upstream = new UpstreamClient({ connections: c.workerCapacity });
    const admission = new Admission({
      pool,
      balancer,
      clock,
      tracker,
      random,
      maxQueueLength: c.maxQueueLength,
      // Scale from zero: a request with no worker anywhere launches one at once.
      onDemand: () => {
        if (fleetRef.current?.target === 0) fleetRef.current.scaleTo(1);
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
      log: (level, msg, fields) => this.log[level](fields ?? {}, msg),
      onReady: () => admission.wake(),
    });
    fleetRef.current = fleet;
    pool.onChange(({ worker, previous, reason }) => {
      this.log.info(
        { worker: worker.name, from: previous, to: worker.state, reason },
        `worker ${worker.name} ${worker.state}`,
      );
      if (worker.state === 'gone' && worker.url) void upstream.forget(worker.url);
    });
    const service = new InferenceService({
      admission,
      upstream,
      queueTimeoutMs: c.queueTimeout * 1000,
      maxRetries: 2,
      onRelease: () => fleet.notifyRelease(),
      onRetry: (worker, reason) => this.log.warn({ worker, reason }, 'retrying on another worker'),
    });
    const policy = createAutoscaler(c.autoscaler);
    const autoscaler = new AutoscalerController({
      clock,
      policy,
      intervalMs: c.autoscaleInterval * 1000,
      snapshot: (): ScaleSnapshot => ({
        queueLengthMean: tracker.mean(),
        queueLength: tracker.current(),
        workers: countWorkers(pool.list()),
        minWorkers: this.#bounds.min,
        maxWorkers: this.#bounds.max,
        config: {
          autoscaleUp: c.autoscaleUp,
          autoscaleDown: c.autoscaleDown,
          downscaleDelayMs: c.downscaleDelay * 1000,
        },
      }),
      apply: (desired, decision) => {
        this.log.info({ desired, reason: decision.reason }, 'autoscaler decision');
        fleet.scaleTo(desired);
      },
      onError: (err) => this.log.error({ err }, 'autoscaler evaluation failed'),
    });
    const http = buildHttpApp({
      service,
      plane: this,
      maxBodySize: c.maxBodySize,
      log: { warn: (o, m) => this.log.warn(o, m), error: (o, m) => this.log.error(o, m) },
    });
    return {
      pool,
      tracker,
      admission,
      fleet,
      service,
      upstream,
      provisioner,
      autoscaler,
      engineMetrics,
      http,
      grpc: undefined,
    };
  }

  #createProvisioner(name: string, onWorkerLost: (name: string, reason: string) => void): Provisioner {
    const factory = PROVISIONERS[name as ProvisionerName];
    if (!factory) throw new Error(`provisioner ${name} is not available in this build`);
    return factory({
      workers: this.config.workers,
      log: (level, msg) => this.log[level](msg),
      onWorkerLost,
    });
  }

  get #bounds(): { min: number; max: number } {
    return { min: this.config.minWorkers, max: this.config.maxWorkers };
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
      readyWorkerCount: workers.filter((w) => w.state === 'ready').length,
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
    };
  }

  workers(): Worker[] {
    return this.#parts ? this.#parts.pool.list() : [];
  }

  /**
   * Graceful stop: refuse new requests, let in-flight ones finish (up to drain_timeout),
   * then tear the workers down. Safe to call more than once.
   */
  close(opts: { keepWorkers?: boolean } = {}): Promise<void> {
    this.#closing ??= this.#shutdown(opts);
    return this.#closing;
  }

  async #shutdown(opts: { keepWorkers?: boolean }): Promise<void> {
    const p = this.#parts;
    if (!p) return;
    const graceMs = this.config.drainTimeout * 1000;
    p.autoscaler.stop();
    p.engineMetrics?.stop();
    this.#statusTimer?.cancel();
    p.admission.close(new GatewayError('shutting_down'));
    // Keep-alive connections whose last response finished after close() began would hold the
    // server open until their idle timeout: close them as they go idle; force the rest at the grace.
    const sweep = setInterval(() => p.http.server.closeIdleConnections(), 50);
    const force = setTimeout(() => p.http.server.closeAllConnections(), graceMs);
    await Promise.all([p.http.close(), p.grpc?.close(graceMs)]);
    clearInterval(sweep);
    clearTimeout(force);
    this.log.info(opts.keepWorkers ? 'leaving workers running for the next start' : 'stopping workers');
    await p.fleet.shutdown({ keepWorkers: opts.keepWorkers ?? false });
    await p.upstream.close();
    await p.provisioner.close?.();
    this.log.info('stopped');
    this.log.flush();
  }
}

interface Parts {
  readonly pool: WorkerPool;
  readonly tracker: LoadTracker;
  readonly admission: Admission;
  readonly fleet: Fleet;
  readonly service: InferenceService;
  readonly upstream: UpstreamClient;
  readonly provisioner: Provisioner;
  readonly autoscaler: AutoscalerController;
  readonly engineMetrics: EngineMetricsScraper | undefined;
  readonly http: FastifyInstance;
  grpc: GrpcListener | undefined;
}
