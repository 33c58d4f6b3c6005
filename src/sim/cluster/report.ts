import { basename } from 'node:path';
import type { Config } from '../../config/options.js';
import { DEFAULT_PROFILE, stepBudget, type EngineProfile } from '../engine-model.js';
import type { Percentiles } from './metrics.js';
import type { SimulationResult, TimelineRow } from './run.js';

/** What the report says about how the run was set up. */
export interface RunDescription {
  /** What was sent: the trace file (and the part of it replayed, when not all), or the generator and its size. */
  readonly workload: string;
  /** The trace file and its speed-up, for a trace workload. */
  readonly trace?: string;
  readonly timeScale?: number;
  /** Files a generated workload came from (rate envelope, lengths), for their attributions. */
  readonly sources?: readonly string[];
  readonly config: Config;
  readonly seed: number;
  readonly launch: string;
  /** Wall-clock seconds the simulation took. */
  readonly wallS?: number;
  /** Routed by the clairvoyant oracle instead of the configured balancer. */
  readonly oracle?: boolean;
  /** The engines' profile where it is not the default. */
  readonly profile?: Partial<EngineProfile>;
}

/** Known public traces, by a word of their file name, and the attribution results from them must carry. */
const ATTRIBUTIONS: readonly [RegExp, string][] = [
  [
    /azure.*(2024|1week)/i,
    'Trace: Azure LLM inference trace 2024 (AzurePublicDataset), CC-BY 4.0; Stojkovic et al., "DynamoLLM", HPCA 2025.',
  ],
  [
    /azure/i,
    'Trace: Azure LLM inference trace 2023 (AzurePublicDataset), CC-BY 4.0; Patel et al., "Splitwise", ISCA 2024.',
  ],
  [/burstgpt/i, 'Trace: BurstGPT (HPMLL/BurstGPT), CC-BY 4.0; Wang et al., "BurstGPT", arXiv:2401.17644.'],
  [
    /mooncake/i,
    'Trace: Mooncake trace (kvcache-ai/Mooncake, FAST25-release), Apache-2.0; Qin et al., "Mooncake", FAST 2025.',
  ],
  [
    /servegen/i,
    'Rates: ServeGen m-large (alibaba/ServeGen), Apache-2.0; Xiang et al., "ServeGen", arXiv:2505.09999, 2025.',
  ],
];

/** The attribution a known public trace's results must carry, or undefined for any other file. */
export function traceAttribution(tracePath: string | undefined): string | undefined {
  if (tracePath === undefined) return undefined;
  return ATTRIBUTIONS.find(([name]) => name.test(basename(tracePath)))?.[1];
}

/** The attributions of every file a run read, once each. */
export function attributions(d: RunDescription): string[] {
  const out = new Set<string>();
  for (const f of [d.trace, ...(d.sources ?? [])]) {
    const a = traceAttribution(f);
    if (a) out.add(a);
  }
  return [...out];
}

/** The policy's knobs, as a short phrase. */
export function policyKnobs(c: Config): string {
  const common = `window ${c.queueTrackingWindow} s, interval ${c.autoscaleInterval} s, downscale delay ${c.downscaleDelay} s`;
  switch (c.autoscaler) {
    case 'slo':
      return `p99 queue wait target (queue_wait_slo) ${c.queueWaitSlo} s, interval ${c.autoscaleInterval} s, downscale delay ${c.downscaleDelay} s (also the launch time assumed before one is seen)`;
    case 'target-tracking':
      return `target ${c.targetQueuePerWorker}/worker, panic window ${c.panicWindow} s, ${common}`;
    default:
      return `autoscale_up ${c.autoscaleUp}, autoscale_down ${c.autoscaleDown}, ${common}`;
  }
}

/** The engines' step budget as the report names it (0: none). */
function describeBudget(tokens: number): string {
  return tokens > 0 ? `chunked prefill, ${tokens} tokens a step` : 'whole-prompt prefill';
}

/** Scale-ups and scale-downs among the applied decisions. */
export function scaleCounts(r: SimulationResult): { up: number; down: number } {
  let up = 0;
  for (const e of r.scaleEvents) if (e.to > e.from) up++;
  return { up, down: r.scaleEvents.length - up };
}

/** The text table `flockserve simulate` prints. */
export function formatReport(r: SimulationResult, d: RunDescription): string {
  const s = r.summary;
  const c = d.config;
  const failed = Object.entries(s.failed);
  const nFailed = failed.reduce((n, [, k]) => n + k, 0);
  const { up, down } = scaleCounts(r);
  const row = (label: string, p: Percentiles): string =>
    label.padEnd(18) + [p.p50, p.p95, p.p99, p.mean, p.max].map((v) => v.toFixed(2).padStart(9)).join('');
  const lines = [
    'FlockServe simulation: the real gateway core on virtual time, SIMULATED workers and launches',
    d.trace === undefined
      ? `workload       ${d.workload}`
      : `trace          ${d.workload} (${s.requests} requests), time scale ${d.timeScale}`,
    ...attributions(d).map((a) => `               ${a}`),
    `autoscaler     ${c.autoscaler} (${policyKnobs(c)})`,
    `fleet          workers [${c.minWorkers}, ${c.maxWorkers}], capacity ${c.workerCapacity}, balancer ${d.oracle ? 'oracle (clairvoyant: the longest cached prefix, load ignored)' : c.loadBalancer}`,
    `engines        KV cache ${d.profile?.kvCacheTokens ?? DEFAULT_PROFILE.kvCacheTokens} tokens${d.profile?.offloadCacheTokens ? `, host offload ${d.profile.offloadCacheTokens} tokens` : ''}, ${describeBudget(stepBudget(d.profile))}`,
    `launches       ${d.launch}; seed ${d.seed}`,
    '',
    'seconds'.padEnd(18) + ['p50', 'p95', 'p99', 'mean', 'max'].map((h) => h.padStart(9)).join(''),
    row('queue wait', s.queueWaitS),
    row('time to 1st token', s.ttftS),
    row('end-to-end', s.e2eS),
    '',
    `throughput     ${(s.completed / s.durationS).toFixed(2)} req/s, ${(s.outputTokens / s.durationS).toFixed(0)} output tokens/s`,
    `prefix cache   ${(r.prefixCache.hitRate * 100).toFixed(1)}% of prompt tokens served from the engines' caches (${r.prefixCache.hitTokens} of ${r.prefixCache.queryTokens})`,
    `balance        busiest worker ${r.balance.imbalance.toFixed(2)}x the mean in flight; a worker idle while another queued ${(r.balance.idleWhileQueued * 100).toFixed(1)}% of the time; prefill utilisation ${r.prefillUtilisation.toFixed(2)}`,
    `requests       ${s.requests}, completed ${s.completed}, failed ${nFailed}${failed.length ? ` (${failed.map(([k, n]) => `${k} ${n}`).join(', ')})` : ''}${s.unfinished ? `, UNFINISHED ${s.unfinished}` : ''}`,
    `cost           ${s.workerSeconds.toFixed(0)} worker-seconds (${(s.workerSeconds / 3600).toFixed(2)} worker-hours) over ${s.durationS.toFixed(0)} s`,
    `workers        peak ${s.peakWorkers}, launched ${r.launches}; scale events ${r.scaleEvents.length} (${up} up, ${down} down)`,
  ];
  if (s.settle) {
    lines.push(
      `settle         back at min_workers ${s.settle.seconds.toFixed(0)} s after the last request, costing ${s.settle.workerSeconds.toFixed(0)} more worker-seconds`,
    );
  }
  if (d.wallS !== undefined)
    lines.push(`simulated      ${s.durationS.toFixed(0)} s of traffic in ${d.wallS.toFixed(2)} s`);
  return lines.join('\n');
}

const COLUMNS = ['t_s', 'workers', 'ready', 'launching', 'queue', 'waiting', 'queue_mean'] as const;

/** The timeline as CSV, one row per sample. */
export function timelineCsv(rows: readonly TimelineRow[]): string {
  const out = [COLUMNS.join(',')];
  for (const r of rows) {
    out.push([r.tS.toFixed(1), r.workers, r.ready, r.launching, r.queue, r.waiting, r.queueMean.toFixed(3)].join(','));
  }
  return out.join('\n') + '\n';
}
