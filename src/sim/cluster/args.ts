import { OPTIONS, camelName, type Config, type OptionName, type OptionSpec } from '../../config/options.js';
import { ConfigError, coerce, formatDefault, resolveOptions } from '../../config/resolve.js';
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
  'panic_window',
  'cold_start_timeout',
  'worker_capacity',
  'max_queue_length',
  'queue_timeout',
  'worker_probe_interval',
  'worker_unhealthy_timeout',
  'drain_timeout',
] as const satisfies readonly OptionName[];

interface SimFlag {
  readonly type: 'string' | 'number' | 'int' | 'bool';
  readonly help: string;
  readonly default?: string | number | boolean;
  readonly min?: number;
  /** The value must be strictly greater than `min`. */
  readonly exclusiveMin?: boolean;
  readonly choices?: readonly string[];
}

/** Flags only the simulation has. */
export const SIM_FLAGS = {
  trace: {
    type: 'string',
    help: 'CSV trace: TIMESTAMP,ContextTokens,GeneratedTokens (Azure LLM inference trace format).',
  },
  time_scale: {
    type: 'number',
    default: 1,
    min: 0,
    exclusiveMin: true,
    help: 'Arrivals come this many times faster than in the trace (4: the hour in 15 minutes, 4x the load).',
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
  initial_workers: {
    type: 'int',
    min: 0,
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
  timeline: { type: 'string', default: 'simulation-timeline.csv', help: 'Where the timeline CSV is written.' },
  chart: { type: 'string', default: 'simulation-chart.svg', help: 'Where the SVG chart is written.' },
  json: { type: 'bool', default: false, help: 'Print the summary as JSON instead of a table.' },
} as const satisfies Record<string, SimFlag>;

type SimFlagName = keyof typeof SIM_FLAGS;

export interface SimArgs {
  readonly trace: string;
  readonly timeScale: number;
  readonly provisionDelayS: number;
  readonly provisionDelayDist: LaunchDelayDistribution;
  readonly provisionDelayCv: number;
  readonly initialWorkers: number | undefined;
  readonly sampleIntervalS: number;
  readonly settle: boolean;
  readonly timeline: string;
  readonly chart: string;
  readonly json: boolean;
  /** The gateway's options; the simulation reads those in SIM_GATEWAY_OPTIONS. */
  readonly config: Config;
  readonly seed: number;
}

/** Seed when none is given: a simulation is reproducible by default. */
export const DEFAULT_SIM_SEED = 1;

const GATEWAY = new Set<string>(SIM_GATEWAY_OPTIONS);

/** `flockserve simulate` argv → arguments; throws ConfigError naming the flag. */
export function parseSimulateArgs(argv: readonly string[]): SimArgs | 'help' {
  if (argv.includes('--help') || argv.includes('-h')) return 'help';
  const sim = new Map<SimFlagName, string | number | boolean>();
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
      sim.set(name as SimFlagName, coerceSimFlag(flag, spec, takeValue(spec.type === 'bool')));
    } else if (GATEWAY.has(name)) {
      const option = name as OptionName;
      // None of the options the simulation uses is a bool: each takes a value.
      gateway[camelName(option)] = coerce(option, takeValue(false), flag);
    } else if (Object.hasOwn(OPTIONS, name)) {
      throw new ConfigError(`${flag} is a gateway option the simulation does not use (see --help)`);
    } else throw new ConfigError(`unknown option ${flag} (see --help)`);
  }
  const trace = sim.get('trace');
  if (typeof trace !== 'string' || trace === '') throw new ConfigError('--trace FILE is required');
  const config = resolveOptions({ skypilotTask: '(simulated)', ...gateway });
  if (config.minWorkers > config.maxWorkers) {
    throw new ConfigError(`--min_workers ${config.minWorkers} is above --max_workers ${config.maxWorkers}`);
  }
  const get = <K extends SimFlagName>(k: K) => (sim.get(k) ?? (SIM_FLAGS[k] as SimFlag).default) as never;
  return {
    trace,
    timeScale: get('time_scale'),
    provisionDelayS: get('provision_delay'),
    provisionDelayDist: get('provision_delay_dist'),
    provisionDelayCv: get('provision_delay_cv'),
    initialWorkers: sim.get('initial_workers') as number | undefined,
    sampleIntervalS: get('sample_interval'),
    settle: get('settle'),
    timeline: get('timeline'),
    chart: get('chart'),
    json: get('json'),
    config,
    seed: config.seed ?? DEFAULT_SIM_SEED,
  };
}

function coerceSimFlag(flag: string, spec: SimFlag, raw: string): string | number | boolean {
  const bad = (expected: string): never => {
    throw new ConfigError(`${flag}: expected ${expected}, got ${JSON.stringify(raw)}`);
  };
  switch (spec.type) {
    case 'bool':
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      return bad('true or false');
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
      return n;
    }
  }
}

/** `flockserve simulate --help`, from the two tables. */
export function simulateHelp(): string {
  const lines = [
    'Usage: flockserve simulate --trace FILE [options]',
    '',
    "Runs the gateway's core (queue, balancer, load tracker, fleet, autoscaler) on a virtual clock",
    'against SIMULATED workers (the engine simulator’s performance model) and SIMULATED launches,',
    'fed the arrivals of a trace. Prints requests, queue wait, time to first token, latency, cost in',
    'worker-seconds, peak workers and scale events; writes a timeline CSV and an SVG chart.',
    `Same seed, same numbers (default seed ${DEFAULT_SIM_SEED}).`,
    '',
    'Simulation options:',
  ];
  for (const [name, spec] of Object.entries(SIM_FLAGS) as [string, SimFlag][]) {
    const def = spec.default === undefined ? '' : ` (default: ${String(spec.default)})`;
    const choices = spec.choices ? `; one of ${spec.choices.join(', ')}` : '';
    lines.push(`  --${name.replaceAll('_', '-')} <${spec.type}>${def}${choices}`, `      ${spec.help}`);
  }
  lines.push('', 'Gateway options the simulation uses (as for flockserve):');
  for (const name of SIM_GATEWAY_OPTIONS) {
    const spec: OptionSpec = OPTIONS[name];
    const def = formatDefault(spec.default);
    lines.push(`  --${name} <${spec.type}> (default: ${def})`, `      ${spec.help}`);
  }
  return lines.join('\n');
}
