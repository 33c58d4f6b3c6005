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
import type { Coordinator } from '../../core/coordination.js';
import { GatewayError } from '../../core/errors.js';
import type { WorkerStateChange } from '../../core/types.js';
import type { TaskSpec } from '../../core/types.js';
import type { Config } from '../../config/options.js';
import { assembleGateway, type GatewayLog } from '../../gateway/assemble.js';
import { promptBlockHashes } from '../../core/hashing.js';
import { promptTextOf } from '../../routes/rules.js';
import type { EngineProfile } from '../engine-model.js';
import { chatPromptText } from '../prompt-text.js';
import { launchDelaySampler, type LaunchDelaySpec } from './launch-delay.js';
import { SimMetrics, type RequestRecord, type SimSummary } from './metrics.js';
import { EngineOracle, type EnginePrompt, type OracleKind } from './oracle.js';
import { SimProvisioner } from './provisioner.js';
import { SimReplicaGroup } from './replicas.js';
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
  /**
   * Route with a clairvoyant yardstick (oracle.ts) instead of `load_balancer`: true or
   * 'longest-prefix', the worker whose engine holds the longest cached prefix, ignoring load
   * (the yardstick for hit rates); 'first-token', the worker whose engine would give the first
   * token soonest (the yardstick for time to first token).
   */
  readonly oracle?: boolean | OracleKind;
  /** Virtual ms between samples of the per-worker load (BalanceStats); default 100. */
  readonly balanceSampleMs?: number;
  /** Where the gateway's log lines go (none by default). */
  readonly log?: GatewayLog;
  /**
   * Gateway replicas steering the fleet (default 1): replica 0 leads, the others follow through a
   * simulated shared store (SimReplicaGroup), and each request goes to one of them at random, as
   * an L4 balancer spreads connections.
   */
  readonly replicas?: number;
}

/**
 * How evenly the balancer spread the load, sampled every balanceSampleMs of virtual time from
 * the first request to the last answer, over the ready workers.
 */
export interface BalanceStats {
  readonly samples: number;
  /**
   * Σ max in flight on one worker ÷ Σ mean in flight per worker, over the samples: 1 is perfect;
   * 1.5 means the busiest worker carried 1.5× its share on average. A ratio of sums, so idle
   * moments (where one request alone makes 4 workers look 4× imbalanced) weigh nothing.
   */
  readonly imbalance: number;
  /** Share of samples in which a worker sat idle while another's engine had requests waiting. */
  readonly idleWhileQueued: number;
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
  /** Fleet launches (workers started), including replacements and the initial workers. */
  readonly launches: number;
  /** Workers up when the traffic started (they count in `launches`). */
  readonly initialWorkers: number;
  /**
   * Launches that began less than one mean launch delay after a scale-down drained a ready
   * worker: that worker could have served instead, and its relaunch was paid for twice.
   */
  readonly quickRelaunches: number;
  /** Autoscaler decisions that wanted more workers than max_workers allowed. */
  readonly heldBack: number;
  /** Prompt tokens looked up in the engines' prefix caches and found there, over all workers. */
  readonly prefixCache: { readonly queryTokens: number; readonly hitTokens: number; readonly hitRate: number };
  readonly balance: BalanceStats;
  /**
   * Σ engine time spent prefilling ÷ worker-seconds: how loaded a prefill-bound fleet was (the
   * engines step prefills one after another, so 1 is saturation).
   */
  readonly prefillUtilisation: number;
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
  const spreadRandom = seededRandom((o.seed ^ 0x61c88647) >>> 0);
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
  // The oracle sees the prompt as the balancer does and looks it up as the engines see it.
  const enginePrompts = new Map<string, EnginePrompt & { requests: number }>();
  const oracle = o.oracle
    ? new EngineOracle(o.oracle === true ? 'longest-prefix' : o.oracle, {
        engine: (w) => provisioner.worker(w.name)?.engine,
        prompt: (text) => enginePrompts.get(text),
      })
    : undefined;
  let heldBack = 0;
  const replicas = o.replicas ?? 1;
  if (oracle && replicas > 1) throw new RangeError('the oracle routes for one gateway: run it with one replica');
  const group = replicas > 1 ? new SimReplicaGroup(clock, replicas) : undefined;
  const assemble = (coordinator: Coordinator | undefined) =>
    assembleGateway({
      coordinator,
      balancer: oracle,
      config: c,
      clock,
      random,
      task: SIM_TASK,
      provisioner,
      prober: provisioner.prober,
      upstream,
      // engine-load reads the engines' load as the gateway's scraper would, every engine_metrics_interval.
      engineLoad: (w) => Promise.resolve(provisioner.worker(w.name)?.engineLoad()),
      log: o.log,
      metrics: { autoscalerHeldBack: () => heldBack++ },
      onScale: (desired, decision, snap) =>
        scaleEvents.push({ tS: clock.now() / 1000, from: activeWorkers(snap), to: desired, reason: decision.reason }),
    });
  const gateway = assemble(group?.leader);
  const gateways = [gateway, ...(group?.members.slice(1) ?? []).map((m) => assemble(m))];
  const { pool, tracker, fleet } = gateway;
  const metrics = new SimMetrics(clock, pool);
  const bounds = gateway.scale;
  const churn = relaunchCounter(o.launchDelay.meanMs, initialWorkers);
  pool.onChange((change) => churn.change(change, clock.now()));

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
      waiting: gateways.reduce((n, g) => n + g.admission.waiting, 0),
      queueMean: tracker.mean(),
    });
  };
  const sampleEvery = (): void => {
    sample();
    clock.setTimer(o.sampleIntervalMs, sampleEvery);
  };

  const readsPrompt = gateway.service.readsPrompt;
  let lastSendAt = 0;
  const send = (req: SimRequest, onEnd?: (outcome: RequestOutcome) => void): void => {
    lastSendAt = clock.now();
    const rec = metrics.arrived();
    const uniquePrompt = req.prompt !== undefined && 'unique' in req.prompt && req.prompt.unique === true;
    const { routeText, engineText } = promptTexts(req.prompt, {
      // As the HTTP and gRPC edges do: the prompt text only for a balancer that reads it.
      route: readsPrompt,
      // An engine looks a unique prompt up in no cache: its text is not needed (but the oracle's).
      engine: !uniquePrompt || oracle !== undefined,
    });
    const headers = upstream.register({
      promptTokens: req.promptTokens,
      outputTokens: req.outputTokens,
      engineText,
      uniquePrompt,
    });
    const oracleKey = oracle && routeText !== undefined && engineText !== undefined ? routeText : undefined;
    if (oracleKey !== undefined) {
      const entry = enginePrompts.get(oracleKey);
      if (entry) entry.requests++;
      else
        enginePrompts.set(oracleKey, { tokens: req.promptTokens, blocks: promptBlockHashes(engineText!), requests: 1 });
    }
    const ended = (outcome: RequestOutcome): void => {
      upstream.unregister(headers);
      if (oracleKey !== undefined && --enginePrompts.get(oracleKey)!.requests === 0) enginePrompts.delete(oracleKey);
      unsettled = true; // the slot's release follows the answer's end; a closed-loop workload may send from here
      onEnd?.(outcome);
    };
    const failed = (err: unknown): void => {
      failRequest(metrics, rec, err);
      ended({ ok: false });
    };
    const at = gateways.length === 1 ? gateway : gateways[Math.floor(spreadRandom() * gateways.length)]!;
    at.service
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

  // Load balance, on the bare clock (no promise work to settle): Σ max and Σ mean in flight per ready worker.
  const balanceEveryMs = o.balanceSampleMs ?? 100;
  if (!(balanceEveryMs > 0)) throw new RangeError(`balance sample interval must be > 0 ms, got ${balanceEveryMs}`);
  const balance = { samples: 0, sumMax: 0, sumMean: 0, idleWhileQueued: 0 };
  let balanceOn = true;
  const sampleBalance = (): void => {
    if (!balanceOn) return;
    let ready = 0;
    let total = 0;
    let max = 0;
    let idle = false;
    let queued = false;
    for (const w of pool.readyWorkers()) {
      ready++;
      // Every replica's requests on it (one gateway: its own).
      let inFlight = w.inFlight;
      for (let i = 1; i < gateways.length; i++) inFlight += gateways[i]!.pool.get(w.name)?.inFlight ?? 0;
      total += inFlight;
      if (inFlight > max) max = inFlight;
      if (inFlight === 0) idle = true;
      else if (!queued && (provisioner.worker(w.name)?.engine.waiting ?? 0) > 0) queued = true;
    }
    if (ready > 0 && metrics.records.length > 0) {
      balance.samples++;
      balance.sumMax += max;
      balance.sumMean += total / ready;
      if (idle && queued) balance.idleWhileQueued++;
    }
    virtual.setTimer(balanceEveryMs, sampleBalance);
  };

  fleet.scaleTo(initialWorkers);
  for (const g of gateways) await g.start();
  sampleEvery();
  sampleBalance();
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
      balanceOn = false;
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
  for (const g of gateways) g.stop();
  const summary = metrics.summary();
  const engines = provisioner.engineTotals();
  const queryTokens = engines.queryTokens + upstream.uniquePromptTokens;
  const hitTokens = engines.hitTokens;
  const prefillMs = engines.prefillMs;
  return {
    summary,
    timeline,
    scaleEvents,
    launches: fleet.stats.launched,
    initialWorkers,
    quickRelaunches: churn.count(),
    heldBack,
    prefixCache: { queryTokens, hitTokens, hitRate: queryTokens === 0 ? 0 : hitTokens / queryTokens },
    prefillUtilisation: summary.workerSeconds === 0 ? 0 : prefillMs / 1000 / summary.workerSeconds,
    balance: {
      samples: balance.samples,
      imbalance: balance.sumMean === 0 ? 1 : balance.sumMax / balance.sumMean,
      idleWhileQueued: balance.samples === 0 ? 0 : balance.idleWhileQueued / balance.samples,
    },
    gateway: {
      retries: gateways.reduce((n, g) => n + g.service.stats.retries, 0),
      ejections: gateways.reduce((n, g) => n + g.outlier.stats.ejections, 0),
      launchFailures: fleet.stats.launchFailures,
      launchGiveUps: fleet.stats.launchGiveUps,
      replaced: fleet.stats.replaced,
      injected: { requestFailures: upstream.requestFailures, ...provisioner.faultCounts },
    },
  };
}

/**
 * The prompt as each side reads it, for the sides that read it (`need`): the gateway's balancer
 * (promptTextOf, as the HTTP and gRPC adapters pass it) and the engine simulator (whose block
 * hashes its prefix cache keys on). A trace's prompt text is made only when read (workload.ts).
 */
function promptTexts(
  prompt: SimPrompt | undefined,
  need: { readonly route: boolean; readonly engine: boolean },
): { routeText?: string; engineText?: string } {
  if (!prompt) return {};
  if ('messages' in prompt)
    return {
      ...(need.route ? { routeText: promptTextOf({ messages: prompt.messages }) } : {}),
      ...(need.engine ? { engineText: chatPromptText(prompt.messages) } : {}),
    };
  return {
    ...(need.route ? { routeText: prompt.prompt } : {}),
    ...(need.engine ? { engineText: prompt.prompt } : {}),
  };
}

/**
 * Counts launches that follow a scale-down of a ready worker by less than `windowMs` (each
 * drained worker answers for one launch at most). The first `initial` launches are the workers
 * up at the start.
 */
function relaunchCounter(
  windowMs: number,
  initial: number,
): { change(c: WorkerStateChange, now: number): void; count(): number } {
  const drained: number[] = [];
  let launches = 0;
  let quick = 0;
  return {
    change({ worker, previous, reason }, now) {
      if (worker.state === 'draining' && previous === 'ready' && reason === 'scale-down') drained.push(now);
      else if (reason === 'added' && previous === worker.state && ++launches > initial) {
        while (drained.length > 0 && drained[0]! < now - windowMs) drained.shift();
        if (drained.length > 0) {
          drained.shift();
          quick++;
        }
      }
    },
    count: () => quick,
  };
}

function failRequest(metrics: SimMetrics, rec: RequestRecord, err: unknown): void {
  metrics.failed(rec, err instanceof GatewayError ? err.code : 'error');
}
