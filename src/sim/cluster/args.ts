import { availableParallelism } from 'node:os';
import { AUTOSCALER_NAMES, isAutoscalerName, type AutoscalerName } from '../../core/autoscaler/registry.js';
import { OPTIONS, camelName, type Config, type OptionName, type OptionSpec } from '../../config/options.js';
import { ConfigError, coerce, formatDefault, resolveOptions } from '../../config/resolve.js';
import { fileURLToPath } from 'node:url';
import { BURSTY_DEFAULTS, checkBursty, type BurstyOptions } from '../workloads/bursty.js';
import { ENVELOPE_DEFAULTS } from '../workloads/envelope.js';
import { MULTI_TURN_DEFAULTS, type MultiTurnOptions } from '../workloads/multi-turn.js';
import { DEFAULT_PROFILE, tokenBudgetError, type EngineProfile } from '../engine-model.js';
import { LAUNCH_DELAY_DISTRIBUTIONS, type LaunchDelayDistribution } from './launch-delay.js';

/** The gateway options a simulation honours; they mean the same as for `flockserve` and come from its table. */
export const SIM_GATEWAY_OPTIONS = [
  'autoscaler',
  'load_balancer',
  'min_workers',
  'max_workers',
  'seed',
  'autoscale_up',
  'autoscale_down',
  'queue_tracking_window',
  'autoscale_interval',
  'downscale_delay',
  'target_queue_per_worker',
  'queue_wait_slo',
  'panic_window',
  'cold_start_timeout',
  'worker_capacity',
  'max_queue_length',
  'queue_timeout',
  'worker_probe_interval',
  'worker_unhealthy_timeout',
  'drain_timeout',
  'cache_threshold',
  'cache_min_chars',
  'balance_abs_threshold',
  'balance_rel_threshold',
  'prefix_tree_max_chars',
  'session_load_factor',
  'prefix_hash_chars',
  'prefix_hash_load_factor',
  'engine_metrics_interval',
] as const satisfies readonly OptionName[];

interface SimFlag {
  /** range: two whole numbers MIN-MAX ("4-8"), MIN <= MAX. */
  readonly type: 'string' | 'number' | 'int' | 'bool' | 'range';
  readonly help: string;
  readonly default?: string | number | boolean | Range;
  readonly min?: number;
  readonly max?: number;
  /** The value must be strictly greater than `min`. */
  readonly exclusiveMin?: boolean;
  readonly choices?: readonly string[];
  /** The workloads this flag is a knob of; any other refuses it. */
  readonly workloads?: readonly WorkloadName[];
  /** The commands that take this flag (default: both). */
  readonly commands?: readonly SimCommand[];
}

/** `flockserve simulate` runs one simulation; `flockserve plan` sweeps fixed fleets and policies over one workload. */
export type SimCommand = 'simulate' | 'plan';

type Range = readonly [min: number, max: number];

export const WORKLOADS = ['trace', 'multi-turn', 'envelope', 'bursty'] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

const MT = MULTI_TURN_DEFAULTS;
const BURSTY = BURSTY_DEFAULTS;
const MULTI_TURN_ONLY = ['multi-turn'] as const;
const GENERATED = ['envelope', 'bursty'] as const;

/**
 * The traces the repository ships (examples/traces/), as --help shows them; a default resolves
 * against the package root, so it works from a clone whatever the working directory.
 */
export const SHIPPED_TRACES = {
  conv: 'examples/traces/azure-llm-2023-conv.csv',
  rates: 'examples/traces/servegen-m-large-rates-10min.csv',
} as const;

/** A shipped file's path on this machine (src/sim/cluster/ and dist/sim/cluster/ are both 3 below the root). */
export const shippedPath = (relative: string): string =>
  fileURLToPath(new URL(`../../../${relative}`, import.meta.url));

/** Simulations `plan` runs at once by default: one per core, at most 2 (they are CPU-bound). */
export const DEFAULT_PLAN_JOBS = Math.max(1, Math.min(2, availableParallelism()));

/** Flags only the simulation has. */
export const SIM_FLAGS = {
  workload: {
    type: 'string',
    default: 'trace',
    choices: WORKLOADS,
    help: 'What is sent: the arrivals of --trace; multi-turn chat sessions (each turn resends the growing history over a shared system prompt, once the previous reply is back); envelope: arrivals following a real rate envelope (--rates), scaled to --mean-rate; bursty: bursts of requests over a low base rate.',
  },
  trace: {
    type: 'string',
    default: SHIPPED_TRACES.conv,
    workloads: ['trace'],
    help: 'Trace file, read as a stream: Azure LLM inference CSV (TIMESTAMP,ContextTokens,GeneratedTokens; the 2023 and 2024 releases), BurstGPT CSV (Timestamp s, Request tokens, Response tokens), Mooncake JSON lines (timestamp ms, input_length, output_length, hash_ids of 512-token blocks; equal ids share a prefix) or FlockServe’s request log (the SQLite file of --request_log: each request’s arrival and token counts, requests without counts left out), told apart by the SQLite header, the extension (.csv, .jsonl) or the first line, and a CSV by its header. The default is the shipped Azure conversation trace (one hour, 19,366 requests).',
  },
  start: {
    type: 'number',
    default: 0,
    min: 0,
    workloads: ['trace'],
    help: "Trace: where the replay begins, seconds after the trace's first request (the trace's own time, before --time-scale); with --duration, a day of a week-long trace.",
  },
  time_scale: {
    type: 'number',
    default: 1,
    min: 0,
    exclusiveMin: true,
    workloads: ['trace'],
    help: 'Arrivals come this many times faster than in the trace (4: the hour in 15 minutes, 4x the load).',
  },
  rates: {
    type: 'string',
    default: SHIPPED_TRACES.rates,
    workloads: ['envelope'],
    help: 'Envelope: CSV of arrival rates per window (columns window_start_s, rate_rps; others ignored). The default is the shipped ServeGen envelope: 14 days of a production LLM service, per 10 minutes.',
  },
  mean_rate: {
    type: 'number',
    default: ENVELOPE_DEFAULTS.meanRate,
    min: 0,
    exclusiveMin: true,
    workloads: ['envelope'],
    help: "Envelope: mean requests per second over the simulated span; the envelope's rates are scaled by one factor to it.",
  },
  arrival_cv: {
    type: 'number',
    default: ENVELOPE_DEFAULTS.arrivalCv,
    min: 0,
    exclusiveMin: true,
    workloads: ['envelope'],
    help: 'Envelope: coefficient of variation of the gaps between arrivals within a window: 1 is Poisson, above 1 burstier (Gamma).',
  },
  duration: {
    type: 'number',
    min: 0,
    exclusiveMin: true,
    workloads: ['trace', ...GENERATED],
    help: `Seconds of traffic: of the trace from --start (default: to its end), of the envelope (default: a day), of bursts (default: ${BURSTY.durationS}).`,
  },
  days: {
    type: 'number',
    min: 0,
    exclusiveMin: true,
    workloads: ['envelope'],
    help: "Envelope: days of traffic from the envelope's start (midnight), instead of --duration.",
  },
  lengths: {
    type: 'string',
    default: SHIPPED_TRACES.conv,
    workloads: GENERATED,
    help: "Envelope and bursty: a per-request trace (any --trace format) whose requests' prompt and output lengths are drawn at random.",
  },
  base_rate: {
    type: 'number',
    default: BURSTY.baseRate,
    min: 0,
    workloads: ['bursty'],
    help: 'Bursty: requests per second between bursts (Poisson).',
  },
  burst_size: {
    type: 'range',
    default: BURSTY.burstSize,
    min: 1,
    // A burst's arrivals are made at once: past this it is memory, not a workload.
    max: 100_000,
    workloads: ['bursty'],
    help: 'Bursty: requests per burst, MIN-MAX (uniform).',
  },
  burst_every: {
    type: 'number',
    default: BURSTY.burstEveryS,
    min: 0,
    exclusiveMin: true,
    workloads: ['bursty'],
    help: 'Bursty: mean seconds between bursts (each gap uniform in 0.5-1.5 times this).',
  },
  burst_width: {
    type: 'number',
    default: BURSTY.burstWidthS,
    min: 0,
    workloads: ['bursty'],
    help: "Bursty: seconds over which a burst's requests arrive (under half of --burst-every).",
  },
  provision_delay: {
    type: 'number',
    default: 300,
    min: 0,
    help: 'Mean seconds from launching a worker to its first passing readiness probe.',
  },
  provision_delay_dist: {
    type: 'string',
    default: 'lognormal',
    choices: LAUNCH_DELAY_DISTRIBUTIONS,
    help: 'Distribution of launch delays around the mean.',
  },
  provision_delay_cv: {
    type: 'number',
    default: 0.25,
    min: 0,
    help: 'Coefficient of variation (sd/mean) of launch delays, for uniform and lognormal.',
  },
  kv_cache_tokens: {
    type: 'int',
    default: DEFAULT_PROFILE.kvCacheTokens,
    min: 1,
    help: "Each simulated engine's KV cache, tokens: running requests' prompts and outputs, and the prefix cache in what they leave free (the default: Llama-3.1-8B on an A100-80GB).",
  },
  offload_cache_tokens: {
    type: 'int',
    default: 0,
    min: 0,
    help: 'Host-memory tier of each engine’s prefix cache, tokens (KV offload, as LMCache): blocks leaving the GPU move there and load back at PCIe speed instead of being recomputed.',
  },
  max_num_batched_tokens: {
    type: 'int',
    default: DEFAULT_PROFILE.maxNumBatchedTokens,
    min: 0,
    help: "Each simulated engine's token budget per step (vLLM --max-num-batched-tokens; at least 256, the engines' --max-num-seqs): decodes first, then prompts in chunks, so a long prefill does not stall running decodes. The default is what vLLM's OpenAI server uses on A100s (8192 on larger GPUs). 0: none, every prompt prefilled whole in one step (vLLM's V0 engine without chunked prefill).",
  },
  launch_failure_rate: {
    type: 'number',
    default: 0,
    min: 0,
    max: 1,
    help: 'Fault: the share of launches that fail at the end of their delay (the fleet retries them with backoff), seeded.',
  },
  preemptions_per_hour: {
    type: 'number',
    default: 0,
    min: 0,
    help: 'Fault: preemptions per hour of a running worker (exponential lifetimes): it vanishes with its requests and is replaced, seeded.',
  },
  oracle: {
    type: 'bool',
    default: false,
    help: 'Route with a clairvoyant oracle instead of --load_balancer: the worker whose engine holds the longest cached prefix of the prompt, ignoring load. No gateway can; it is the yardstick for prefix-cache hit rates.',
  },
  initial_workers: {
    type: 'int',
    min: 0,
    commands: ['simulate'],
    help: 'Workers already up when the trace starts (default: min_workers).',
  },
  sample_interval: {
    type: 'number',
    default: 10,
    min: 0,
    exclusiveMin: true,
    help: 'Seconds of simulated time between timeline rows.',
  },
  settle: {
    type: 'bool',
    default: false,
    help: 'After the last request, run on until the fleet is back at min_workers; report that tail and its cost apart.',
  },
  sessions: {
    type: 'int',
    default: MT.sessions,
    min: 1,
    workloads: MULTI_TURN_ONLY,
    help: 'Multi-turn: chat sessions started.',
  },
  session_rate: {
    type: 'number',
    default: MT.sessionsPerSecond,
    min: 0,
    exclusiveMin: true,
    workloads: MULTI_TURN_ONLY,
    help: 'Multi-turn: mean session starts per second (Poisson).',
  },
  turns: {
    type: 'range',
    default: MT.turns,
    min: 1,
    workloads: MULTI_TURN_ONLY,
    help: 'Multi-turn: turns per session, MIN-MAX.',
  },
  system_prompt_tokens: {
    type: 'int',
    default: MT.systemPromptTokens,
    min: 0,
    workloads: MULTI_TURN_ONLY,
    help: 'Multi-turn: tokens of the system prompt every session shares.',
  },
  user_tokens: {
    type: 'range',
    default: MT.userTokens,
    min: 1,
    workloads: MULTI_TURN_ONLY,
    help: 'Multi-turn: tokens of each user message, MIN-MAX.',
  },
  reply_tokens: {
    type: 'range',
    default: MT.replyTokens,
    min: 1,
    workloads: MULTI_TURN_ONLY,
    help: 'Multi-turn: max_tokens of each reply, MIN-MAX.',
  },
  think_time: {
    type: 'number',
    default: MT.thinkMs / 1000,
    min: 0,
    workloads: MULTI_TURN_ONLY,
    help: 'Multi-turn: mean seconds between a reply and the next user message (exponential).',
  },
  timeline: {
    type: 'string',
    default: 'simulation-timeline.csv',
    commands: ['simulate'],
    help: 'Where the timeline CSV is written.',
  },
  chart: {
    type: 'string',
    help: 'Where the SVG chart is written (default: simulation-chart.svg; for plan, plan-chart.svg: the fixed-fleet frontier with the policies as points).',
  },
  json: { type: 'bool', default: false, help: 'Print the summary as JSON instead of a table.' },
  policies: {
    type: 'string',
    default: AUTOSCALER_NAMES.join(','),
    commands: ['plan'],
    help: 'Plan: the autoscaling policies to place against the fixed fleets and the bound, comma-separated.',
  },
  jobs: {
    type: 'int',
    default: DEFAULT_PLAN_JOBS,
    min: 1,
    // Each job is a thread with a simulation in memory; more than the cores only costs memory.
    max: 64,
    commands: ['plan'],
    help: 'Plan: simulations run at once, each in its own thread (they are independent; results do not depend on it).',
  },
  max_fixed: {
    type: 'int',
    default: 64,
    min: 1,
    commands: ['plan'],
    help: 'Plan: the largest fixed fleet swept, if a smaller one has not already served every request without a wait.',
  },
  quiet: {
    type: 'bool',
    default: false,
    help: 'No progress on stderr (otherwise a bar on a terminal, a line per 10% of the run elsewhere).',
  },
} as const satisfies Record<string, SimFlag>;

type SimFlagName = keyof typeof SIM_FLAGS;

export interface SimArgs {
  readonly workload: WorkloadName;
  /** The trace file (workload trace), the shipped one's full path when not given. */
  readonly trace: string | undefined;
  /** Workload trace: the part replayed, in the trace's seconds from its first request (durationS Infinity: to its end). */
  readonly traceWindow: { readonly startS: number; readonly durationS: number };
  readonly timeScale: number;
  /** The generator's options (workload multi-turn), seeded with the simulation's seed. */
  readonly multiTurn: MultiTurnOptions;
  /** Workload envelope: the rate file, its target mean and the span. */
  readonly envelope: {
    readonly rates: string;
    readonly meanRate: number;
    readonly durationS: number;
    readonly arrivalCv: number;
  };
  /** Workload bursty: the generator's options, seeded with the simulation's seed. */
  readonly bursty: BurstyOptions;
  /** Workloads envelope and bursty: the trace their lengths are drawn from. */
  readonly lengths: string;
  readonly quiet: boolean;
  readonly provisionDelayS: number;
  readonly provisionDelayDist: LaunchDelayDistribution;
  readonly provisionDelayCv: number;
  readonly initialWorkers: number | undefined;
  readonly sampleIntervalS: number;
  readonly settle: boolean;
  /** The simulated engines' profile, where the flags change the default. */
  readonly profile: Partial<EngineProfile>;
  /** Route with the clairvoyant oracle (src/sim/cluster/oracle.ts) instead of the configured balancer. */
  readonly oracle: boolean;
  /** Seeded faults; none by default. */
  readonly faults: { readonly launchFailureRate: number; readonly preemptionsPerHour: number };
  readonly timeline: string;
  readonly chart: string;
  readonly json: boolean;
  /** The gateway's options; the simulation reads those in SIM_GATEWAY_OPTIONS. */
  readonly config: Config;
  readonly seed: number;
}

/** `flockserve plan`'s arguments: the simulation's, and what the sweep runs. */
export interface PlanArgs {
  /** Every run's base arguments; each run sets the fleet bounds, initial workers and policy. */
  readonly sim: SimArgs;
  readonly policies: readonly AutoscalerName[];
  readonly jobs: number;
  readonly maxFixed: number;
  /** max_workers as given; undefined lets plan pick one from the sweep. */
  readonly maxWorkers: number | undefined;
}

/** Seed when none is given: a simulation is reproducible by default. */
export const DEFAULT_SIM_SEED = 1;

const GATEWAY = new Set<string>(SIM_GATEWAY_OPTIONS);

/** `flockserve simulate` argv → arguments; throws ConfigError naming the flag. */
export function parseSimulateArgs(argv: readonly string[]): SimArgs | 'help' {
  if (argv.includes('--help') || argv.includes('-h')) return 'help';
  return parseArgs(argv, 'simulate').sim;
}

/** `flockserve plan` argv → arguments; throws ConfigError naming the flag. */
export function parsePlanArgs(argv: readonly string[]): PlanArgs | 'help' {
  if (argv.includes('--help') || argv.includes('-h')) return 'help';
  const { sim, flags, gatewayGiven } = parseArgs(argv, 'plan');
  if (sim.workload === 'multi-turn')
    throw new ConfigError(
      '--workload multi-turn is closed-loop (each turn waits for the last reply), so its arrivals depend on the fleet: plan needs trace, envelope or bursty',
    );
  if (gatewayGiven.has('autoscaler'))
    throw new ConfigError('plan runs every policy of --policies; give them there, not with --autoscaler');
  const policies = String(flags.get('policies') ?? SIM_FLAGS.policies.default)
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  const unknown = policies.filter((p) => !isAutoscalerName(p));
  if (unknown.length > 0 || policies.length === 0)
    throw new ConfigError(
      `--policies: ${unknown.length > 0 ? `unknown ${unknown.join(', ')}` : 'none given'}; from ${AUTOSCALER_NAMES.join(', ')}`,
    );
  return {
    sim,
    policies: [...new Set(policies)] as AutoscalerName[],
    jobs: (flags.get('jobs') as number | undefined) ?? DEFAULT_PLAN_JOBS,
    maxFixed: (flags.get('max_fixed') as number | undefined) ?? SIM_FLAGS.max_fixed.default,
    maxWorkers: gatewayGiven.has('max_workers') ? sim.config.maxWorkers : undefined,
  };
}

function parseArgs(
  argv: readonly string[],
  command: SimCommand,
): { sim: SimArgs; flags: ReadonlyMap<SimFlagName, string | number | boolean | Range>; gatewayGiven: Set<string> } {
  const flags = new Map<SimFlagName, string | number | boolean | Range>();
  const gateway: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument ${JSON.stringify(arg)} (see --help)`);
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const name = flag.slice(2).replaceAll('-', '_');
    const takeValue = (isBool: boolean): string => {
      if (eq >= 0) return arg.slice(eq + 1);
      if (isBool && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--'))) return 'true';
      const next = argv[i + 1];
      if (next === undefined) throw new ConfigError(`${flag} needs a value`);
      i++;
      return next;
    };
    if (Object.hasOwn(SIM_FLAGS, name)) {
      const spec: SimFlag = SIM_FLAGS[name as SimFlagName];
      if (spec.commands && !spec.commands.includes(command))
        throw new ConfigError(`${flag} is an option of ${spec.commands.join(' and ')}, not ${command} (see --help)`);
      flags.set(name as SimFlagName, coerceSimFlag(flag, spec, takeValue(spec.type === 'bool')));
    } else if (GATEWAY.has(name)) {
      const option = name as OptionName;
      // None of the options the simulation uses is a bool: each takes a value.
      gateway[camelName(option)] = coerce(option, takeValue(false), flag);
    } else if (Object.hasOwn(OPTIONS, name)) {
      throw new ConfigError(`${flag} is a gateway option the simulation does not use (see --help)`);
    } else throw new ConfigError(`unknown option ${flag} (see --help)`);
  }
  const workload = (flags.get('workload') ?? 'trace') as WorkloadName;
  for (const [name] of flags) {
    const only = (SIM_FLAGS[name] as SimFlag).workloads;
    if (only && !only.includes(workload))
      throw new ConfigError(
        `--${name.replaceAll('_', '-')} is a knob of --workload ${only.join(' and ')}, not ${workload}`,
      );
  }
  if (flags.get('trace') === '') throw new ConfigError('--trace needs a file');
  if (flags.has('duration') && flags.has('days')) throw new ConfigError('give --duration or --days, not both');
  const budgetError = tokenBudgetError(
    (flags.get('max_num_batched_tokens') as number | undefined) ?? 0,
    DEFAULT_PROFILE.maxNumSeqs,
  );
  if (budgetError) throw new ConfigError(`--${budgetError}`);
  const config = resolveOptions({ skypilotTask: '(simulated)', ...gateway });
  // plan sets max_workers itself when it is not given, so only an explicit one must hold min_workers.
  if (config.minWorkers > config.maxWorkers && (command === 'simulate' || 'maxWorkers' in gateway)) {
    throw new ConfigError(`--min_workers ${config.minWorkers} is above --max_workers ${config.maxWorkers}`);
  }
  const get = <K extends SimFlagName>(k: K) => (flags.get(k) ?? (SIM_FLAGS[k] as SimFlag).default) as never;
  const seed = config.seed ?? DEFAULT_SIM_SEED;
  const file = (k: 'trace' | 'rates' | 'lengths'): string =>
    (flags.get(k) as string | undefined) ?? shippedPath((SIM_FLAGS[k] as SimFlag).default as string);
  const days = flags.get('days') as number | undefined;
  const duration = flags.get('duration') as number | undefined;
  const bursty: BurstyOptions = {
    seed,
    durationS: duration ?? BURSTY.durationS,
    baseRate: get('base_rate'),
    burstSize: get('burst_size'),
    burstEveryS: get('burst_every'),
    burstWidthS: get('burst_width'),
  };
  if (workload === 'bursty') {
    try {
      checkBursty(bursty);
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
  }
  const sim: SimArgs = {
    workload,
    trace: workload === 'trace' ? file('trace') : undefined,
    traceWindow: { startS: get('start'), durationS: duration ?? Infinity },
    timeScale: get('time_scale'),
    envelope: {
      rates: file('rates'),
      meanRate: get('mean_rate'),
      durationS: duration ?? (days === undefined ? ENVELOPE_DEFAULTS.durationS : days * 86_400),
      arrivalCv: get('arrival_cv'),
    },
    bursty,
    lengths: file('lengths'),
    quiet: get('quiet'),
    multiTurn: {
      seed,
      sessions: get('sessions'),
      sessionsPerSecond: get('session_rate'),
      turns: get('turns'),
      systemPromptTokens: get('system_prompt_tokens'),
      userTokens: get('user_tokens'),
      replyTokens: get('reply_tokens'),
      thinkMs: (get('think_time') as number) * 1000,
    },
    provisionDelayS: get('provision_delay'),
    provisionDelayDist: get('provision_delay_dist'),
    provisionDelayCv: get('provision_delay_cv'),
    initialWorkers: flags.get('initial_workers') as number | undefined,
    sampleIntervalS: get('sample_interval'),
    settle: get('settle'),
    profile: {
      kvCacheTokens: get('kv_cache_tokens'),
      offloadCacheTokens: get('offload_cache_tokens'),
      maxNumBatchedTokens: get('max_num_batched_tokens'),
    },
    oracle: get('oracle'),
    faults: { launchFailureRate: get('launch_failure_rate'), preemptionsPerHour: get('preemptions_per_hour') },
    timeline: get('timeline'),
    chart:
      (flags.get('chart') as string | undefined) ?? (command === 'plan' ? 'plan-chart.svg' : 'simulation-chart.svg'),
    json: get('json'),
    config,
    seed,
  };
  return { sim, flags, gatewayGiven: new Set(Object.keys(gateway).map(snakeName)) };
}

const snakeName = (camel: string): string => camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function coerceSimFlag(flag: string, spec: SimFlag, raw: string): string | number | boolean | Range {
  const bad = (expected: string): never => {
    throw new ConfigError(`${flag}: expected ${expected}, got ${JSON.stringify(raw)}`);
  };
  switch (spec.type) {
    case 'bool':
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      return bad('true or false');
    case 'range': {
      const m = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(raw);
      const lo = Number(m?.[1]);
      const hi = Number(m?.[2]);
      if (!m || lo > hi || lo < (spec.min ?? 0) || (spec.max !== undefined && hi > spec.max))
        return bad(
          `MIN-MAX, whole numbers with ${spec.min ?? 0} <= MIN <= MAX${spec.max === undefined ? '' : ` <= ${spec.max}`}`,
        );
      return [lo, hi];
    }
    case 'string':
      if (spec.choices && !spec.choices.includes(raw)) bad(`one of ${spec.choices.join(', ')}`);
      return raw;
    case 'int':
    case 'number': {
      const n = raw.trim() === '' ? NaN : Number(raw);
      if (!Number.isFinite(n) || (spec.type === 'int' && !Number.isInteger(n)))
        bad(spec.type === 'int' ? 'an integer' : 'a number');
      if (spec.min !== undefined && (spec.exclusiveMin ? n <= spec.min : n < spec.min))
        bad(`a value ${spec.exclusiveMin ? '>' : '>='} ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) bad(`a value <= ${spec.max}`);
      return n;
    }
  }
}

/** `flockserve simulate --help`, from the two tables. */
export function simulateHelp(): string {
  return [
    'Usage: flockserve simulate [--trace FILE] [options]',
    '       flockserve simulate --workload multi-turn|envelope|bursty [options]',
    '',
    "Runs the gateway's core (queue, balancer, load tracker, fleet, autoscaler) on a virtual clock",
    'against SIMULATED workers (the engine simulator’s performance model) and SIMULATED launches,',
    'fed the arrivals of a trace, multi-turn chat sessions, a rate envelope or bursts. Prints requests, queue wait, time to',
    'first token, latency, throughput, the engines’ prefix-cache hit rate, cost in worker-seconds,',
    'peak workers and scale events; writes a timeline CSV and an SVG chart.',
    `Same seed, same numbers (default seed ${DEFAULT_SIM_SEED}).`,
    '',
    ...optionsHelp('simulate'),
  ].join('\n');
}

/** The options a command takes, from the two tables, as --help lists them. */
export function optionsHelp(command: SimCommand): string[] {
  const lines = ['Simulation options:'];
  for (const [name, spec] of Object.entries(SIM_FLAGS) as [string, SimFlag][]) {
    if (spec.commands && !spec.commands.includes(command)) continue;
    const shown = Array.isArray(spec.default) ? spec.default.join('-') : String(spec.default);
    const def = spec.default === undefined ? '' : ` (default: ${shown})`;
    const choices = spec.choices ? `; one of ${spec.choices.join(', ')}` : '';
    lines.push(`  --${name.replaceAll('_', '-')} <${spec.type}>${def}${choices}`, `      ${spec.help}`);
  }
  lines.push('', `Gateway options the ${command === 'plan' ? 'runs use' : 'simulation uses'} (as for flockserve):`);
  for (const name of SIM_GATEWAY_OPTIONS) {
    if (command === 'plan' && name === 'autoscaler') continue;
    const spec: OptionSpec = OPTIONS[name];
    const def = formatDefault(spec.default);
    lines.push(`  --${name} <${spec.type}> (default: ${def})`, `      ${spec.help}`);
  }
  return lines;
}
