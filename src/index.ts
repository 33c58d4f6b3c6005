import type { Tracer } from '@opentelemetry/api';
import { homedir } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { ConfigError, resolveOptions } from './config/resolve.js';
import type { Config, FlockServeOptions } from './config/options.js';
import { seededRandom, type Clock, type TimerHandle } from './core/clock.js';
import { GatewayError } from './core/errors.js';
import type { OutlierStats } from './core/outlier.js';
import type { Coordinator } from './core/coordination.js';
import type { Provisioner, ProvisionerFence, TaskSpec, Worker } from './core/types.js';
import { checkCoordinationOptions, createCoordinator } from './coordination/index.js';
import { assembleGateway, type Gateway } from './gateway/assemble.js';
import { buildHttpApp } from './http/app.js';
import type { ProvisionerName } from './provisioners/names.js';
import { PROVISIONERS } from './provisioners/registry.js';
import { checkTask, loadTask, taskPort } from './provisioners/task.js';
import { SendTimeout } from './service/send-timeout.js';
import { IdleCollection } from './runtime/idle-collection.js';
import { systemClock } from './runtime/system-clock.js';
import { loadTls, type TlsFiles } from './runtime/tls.js';
import { ApiKeys } from './service/auth.js';
import { GatewayControlPlane, type ScaleState } from './service/control-plane.js';
import { ClientConnectionStats } from './service/connections.js';
import { EventHub, type EventListener } from './service/events.js';
import { createHealthHandlers, HealthStatus, ServingStatus } from './service/grpc-health.js';
import { createInferenceHandlers } from './service/grpc-inference.js';
import { createNodeControlHandlers } from './service/grpc-node-control.js';
import { startGrpcServer, type GrpcListener } from './service/grpc-server.js';
import type { InferenceStats } from './service/inference.js';
import type { ControlPlane, GatewayStatus, ScaleBounds } from './service/status.js';
import { createLogger, type LogFormat, type Logger } from './telemetry/logger.js';
import { Telemetry } from './telemetry/telemetry.js';
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

/** What run() would start, as check() found it. */
export interface StartPlan {
  readonly task: TaskSpec;
  readonly httpPort: number;
  /** 0 when the HTTP port is 0 (both pick a free port). */
  readonly grpcPort: number;
  readonly tls: TlsFiles | undefined;
}

export interface Listening {
  readonly httpUrl: string;
  readonly httpPort: number;
  readonly grpcAddress: string;
  readonly grpcPort: number;
}

/**
 * The gateway: HTTP and gRPC listeners over the core that src/gateway assembles (one
 * InferenceService, a fleet of workers made by a provisioner, the autoscaler), node control,
 * and the status line. This class is the programmatic API and the lifecycle only.
 *
 *   const gw = new FlockServe({ skypilotTask: 'examples/serving_sim_local.yaml', provisioner: 'local' });
 *   await gw.run();  ...  await gw.close();
 */
export class FlockServe implements ControlPlane {
  readonly config: Config;
  readonly log: Logger;
  readonly #clock: Clock;
  readonly #deps: FlockServeDeps;
  #parts: Parts | undefined;
  #closing: Promise<void> | undefined;
  /** [min_workers, max_workers] (changed at runtime by setScaleBounds) and the manual-add hold. */
  readonly #scale: ScaleState;
  /** Worker state changes and autoscaler decisions for WatchEvents. */
  readonly #events: EventHub;
  readonly #plane: GatewayControlPlane;
  /** grpc.health.v1 status: SERVING once listening, NOT_SERVING from the start of shutdown. */
  readonly #health = new HealthStatus(['flockserve.v1.InferenceService', 'flockserve.v1.NodeControlService']);

  constructor(options: FlockServeOptions | Config, deps: FlockServeDeps = {}) {
    // A resolved Config passes through unchanged; partial options get defaults and validation.
    this.config = resolveOptions(options as unknown as Record<string, unknown>);
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
    this.log = deps.logger ?? createLogger(this.config.verbosity, undefined, this.config.logFormat as LogFormat);
    this.#scale = { min: this.config.minWorkers, max: this.config.maxWorkers, lastManualAddAt: undefined };
    if (this.#scale.min > this.#scale.max) {
      throw new ConfigError(`min_workers ${this.#scale.min} is above max_workers ${this.#scale.max}`);
    }
    this.#events = new EventHub(this.#clock);
    this.#plane = new GatewayControlPlane({
      config: this.config,
      clock: this.#clock,
      log: this.log,
      events: this.#events,
      scale: this.#scale,
    });
  }

  get nodeControlKey(): string | undefined {
    return this.#plane.nodeControlKey;
  }

  /** The assembled core while running (pool, fleet, service, autoscaler...); undefined before run(). */
  get gateway(): Gateway | undefined {
    return this.#parts?.gateway;
  }

  /**
   * Checks what run() would start without starting anything: the task file (readable, valid,
   * with what the provisioner needs of it), the port, the TLS files, the etcd options. Throws a ConfigError that
   * names the problem; `flockserve --check` prints the plan.
   */
  async check(): Promise<StartPlan> {
    const c = this.config;
    const task = await loadTask(c.skypilotTask);
    checkTask(task, c.provisioner);
    const httpPort = taskPort(task, c.port);
    const tls = await loadTls(c.tlsCert, c.tlsKey);
    checkCoordinationOptions(c);
    return { task, httpPort, grpcPort: c.grpcPort >= 0 ? c.grpcPort : httpPort === 0 ? 0 : httpPort + 1, tls };
  }

  /** Checks the configuration, starts the listeners, adopts or launches workers. Resolves once listening. */
  async run(): Promise<Listening> {
    if (this.#parts) throw new Error('FlockServe is already running');
    const c = this.config;
    const { task, httpPort: port, tls } = await this.check();
    const coordinator = await createCoordinator(c, this.log);
    const parts = this.#assemble(task, tls, coordinator);
    this.#parts = parts;
    const g = parts.gateway;
    // Fail before binding any port when the provisioner cannot work (e.g. `sky` is not installed).
    await g.provisioner.start?.();

    await parts.http.listen({ host: c.host, port });
    const httpPort = (parts.http.server.address() as { port: number }).port;
    const grpcPort = c.grpcPort >= 0 ? c.grpcPort : httpPort + 1;
    parts.grpc = await startGrpcServer({
      host: c.host,
      port: grpcPort,
      inference: createInferenceHandlers(g.service, parts.telemetry.observer, {
        maxJsonDepth: c.maxJsonDepth,
        apiKeys: parts.apiKeys,
        sendTimeout: new SendTimeout(
          this.#clock,
          c.clientSendTimeout * 1000,
          () => parts.connections.timeouts.answer++,
        ),
      }),
      nodeControl: createNodeControlHandlers(this.#plane, this.#clock),
      health: createHealthHandlers(this.#health),
      maxMessageBytes: c.maxBodySize,
      maxMetadataBytes: c.maxHeaderSize,
      tls,
      limits: {
        idleTimeoutMs: c.keepaliveTimeout * 1000,
        maxConnections: c.maxConnections,
        maxConcurrentStreams: c.grpcMaxConcurrentStreams,
        keepaliveTimeMs: c.grpcKeepaliveTime * 1000,
      },
      connections: parts.connections,
    });
    this.#health.setAll(ServingStatus.SERVING);

    // Joins the replicas (alone, without etcd); a leader adopts the running workers, sets the target and scales.
    await g.start();
    this.#scheduleStatusLine();
    this.#idleCollection = new IdleCollection({
      clock: this.#clock,
      activity: () => ({ inFlight: g.service.inFlight, started: g.service.totalRequests }),
      onCollect: ({ beforeBytes, afterBytes, ms }) =>
        this.log.debug(
          `idle: RSS ${(beforeBytes / 2 ** 20).toFixed(0)} -> ${(afterBytes / 2 ** 20).toFixed(0)} MiB after collections of ${ms.toFixed(0)} ms in all`,
        ),
    });
    this.#idleCollection.start();

    const shown = c.host === '0.0.0.0' || c.host === '::' ? 'localhost' : c.host;
    return {
      httpUrl: `${tls ? 'https' : 'http'}://${shown}:${httpPort}`,
      httpPort,
      grpcAddress: `${shown}:${parts.grpc.port}`,
      grpcPort: parts.grpc.port,
    };
  }

  /** The core from src/gateway, with the live provisioner, prober and upstream; telemetry and the HTTP app around it. */
  #assemble(task: TaskSpec, tls: TlsFiles | undefined, coordinator: Coordinator): Parts {
    const c = this.config;
    const clock = this.#clock;
    // Telemetry reads the core's state lazily (at each collection), so it is made first and
    // its metrics are handed to the assembly.
    const made: { gateway?: Gateway } = {};
    const core = (): Gateway => made.gateway!;
    const connections = new ClientConnectionStats();
    const telemetry = new Telemetry({
      config: c,
      clock,
      log: this.log,
      tracer: this.#deps.tracer,
      state: {
        workers: () => core().pool.list(),
        queueLength: () => core().tracker.current(),
        queueLengthMean: () => core().tracker.mean(),
        gatewayQueueLength: () => core().admission.waiting,
        totalRequests: () => core().service.totalRequests,
        fleetStats: () => core().fleet.stats,
        targetWorkers: () => core().fleet.target,
        clientConnections: () => connections,
        wantedWorkers: () => core().scale.wanted,
        coordination: () => core().replica.coordinator.status(),
      },
    });
    const gateway = assembleGateway({
      config: c,
      clock,
      random: seededRandom(c.seed ?? Math.floor(Math.random() * 2 ** 32)),
      task,
      provisioner:
        this.#deps.provisioner ?? ((onWorkerLost, fence) => this.#createProvisioner(task, onWorkerLost, fence)),
      coordinator,
      prober: new HttpProber({ path: c.workerReadyPath, timeoutMs: c.workerProbeTimeout * 1000 }),
      upstream: new UpstreamClient({
        connections: c.workerCapacity,
        connectTimeoutMs: c.connectTimeout * 1000,
        headersTimeoutMs: c.firstByteTimeout * 1000,
        bodyTimeoutMs: c.idleTimeout * 1000,
      }),
      log: this.log,
      metrics: telemetry.metrics,
      events: this.#events,
      scale: this.#scale,
    });
    made.gateway = gateway;
    this.#plane.attach(gateway);
    const apiKeys = ApiKeys.of(c.apiKey);
    const http = buildHttpApp({
      service: gateway.service,
      plane: this.#plane,
      maxBodySize: c.maxBodySize,
      maxHeaderSize: c.maxHeaderSize,
      maxJsonDepth: c.maxJsonDepth,
      tls,
      corsAllowOrigins: c.corsAllowOrigins,
      apiKeys,
      log: { warn: (o, m) => this.log.warn(o, m), error: (o, m) => this.log.error(o, m) },
      observer: telemetry.observer,
      metricsText: () => telemetry.prometheusText(),
      clientLimits: {
        headerTimeoutMs: c.clientHeaderTimeout * 1000,
        bodyTimeoutMs: c.clientBodyTimeout * 1000,
        requestTimeoutMs: c.clientRequestTimeout * 1000,
        sendTimeoutMs: c.clientSendTimeout * 1000,
        keepAliveTimeoutMs: c.keepaliveTimeout * 1000,
        maxConnections: c.maxConnections,
      },
      connections,
      clock,
    });
    return { gateway, http, telemetry, connections, apiKeys, grpc: undefined };
  }

  #createProvisioner(
    task: TaskSpec,
    onWorkerLost: (name: string, reason: string) => void,
    fence: ProvisionerFence,
  ): Provisioner {
    const c = this.config;
    const factory = PROVISIONERS[c.provisioner as ProvisionerName];
    if (!factory) throw new Error(`provisioner ${c.provisioner} is not available in this build`);
    return factory({
      workers: c.workers,
      log: (level, msg) => this.log[level](msg),
      onWorkerLost,
      fence,
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

  #statusTimer: TimerHandle | undefined;
  #idleCollection: IdleCollection | undefined;

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

  /**
   * Reliability counters (retries, answers that failed after their headers, repetition-guard
   * trips, requests cut at shutdown, outlier ejections and readmissions), for metrics.
   */
  reliabilityStats(): ReliabilityStats {
    const g = this.#parts?.gateway;
    return {
      ...(g?.service.stats ?? {
        requests: 0,
        retries: 0,
        midStreamFailures: 0,
        repetitionGuardTrips: 0,
        abortedAtShutdown: 0,
      }),
      ...(g?.outlier.stats ?? { ejections: 0, readmissions: 0, sparedLastWorker: 0 }),
    };
  }

  // ---- node control: the control plane's (src/service/control-plane.ts) ----------------

  status(): GatewayStatus {
    return this.#plane.status();
  }

  workers(): Worker[] {
    return this.#plane.workers();
  }

  addWorker(name?: string): Promise<Worker> {
    return this.#plane.addWorker(name);
  }

  removeWorker(name?: string): Promise<Worker> {
    return this.#plane.removeWorker(name);
  }

  drainWorker(name: string): Promise<Worker> {
    return this.#plane.drainWorker(name);
  }

  setScaleBounds(min?: number, max?: number): Promise<ScaleBounds> {
    return this.#plane.setScaleBounds(min, max);
  }

  watch(listener: EventListener): () => void {
    return this.#plane.watch(listener);
  }

  /**
   * Graceful stop: refuse new requests, let in-flight ones finish (up to drain_timeout),
   * then tear the workers down, or leave them running with keepWorkers (default: option
   * keep_workers_on_exit). Safe to call more than once.
   */
  close(opts: { keepWorkers?: boolean } = {}): Promise<void> {
    this.#plane.shutdown();
    if (!this.#closing) {
      // The process stays until the fleet is torn down. The drain's and the teardown's timers do
      // not hold it (the clock's timers are unref'd), so a drain waiting on a request with no
      // socket open would otherwise let node exit half way, the workers left running.
      const hold = setInterval(() => {}, 60_000);
      this.#closing = this.#shutdown({ keepWorkers: opts.keepWorkers ?? this.config.keepWorkersOnExit }).finally(() =>
        clearInterval(hold),
      );
    }
    return this.#closing;
  }

  async #shutdown(opts: { keepWorkers?: boolean }): Promise<void> {
    const p = this.#parts;
    if (!p) return;
    const g = p.gateway;
    const clock = this.#clock;
    const graceMs = this.config.drainTimeout * 1000;
    this.#health.setAll(ServingStatus.NOT_SERVING);
    g.stop();
    this.#statusTimer?.cancel();
    this.#idleCollection?.stop();
    // Among several replicas the fleet goes to one that stays, at once; the last one out (or a
    // gateway alone) tears it down, or keeps it, once its own requests are done.
    const leaving = g.replica.leave();
    g.admission.close(new GatewayError('shutting_down'));
    // Keep-alive connections whose last response finished after close() began would hold the
    // server open until their idle timeout: close them as they go idle. At drain_timeout the
    // requests still running are ended with an explicit shutting_down error (a stream gets its
    // error event, a whole answer a 503); a second later whatever is left is cut.
    let sweep: TimerHandle | undefined;
    const sweepIdle = (): void => {
      p.http.server.closeIdleConnections();
      sweep = clock.setTimer(IDLE_SWEEP_MS, sweepIdle);
    };
    sweep = clock.setTimer(IDLE_SWEEP_MS, sweepIdle);
    const abort = clock.setTimer(graceMs, () => {
      const n = g.service.abortAll(
        new GatewayError('shutting_down', {
          message: 'The gateway is shutting down and its drain timeout has passed.',
        }),
      );
      if (n > 0) this.log.warn({ requests: n }, 'drain timeout: ending the requests still running');
    });
    const force = clock.setTimer(graceMs + CUT_AFTER_ABORT_MS, () => p.http.server.closeAllConnections());
    await Promise.all([p.http.close(), p.grpc?.close(graceMs + CUT_AFTER_ABORT_MS)]);
    sweep.cancel();
    abort.cancel();
    force.cancel();
    const outcome = await leaving;
    if (outcome === 'last') {
      const names = g.fleet.live().map((w) => w.name);
      this.log.info(
        { workers: names },
        opts.keepWorkers
          ? `keep_workers_on_exit: leaving ${names.length} workers running for the next start to adopt (launches in progress are torn down)`
          : `tearing down ${names.length} workers`,
      );
      await g.fleet.shutdown({ keepWorkers: opts.keepWorkers ?? false });
      await g.replica.retire();
      const leaked = g.fleet.unterminated();
      if (leaked.length > 0) {
        this.log.error(
          { clusters: leaked },
          `these clusters could not be torn down and may still be running: ${leaked.join(', ')}`,
        );
      }
    } else {
      this.log.info(
        { outcome },
        outcome === 'handed-over'
          ? 'another replica holds the fleet: leaving the workers running'
          : g.replica.coordinator.replicated
            ? 'etcd did not answer: leaving the workers running for whichever replica leads next (or the next start) to adopt'
            : 'this gateway stopped before it led its fleet: leaving any clusters for the next start to adopt',
      );
    }
    await g.replica.close();
    await g.upstream.close();
    await g.provisioner.close?.();
    await p.telemetry.close();
    this.log.info('stopped');
    this.log.flush();
  }
}

/** Time between ending the requests left at drain_timeout (error tails) and cutting their connections. */
const CUT_AFTER_ABORT_MS = 1000;

/** How often shutdown closes the keep-alive connections that went idle. */
const IDLE_SWEEP_MS = 50;

interface Parts {
  readonly gateway: Gateway;
  readonly http: FastifyInstance;
  readonly telemetry: Telemetry;
  /** Both listeners' client connections and what the client limits cut. */
  readonly connections: ClientConnectionStats;
  /** The keys both listeners ask of clients for the workers' routes (option api_key). */
  readonly apiKeys: ApiKeys | undefined;
  grpc: GrpcListener | undefined;
}
