import type { Clock } from '../clock.js';
import { IndexedHeap, type HeapItem } from '../heap.js';
import type { Worker } from '../types.js';
import type {
  BalancerOptions,
  BalancerPolicy,
  Candidates,
  EngineLoadSample,
  EngineLoadSink,
  PickContext,
} from './types.js';

export const ENGINE_LOAD_DEFAULTS = {
  /** Seconds between scrapes of each ready worker's /metrics. */
  engineMetricsInterval: 1,
  /** A sample older than 3 scrape intervals is unknown: one missed scrape is tolerated, two are not. */
  staleIntervals: 3,
} as const;

interface Node extends HeapItem {
  readonly worker: Worker;
  sample: EngineLoadSample | undefined;
  sampledAt: number;
  /** Whether `sample` is what the score uses (false: unknown, the pessimistic engine part). */
  fresh: boolean;
  score: number;
  /** Tie-break: the worker whose score changed longest ago goes first (rotates among equals). */
  seq: number;
  /** Index in the heap, -1 when not in it (not ready, or full). */
  heapPos: number;
}

/** Lowest score first; on a tie, the worker whose score changed longest ago. */
const ranksFirst = (a: Node, b: Node): boolean => a.score < b.score || (a.score === b.score && a.seq < b.seq);

const STOPPED_CLOCK: Clock = { now: () => 0, setTimer: () => ({ cancel() {} }) };

/**
 * Least load as the engines report it, combined with the gateway's own in-flight counts:
 *
 *   score = (inFlight + engine waiting) / capacity + KV cache usage
 *
 * lowest wins. The engine part catches what the gateway cannot count: requests the engine
 * queued (it is slower, or serves other clients) and long prompts filling its KV cache.
 * Worked example, capacity 30: w1 with 10 in flight, 0 waiting, KV 0.2 scores 0.53;
 * w2 with 8 in flight, 4 waiting, KV 0.9 scores 1.3 → w1.
 *
 * Samples are pushed by a monitor (src/upstream/engine-metrics.ts) once per scrape round;
 * the policy never fetches. A sample older than `engineMetricsStaleMs`, a failed scrape, or a
 * worker never scraped is UNKNOWN, not idle: its engine part is the worst one among workers
 * with fresh samples (0 when none is fresh, which makes this least-connection).
 *
 * Pick: O(log n), a min-heap of the workers with room keyed by score, re-keyed on each
 * in-flight change (onLoadChange) and rebuilt in O(n) per scrape round; a sample that went
 * stale since is found lazily when it reaches the top.
 */
export class EngineLoad implements BalancerPolicy, EngineLoadSink {
  readonly name = 'engine-load';
  readonly #clock: Clock;
  readonly #staleMs: number;
  readonly #nodes = new Map<Worker, Node>();
  readonly #heap = new IndexedHeap<Node>(ranksFirst);
  #unknownPart = 0;
  #seq = 0;

  constructor(opts: BalancerOptions = {}) {
    this.#clock = opts.clock ?? STOPPED_CLOCK;
    this.#staleMs =
      opts.engineMetricsStaleMs ??
      ENGINE_LOAD_DEFAULTS.staleIntervals * ENGINE_LOAD_DEFAULTS.engineMetricsInterval * 1000;
    if (!(this.#staleMs > 0))
      throw new RangeError(`the engine metrics stale time must be positive, got ${this.#staleMs}`);
  }

  pick(candidates: Candidates, _ctx: PickContext): Worker | undefined {
    const now = this.#clock.now();
    for (;;) {
      const top = this.#heap.peek();
      if (!top) return undefined;
      if (top.fresh && now - top.sampledAt > this.#staleMs) {
        top.fresh = false;
        this.#rekey(top);
        continue;
      }
      // Defensive: the heap holds exactly the workers with room.
      if (!candidates.has(top.worker)) {
        this.#heap.remove(top);
        continue;
      }
      return top.worker;
    }
  }

  /** The score the policy ranks `w` by now (tests, status). */
  scoreOf(w: Worker): number | undefined {
    return this.#nodes.get(w)?.score;
  }

  reportEngineLoad(samples: ReadonlyMap<Worker, EngineLoadSample | undefined>): void {
    const now = this.#clock.now();
    for (const [worker, sample] of samples) {
      const node = this.#nodes.get(worker);
      if (!node) continue;
      node.sample = sample;
      node.sampledAt = now;
    }
    // Fresh samples first: the unknown part is the worst fresh one.
    let worst = 0;
    for (const node of this.#nodes.values()) {
      node.fresh = node.sample !== undefined && now - node.sampledAt <= this.#staleMs;
      if (node.fresh) worst = Math.max(worst, enginePart(node.worker, node.sample!));
    }
    this.#unknownPart = worst;
    for (const node of this.#nodes.values()) node.score = this.#score(node);
    this.#heap.heapify();
  }

  onMembershipChange(ready: readonly Worker[]): void {
    const keep = new Set(ready);
    for (const node of this.#nodes.values()) {
      if (!keep.has(node.worker)) {
        this.#heap.remove(node);
        this.#nodes.delete(node.worker);
      }
    }
    for (const worker of ready) {
      if (this.#nodes.has(worker)) continue;
      const node: Node = { worker, sample: undefined, sampledAt: 0, fresh: false, score: 0, seq: 0, heapPos: -1 };
      this.#nodes.set(worker, node);
      this.#rekey(node);
    }
  }

  onLoadChange(worker: Worker): void {
    const node = this.#nodes.get(worker);
    if (node) this.#rekey(node);
  }

  #score(node: Node): number {
    const w = node.worker;
    const engine = node.fresh ? enginePart(w, node.sample!) : this.#unknownPart;
    return w.inFlight / w.capacity + engine;
  }

  /** Recomputes the node's score and puts it where it belongs: in the heap iff ready with room. */
  #rekey(node: Node): void {
    node.score = this.#score(node);
    node.seq = ++this.#seq;
    const w = node.worker;
    const room = w.state === 'ready' && w.inFlight < w.capacity;
    if (room) this.#heap.update(node);
    else this.#heap.remove(node);
  }
}

/** The engine's share of the score: its queue relative to the worker's capacity, plus KV usage. */
function enginePart(w: Worker, s: EngineLoadSample): number {
  return s.waiting / w.capacity + (s.kvCacheUsage ?? 0);
}
