import type { EngineLoadSample, EngineLoadSink } from '../core/balancer/types.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Worker } from '../core/types.js';

/**
 * The metrics the engine-load policy reads, by engine. vLLM renamed its KV gauge
 * (gpu_cache_usage_perc → kv_cache_usage_perc); both are fractions 0..1 despite "_perc".
 */
const WAITING = ['vllm:num_requests_waiting', 'tgi_queue_size'];
const RUNNING = ['vllm:num_requests_running', 'tgi_batch_current_size'];
const KV_USAGE = ['vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc'];

/**
 * Reads an engine's Prometheus text for the gauges above; a metric with several label sets
 * (one per model) is summed (KV usage: the highest is taken). Undefined when the text has
 * neither a waiting nor a running gauge: an engine we cannot read is unknown, not idle.
 *
 *   parseEngineMetrics('vllm:num_requests_waiting{model_name="m"} 3\nvllm:num_requests_running{model_name="m"} 5')
 *     → { waiting: 3, running: 5, kvCacheUsage: undefined }
 */
export function parseEngineMetrics(text: string): EngineLoadSample | undefined {
  const values = new Map<string, number[]>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    // name{labels} value [timestamp]: the name ends at '{' or the first space.
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    const nameEnd = brace >= 0 && (space < 0 || brace < space) ? brace : space;
    if (nameEnd <= 0) continue;
    const name = line.slice(0, nameEnd);
    if (!WAITING.includes(name) && !RUNNING.includes(name) && !KV_USAGE.includes(name)) continue;
    const afterLabels = brace === nameEnd ? labelsEnd(line, brace) : nameEnd;
    if (afterLabels < 0) continue;
    const value = Number(line.slice(afterLabels).trim().split(/\s+/)[0]);
    if (!Number.isFinite(value)) continue;
    const list = values.get(name) ?? [];
    list.push(value);
    values.set(name, list);
  }
  const first = (names: string[], combine: (xs: number[]) => number): number | undefined => {
    for (const n of names) {
      const xs = values.get(n);
      if (xs) return combine(xs);
    }
    return undefined;
  };
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const waiting = first(WAITING, sum);
  const running = first(RUNNING, sum);
  if (waiting === undefined && running === undefined) return undefined;
  return { waiting: waiting ?? 0, running: running ?? 0, kvCacheUsage: first(KV_USAGE, (xs) => Math.max(...xs)) };
}

/** Index just past the '}' closing the label set opened at `open`; quoted values may hold '}' or '\"'. -1 if unclosed. */
function labelsEnd(line: string, open: number): number {
  let quoted = false;
  for (let i = open + 1; i < line.length; i++) {
    const ch = line[i];
    if (quoted && ch === '\\') i++;
    else if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === '}') return i + 1;
  }
  return -1;
}

export interface EngineMetricsScraperOptions {
  readonly clock: Clock;
  readonly intervalMs: number;
  /** The workers to scrape each round (the ready ones). */
  readonly workers: () => readonly Worker[];
  readonly sink: EngineLoadSink;
  /** Path of the engine's Prometheus endpoint. Default /metrics. */
  readonly path?: string;
  /** A scrape slower than this fails (the sample is unknown). Default: the interval. */
  readonly timeoutMs?: number;
  /**
   * Called when a worker's scrapes start failing (not again until one succeeds): the policy
   * treats it as unknown meanwhile, and a log line per second per worker would drown the log.
   */
  readonly onError?: (worker: Worker, err: unknown) => void;
  /** Called when a worker whose scrapes failed answers again. */
  readonly onRecover?: (worker: Worker) => void;
  /**
   * How one worker's sample is taken (it may reject: the sample is unknown). Default: GET its
   * `path` and parse the engine's metrics; the virtual-time simulation reads its engine models.
   */
  readonly sample?: (worker: Worker, signal: AbortSignal) => Promise<EngineLoadSample | undefined>;
}

/**
 * The monitor that pushes engine load into the engine-load policy (SGLang's pattern: policies
 * never fetch on the request path). Every `intervalMs` it GETs each ready worker's /metrics in
 * parallel and reports the whole round at once; the next round is scheduled when this one has
 * finished, so slow engines never pile up scrapes.
 */
export class EngineMetricsScraper {
  readonly #options: EngineMetricsScraperOptions;
  #timer: TimerHandle | undefined;
  #stopped = false;
  readonly #abort = new AbortController();
  readonly #failing = new WeakSet<Worker>();

  constructor(options: EngineMetricsScraperOptions) {
    this.#options = options;
  }

  start(): void {
    this.#stopped = false;
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#abort.abort();
  }

  /** One round now; resolves once the samples have been pushed. */
  async scrapeOnce(): Promise<void> {
    const workers = this.#options.workers();
    const samples = await Promise.all(workers.map((w) => this.#scrape(w)));
    if (this.#stopped) return;
    this.#options.sink.reportEngineLoad(new Map(workers.map((w, i) => [w, samples[i]])));
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#options.clock.setTimer(this.#options.intervalMs, () => {
      void this.scrapeOnce().finally(() => this.#schedule());
    });
  }

  async #scrape(w: Worker): Promise<EngineLoadSample | undefined> {
    try {
      const sample = await (this.#options.sample ?? this.#fetch)(w, this.#abort.signal);
      if (this.#failing.delete(w)) this.#options.onRecover?.(w);
      return sample;
    } catch (err) {
      if (!this.#stopped && !this.#failing.has(w)) {
        this.#failing.add(w);
        this.#options.onError?.(w, err);
      }
      return undefined;
    }
  }

  readonly #fetch = async (w: Worker, signal: AbortSignal): Promise<EngineLoadSample | undefined> => {
    if (!w.url) return undefined;
    // Loaded at the first scrape: the simulation samples its engines directly and never loads it.
    const { request } = await import('undici');
    const res = await request(w.url.replace(/\/+$/, '') + (this.#options.path ?? '/metrics'), {
      method: 'GET',
      signal: AbortSignal.any([signal, AbortSignal.timeout(this.#options.timeoutMs ?? this.#options.intervalMs)]),
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`GET /metrics answered ${res.statusCode}`);
    return parseEngineMetrics(text);
  };
}
