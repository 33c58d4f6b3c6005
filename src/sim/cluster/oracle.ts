/**
 * CLAIRVOYANT yardsticks for routing, in the simulation only: they read every simulated
 * engine's state, which no gateway can.
 *
 * - 'longest-prefix' sends each request to the worker whose engine holds the longest cached
 *   prefix of its prompt right now, ignoring load (among workers with a free slot; ties, e.g.
 *   nothing cached anywhere, go to the least loaded). Its hit rate is what routing alone could
 *   get from these caches; a policy's hit rate is judged by how close it comes.
 * - 'first-token' sends each request to the worker whose engine would give it its first
 *   token soonest (EngineModel.firstTokenMs: the prefill queued there and the prompt's own
 *   uncached part, in the steps the running decodes leave). Greedy, one request at a time, it
 *   is not the best schedule there is, but no gateway's estimate of queues and caches is better
 *   than the engines' own: where it misses a time-to-first-token target, routing that knows
 *   less is not expected to meet it.
 */
import type { BalancerPolicy, Candidates, PickContext } from '../../core/balancer/types.js';
import type { Worker } from '../../core/types.js';
import type { EngineModel } from '../engine-model.js';

/** What the engines see of a prompt the balancer sees as its route text. */
export interface EnginePrompt {
  readonly tokens: number;
  /** The engine's block hashes of it (the engine may read the prompt differently, e.g. a chat template). */
  readonly blocks: readonly number[];
}

/** A worker's simulated engine, and the engines' view of a prompt by its route text. */
interface EngineView {
  readonly engine: (w: Worker) => EngineModel | undefined;
  readonly prompt: (routeText: string) => EnginePrompt | undefined;
}

/** Which yardstick: the longest cached prefix, or the soonest first token. */
export type OracleKind = 'longest-prefix' | 'first-token';

/**
 * A worker's rank for a prompt under each yardstick, lower first; undefined: not a pick of this
 * yardstick's (no cached prefix there), left to the least loaded if no worker is.
 */
const RANKS: Record<OracleKind, (engine: EngineModel, prompt: EnginePrompt) => number | undefined> = {
  'longest-prefix': (engine, prompt) => {
    const blocks = engine.cachedPrefixBlocks(prompt.blocks);
    return blocks === 0 ? undefined : -blocks;
  },
  'first-token': (engine, prompt) => engine.firstTokenMs(prompt.tokens, prompt.blocks),
};

/** The best-ranked worker with a free slot; equal ranks go to the less loaded. */
export class EngineOracle implements BalancerPolicy {
  readonly name: string;
  readonly readsPrompt = true;
  readonly #rank: (engine: EngineModel, prompt: EnginePrompt) => number | undefined;
  readonly #view: EngineView;

  constructor(kind: OracleKind, view: EngineView) {
    this.name = `oracle (${kind})`;
    this.#rank = RANKS[kind];
    this.#view = view;
  }

  /** O(workers × cached prefix, and × requests queued for first-token): a yardstick, not a policy to run. */
  pick(candidates: Candidates, ctx: PickContext): Worker | undefined {
    const prompt = ctx.promptText === undefined ? undefined : this.#view.prompt(ctx.promptText);
    if (!prompt) return candidates.leastLoaded(ctx.random);
    let best: Worker | undefined;
    let bestRank = Infinity;
    for (let i = 0; i < candidates.size; i++) {
      const w = candidates.at(i);
      const engine = this.#view.engine(w);
      const rank = engine && this.#rank(engine, prompt);
      if (rank === undefined || rank > bestRank) continue;
      if (rank < bestRank || best === undefined || w.inFlight * best.capacity < best.inFlight * w.capacity) {
        best = w;
        bestRank = rank;
      }
    }
    return best ?? candidates.leastLoaded(ctx.random);
  }
}
