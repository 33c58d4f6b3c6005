import type { Counter, Histogram, Meter, ObservableResult } from '@opentelemetry/api';
import type { CoordinationStatus } from '../core/coordination.js';
import type { FleetStats } from '../core/fleet.js';
import type { Worker, WorkerState, WorkerStateChange } from '../core/types.js';
import type { ClientConnectionStats } from '../service/connections.js';
import type { SummedHistogram, SummedHistograms } from './summed-histograms.js';
import { Tally } from './tally.js';

/**
 * Every instrument of the gateway, declared once. Two families:
 *
 * - FlockServe's, named as the original with the `metrics_id` suffix (`allworkers1`, ...)
 *   and of the original's instrument types, so dashboards built on it keep working:
 *   `taskqueuecounter` an up-down counter, `requestcounter` a counter, the other five
 *   histograms recorded at each periodic load check (here: each autoscaler evaluation,
 *   every `autoscale_interval`, 30 s as FlockServe's). Left out when metrics_id < 0.
 * - `flockserve_*`, named the Prometheus way (the Prometheus reader does not add units,
 *   counters get `_total`): requests by route/status/worker/model, latency histograms (time to
 *   first token, time per output token), tokens, workers by state, queues, autoscaler
 *   decisions, launches, retries, ejections, failed exports.
 *
 * Every counter exists from the start, at 0 (a series without attributes, or one per known
 * value), so a dashboard shows 0 rather than "No data" before the first retry or ejection.
 *
 * State the gateway already keeps (workers, queue lengths, fleet counters) is read by
 * observable instruments at collection time, so nothing is recorded on the request path
 * for it; per-request measurements are recorded once, when the request finishes.
 */

/** What the observable instruments read at collection time. */
export interface GatewayState {
  workers(): readonly Worker[];
  /** In flight + waiting at the gateway (LoadTracker.current()). */
  queueLength(): number;
  /** Time-weighted running mean of the queue length (LoadTracker.mean()). */
  queueLengthMean(): number;
  /** Requests waiting at the gateway for a worker slot. */
  gatewayQueueLength(): number;
  totalRequests(): number;
  fleetStats(): Readonly<FleetStats>;
  targetWorkers(): number;
  /** Workers the autoscaler wants beyond max_workers, while max_workers holds it back. */
  wantedWorkers?(): number | undefined;
  /** Rows the request log wrote and dropped, when it is on. */
  requestLogStats?(): { readonly written: number; readonly dropped: number };
  /** The replicas that share the fleet, which leads, and whether etcd answers. */
  coordination?(): CoordinationStatus;
  /** Failed OTLP exports, by signal, of the exporters there are. */
  exportFailures?(): readonly { readonly signal: string; readonly failures: number }[];
  /** The listeners' client connections and what the client limits cut. */
  clientConnections?(): ClientConnectionStats;
}

/** One finished request, as the request observer measured it. */
export interface RequestMeasurement {
  readonly transport: 'http' | 'grpc';
  readonly route: string;
  readonly status: number;
  /** Empty when no worker was reached (queue timeout, bad request). */
  readonly worker: string;
  readonly durationMs: number;
  /** The request's `model` field, when it has one. */
  readonly model?: string | undefined;
  /** Streamed answers only: arrival → first body chunk. */
  readonly ttftMs?: number | undefined;
  /** Streamed answers only: (first chunk → end) / (completion tokens − 1), vLLM's time per output token. */
  readonly tpotMs?: number | undefined;
  readonly queueWaitMs?: number | undefined;
  readonly completionTokens?: number | undefined;
  readonly promptTokens?: number | undefined;
}

export type ScaleDirection = 'up' | 'down' | 'none';

const ALL_STATES: readonly WorkerState[] = [
  'provisioning',
  'starting',
  'ready',
  'not_ready',
  'draining',
  'terminating',
  'failed',
];

// Bucket bounds in seconds. LLM answers range from a 50 ms embedding to minutes of generation.
const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320];
const TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
// vLLM's bounds for time per output token: a decode step takes 10-100 ms on a busy GPU.
const TPOT_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5];
// 0 is its own bucket: most requests get a slot at once.
const QUEUE_WAIT_BUCKETS = [0, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120];
// A local process is up in a second; a GPU cluster takes 5-15 minutes.
const LAUNCH_BUCKETS = [1, 5, 10, 30, 60, 120, 300, 600, 900, 1200, 1800];

interface FlockServeHistograms {
  readonly allWorkers: Histogram;
  readonly liveWorkers: Histogram;
  readonly workerLoad: Histogram;
  readonly readiness: Histogram;
  readonly queueLengthRunningMean: Histogram;
}

export class GatewayMetrics {
  readonly #state: GatewayState;
  readonly #flock: FlockServeHistograms | undefined;
  readonly #requests: Tally;
  readonly #duration: SummedHistogram;
  readonly #ttft: SummedHistogram;
  readonly #tpot: SummedHistogram;
  readonly #queueWait: SummedHistogram;
  readonly #models = new ModelLabels();
  readonly #generated: Tally;
  readonly #prompt: Tally;
  readonly #retries: Counter;
  readonly #ejections: Counter;
  readonly #answerFailures: Counter;
  readonly #repetitionTrips: Counter;
  readonly #storedAnswerMisses: Counter;
  readonly #decisions: Counter;
  readonly #launchDuration: Histogram;
  /** Workers seen provisioning: their first `ready` is a launch that completed. */
  readonly #launching = new Set<string>();

  /**
   * `histograms` holds the histograms recorded on every request (the readers collect them through
   * its producers); the rest are the meter's. `metricsId` < 0 leaves FlockServe's suffixed
   * instruments out.
   */
  constructor(meter: Meter, histograms: SummedHistograms, metricsId: number, state: GatewayState) {
    this.#state = state;

    if (metricsId >= 0) {
      const id = String(metricsId);
      this.#flock = {
        allWorkers: meter.createHistogram(`allworkers${id}`, { description: 'Number of Workers', unit: '1' }),
        liveWorkers: meter.createHistogram(`liveworkers${id}`, { description: 'Number of live Workers', unit: '1' }),
        workerLoad: meter.createHistogram(`workerload${id}`, {
          description: 'Queue length / Total capacity of all workers',
          unit: '%',
        }),
        readiness: meter.createHistogram(`readinessstatus${id}`, { description: 'Status Showing Healthy', unit: '1' }),
        queueLengthRunningMean: meter.createHistogram(`queuelengthrunningmean${id}`, {
          description: 'Queue Length Running Mean',
        }),
      };
      meter
        .createObservableCounter(`requestcounter${id}`, { description: 'Total Requests Counter', unit: '1' })
        .addCallback((r) => r.observe(state.totalRequests()));
      meter
        .createObservableUpDownCounter(`taskqueuecounter${id}`, { description: 'Number of requests in queue' })
        .addCallback((r) => r.observe(state.queueLength()));
    }

    this.#requests = new Tally(meter, 'flockserve_requests', {
      description: 'Inference requests finished, by route, status, worker, transport and model.',
      unit: '{request}',
      attributes: ['route', 'status', 'worker', 'transport', 'model'],
    });
    this.#duration = histograms.create({
      name: 'flockserve_request_duration_seconds',
      description: 'Time from a request arriving to its answer completing (or failing).',
      unit: 's',
      boundaries: DURATION_BUCKETS,
      attributes: ['route', 'status', 'model'],
    });
    this.#ttft = histograms.create({
      name: 'flockserve_time_to_first_token_seconds',
      description: 'Streamed requests: time from arrival to the first chunk of the answer.',
      unit: 's',
      boundaries: TTFT_BUCKETS,
      attributes: ['route', 'worker', 'model'],
    });
    this.#tpot = histograms.create({
      name: 'flockserve_time_per_output_token_seconds',
      description:
        'Streamed requests of 2 tokens or more: time from the first chunk to the end of the answer over the tokens after the first (inter-token latency).',
      unit: 's',
      boundaries: TPOT_BUCKETS,
      attributes: ['route', 'worker', 'model'],
    });
    this.#queueWait = histograms.create({
      name: 'flockserve_queue_wait_seconds',
      description: 'Time a request waited in the gateway queue for a worker slot.',
      unit: 's',
      boundaries: QUEUE_WAIT_BUCKETS,
      attributes: [],
    });
    this.#generated = new Tally(meter, 'flockserve_generated_tokens', {
      description:
        'Tokens generated: the answer’s usage (TGI: details or its x-generated-tokens header) when reported, else counted stream events.',
      unit: '{token}',
      attributes: ['route', 'worker', 'model'],
    });
    this.#prompt = new Tally(meter, 'flockserve_prompt_tokens', {
      description: 'Prompt tokens, as reported in the answer’s usage (TGI: its x-prompt-tokens header).',
      unit: '{token}',
      attributes: ['route', 'worker', 'model'],
    });
    this.#retries = meter.createCounter('flockserve_retries', {
      description: 'Requests sent again to another worker after a failure before the first byte.',
      unit: '{request}',
    });
    this.#ejections = meter.createCounter('flockserve_worker_ejections', {
      description: 'Workers taken out of rotation for failing requests (outlier ejection).',
      unit: '{worker}',
    });
    this.#answerFailures = meter.createCounter('flockserve_answer_failures', {
      description:
        'Answers that failed after their headers went to the client (worker died, stalled or sent malformed data), by code.',
      unit: '{request}',
    });
    this.#repetitionTrips = meter.createCounter('flockserve_repetition_guard_trips', {
      description: 'Streams ended by the repetition guard (the same line repeated more than repetition_guard times).',
      unit: '{request}',
    });
    this.#storedAnswerMisses = meter.createCounter('flockserve_stored_answer_misses', {
      description:
        'Requests that named a stored Responses API answer whose worker no longer serves (they go to another worker, which answers 404 unless the engines share their store), by that worker.',
      unit: '{request}',
    });
    this.#decisions = meter.createCounter('flockserve_autoscaler_decisions', {
      description: 'Autoscaler evaluations, by direction (up, down, none).',
      unit: '{decision}',
    });
    for (const c of [
      this.#retries,
      this.#ejections,
      this.#answerFailures,
      this.#repetitionTrips,
      this.#storedAnswerMisses,
    ])
      c.add(0);
    for (const direction of ['up', 'down', 'none'] satisfies ScaleDirection[]) this.#decisions.add(0, { direction });
    this.#launchDuration = meter.createHistogram('flockserve_worker_launch_duration_seconds', {
      description: 'Worker launch: to the cluster being up (phase=up) and to the first ready probe (phase=ready).',
      unit: 's',
      advice: { explicitBucketBoundaries: LAUNCH_BUCKETS },
    });

    const workers = meter.createObservableGauge('flockserve_workers', {
      description: 'Workers by state.',
      unit: '{worker}',
    });
    const inFlight = meter.createObservableGauge('flockserve_worker_in_flight', {
      description: 'Requests in flight on each worker.',
      unit: '{request}',
    });
    meter.addBatchObservableCallback(
      (r) => {
        const byState = new Map<WorkerState, number>(ALL_STATES.map((s) => [s, 0]));
        for (const w of state.workers()) {
          byState.set(w.state, (byState.get(w.state) ?? 0) + 1);
          if (w.state !== 'gone') r.observe(inFlight, w.inFlight, { worker: w.name });
        }
        for (const [s, n] of byState) r.observe(workers, n, { state: s });
      },
      [workers, inFlight],
    );
    gauge(meter, 'flockserve_target_workers', 'Workers the fleet is asked to run.', '{worker}', state.targetWorkers);
    gauge(
      meter,
      'flockserve_autoscaler_wanted_workers',
      'Workers the autoscaler wanted at its last decision, before max_workers: above flockserve_target_workers while max_workers holds it back.',
      '{worker}',
      () => state.wantedWorkers?.() ?? state.targetWorkers(),
    );
    gauge(meter, 'flockserve_queue_length', 'Requests in flight plus waiting at the gateway.', '{request}', () =>
      state.queueLength(),
    );
    gauge(meter, 'flockserve_queue_length_running_mean', 'Time-weighted running mean of the queue length.', '1', () =>
      state.queueLengthMean(),
    );
    gauge(meter, 'flockserve_gateway_queue_length', 'Requests waiting for a worker slot.', '{request}', () =>
      state.gatewayQueueLength(),
    );
    const fleetCounter = (name: string, description: string, read: (s: Readonly<FleetStats>) => number): void => {
      meter
        .createObservableCounter(name, { description, unit: '{worker}' })
        .addCallback((r) => r.observe(read(state.fleetStats())));
    };
    fleetCounter('flockserve_worker_launches', 'Worker launches started.', (s) => s.launched);
    fleetCounter('flockserve_worker_launch_failures', 'Worker launches that failed.', (s) => s.launchFailures);
    fleetCounter(
      'flockserve_worker_replacements',
      'Workers replaced (unhealthy past the timeout, or lost).',
      (s) => s.replaced,
    );
    fleetCounter('flockserve_worker_terminations', 'Workers terminated.', (s) => s.terminated);
    fleetCounter(
      'flockserve_worker_termination_failures',
      'Termination attempts that failed.',
      (s) => s.terminateFailures,
    );
    fleetCounter(
      'flockserve_worker_launch_give_ups',
      'Workers marked failed after max_launch_retries failed launches.',
      (s) => s.launchGiveUps,
    );
    fleetCounter(
      'flockserve_worker_teardown_give_ups',
      'Clusters whose teardown was given up on: they may still be running, and billing.',
      (s) => s.teardownGiveUps,
    );

    const clients = state.clientConnections;
    if (clients) observeClientConnections(meter, clients);

    // A gateway without etcd leads alone, and its store (none) always answers.
    const coordination = (): Pick<CoordinationStatus, 'leading' | 'replicas' | 'storeReachable'> =>
      state.coordination?.() ?? { leading: true, replicas: [], storeReachable: true };
    gauge(
      meter,
      'flockserve_replica_leader',
      'Whether this gateway replica leads the fleet (1) or follows (0).',
      '1',
      () => (coordination().leading ? 1 : 0),
    );
    gauge(meter, 'flockserve_replicas', 'Gateway replicas sharing the fleet, as this one sees them.', '{replica}', () =>
      Math.max(1, coordination().replicas.length),
    );
    gauge(
      meter,
      'flockserve_coordination_store_reachable',
      'Whether etcd answers this replica (1), or not (0: serving with the last fleet seen, no scaling); 1 without etcd.',
      '1',
      () => (coordination().storeReachable ? 1 : 0),
    );

    // 0 while the request log is off (option request_log).
    const readLog = (): { written: number; dropped: number } => state.requestLogStats?.() ?? { written: 0, dropped: 0 };
    meter
      .createObservableCounter('flockserve_request_log_rows', {
        description: 'Request log rows written.',
        unit: '{row}',
      })
      .addCallback((r) => r.observe(readLog().written));
    meter
      .createObservableCounter('flockserve_request_log_dropped_rows', {
        description: 'Request log rows dropped (buffer full, or the file could not be written).',
        unit: '{row}',
      })
      .addCallback((r) => r.observe(readLog().dropped));
    meter
      .createObservableCounter('flockserve_otlp_export_failures', {
        description:
          'OTLP exports that failed (the collector unreachable or refusing), by signal; the first of a run is logged.',
        unit: '{export}',
      })
      .addCallback((r) => {
        for (const w of state.exportFailures?.() ?? []) r.observe(w.failures, { signal: w.signal });
      });
  }

  /** A request finished (called once per request by the request observer). */
  request(m: RequestMeasurement): void {
    const { route, status } = m;
    const worker = m.worker || 'none';
    const model = this.#models.label(m.model);
    this.#requests.add(1, route, status, worker, m.transport, model);
    this.#duration.record(m.durationMs / 1000, route, status, model);
    if (m.ttftMs !== undefined) this.#ttft.record(m.ttftMs / 1000, route, worker, model);
    if (m.tpotMs !== undefined) this.#tpot.record(m.tpotMs / 1000, route, worker, model);
    if (m.queueWaitMs !== undefined) this.#queueWait.record(m.queueWaitMs / 1000);
    if (m.completionTokens) this.#generated.add(m.completionTokens, route, worker, model);
    if (m.promptTokens) this.#prompt.add(m.promptTokens, route, worker, model);
  }

  retry(worker: string, reason: string): void {
    this.#retries.add(1, { worker, reason });
  }

  /** For outlier ejection: a worker taken out of rotation. */
  ejection(worker: string, reason: string): void {
    this.#ejections.add(1, { worker, reason });
  }

  /** An answer that failed after its headers were sent (it ended with an explicit error). */
  answerFailure(worker: string, code: string): void {
    this.#answerFailures.add(1, { worker, code });
  }

  repetitionGuardTrip(worker: string): void {
    this.#repetitionTrips.add(1, { worker });
  }

  storedAnswerMiss(worker: string): void {
    this.#storedAnswerMisses.add(1, { worker });
  }

  /**
   * One autoscaler evaluation: counts the decision and records FlockServe's periodic
   * histograms, as its load check did every 30 s.
   */
  autoscalerEvaluated(direction: ScaleDirection): void {
    this.#decisions.add(1, { direction });
    const f = this.#flock;
    if (!f) return;
    const workers = this.#state.workers().filter((w) => w.state !== 'gone');
    f.allWorkers.record(workers.length);
    f.liveWorkers.record(workers.filter((w) => w.state === 'ready').length);
    f.workerLoad.record(this.#state.queueLength());
    // FlockServe rounds the mean to 2 decimals before recording it.
    f.queueLengthRunningMean.record(Math.round(this.#state.queueLengthMean() * 100) / 100);
    for (const w of workers) {
      if (w.state === 'ready' || w.state === 'not_ready') f.readiness.record(w.state === 'ready' ? 1 : 0);
    }
  }

  /** Launch durations from the pool's state changes; `now` is the pool's clock. */
  workerChanged(change: WorkerStateChange, now: number): void {
    const w = change.worker;
    if (w.state === 'provisioning') this.#launching.add(w.name);
    else if (change.previous === 'provisioning' && w.state === 'starting')
      this.#launchDuration.record((now - w.createdAt) / 1000, { phase: 'up' });
    else if (w.state === 'ready' && this.#launching.delete(w.name))
      this.#launchDuration.record((now - w.createdAt) / 1000, { phase: 'ready' });
    else if (w.state === 'gone' || w.state === 'failed' || w.state === 'terminating') this.#launching.delete(w.name);
  }
}

/** Open client connections, those refused at max_connections, and requests cut for arriving too slowly. */
function observeClientConnections(meter: Meter, read: () => ClientConnectionStats): void {
  const open = meter.createObservableGauge('flockserve_client_connections', {
    description: 'Client connections open, by transport (http, grpc).',
    unit: '{connection}',
  });
  const refused = meter.createObservableCounter('flockserve_client_connections_refused', {
    description:
      'Client connections closed as soon as they were accepted because max_connections were open, by transport.',
    unit: '{connection}',
  });
  const timeouts = meter.createObservableCounter('flockserve_client_timeouts', {
    description:
      'Requests cut because the client was too slow, by what was late: headers (client_header_timeout), body (client_body_timeout), request (client_request_timeout), each answered 408 and its connection closed; answer (client_send_timeout: the client took none of its answer for that long, and the answer was cut).',
    unit: '{request}',
  });
  meter.addBatchObservableCallback(
    (r) => {
      const s = read();
      for (const transport of ['http', 'grpc'] as const) {
        r.observe(open, s.open[transport], { transport });
        r.observe(refused, s.refused[transport], { transport });
      }
      for (const [late, n] of Object.entries(s.timeouts)) r.observe(timeouts, n, { late });
    },
    [open, refused, timeouts],
  );
}

function gauge(meter: Meter, name: string, description: string, unit: string, read: () => number): void {
  meter.createObservableGauge(name, { description, unit }).addCallback((r: ObservableResult) => r.observe(read()));
}

/** Distinct model names kept as label values; the rest are counted under `other`. */
export const MODEL_LABEL_LIMIT = 32;
/** Longest model name kept as it is; a longer one is cut (a label value is kept for good). */
const MODEL_LABEL_LENGTH = 128;

/**
 * The `model` label: the request's `model` field (vLLM's model_name), bounded. Clients choose the
 * value, so only the first MODEL_LABEL_LIMIT names seen get their own series; later ones share
 * `other`. A request without a model (TGI's routes) is `none`.
 */
export class ModelLabels {
  readonly #known = new Map<string, string>();
  readonly #limit: number;

  constructor(limit = MODEL_LABEL_LIMIT) {
    this.#limit = limit;
  }

  label(model: string | undefined): string {
    if (model === undefined || model === '') return 'none';
    const known = this.#known.get(model);
    if (known !== undefined) return known;
    if (this.#known.size >= this.#limit) return 'other';
    const value = model.length > MODEL_LABEL_LENGTH ? model.slice(0, MODEL_LABEL_LENGTH) : model;
    this.#known.set(model, value);
    return value;
  }
}
