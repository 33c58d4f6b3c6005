/**
 * The CLAIRVOYANT yardstick for prefix-aware routing, in the simulation only: it reads every
 * simulated engine's prefix cache (no gateway can) and sends each request to the worker that
 * holds the longest cached prefix of its prompt right now, ignoring load (among workers with a
 * free slot; ties, e.g. nothing cached anywhere, go to the least loaded). Its hit rate is what
 * routing alone could get from these caches; a policy is judged by how close it comes.
 */
import type { BalancerPolicy, Candidates, PickContext } from '../../core/balancer/types.js';
import type { Worker } from '../../core/types.js';
import type { EngineModel } from '../engine-model.js';

export class OracleBalancer implements BalancerPolicy {
  readonly name = 'oracle';
  readonly readsPrompt = true;
  readonly #engine: (w: Worker) => EngineModel | undefined;
  readonly #blocks: (routeText: string) => readonly number[] | undefined;

  /**
   * `engine` is a worker's simulated engine; `blocks` the engine's block hashes of the prompt
   * the balancer sees as `routeText` (the engine may read the prompt differently, e.g. a chat
   * template).
   */
  constructor(
    engine: (w: Worker) => EngineModel | undefined,
    blocks: (routeText: string) => readonly number[] | undefined,
  ) {
    this.#engine = engine;
    this.#blocks = blocks;
  }

  /** O(workers × cached prefix): a yardstick, not a policy to run. */
  pick(candidates: Candidates, ctx: PickContext): Worker | undefined {
    const blocks = ctx.promptText === undefined ? undefined : this.#blocks(ctx.promptText);
    if (!blocks || blocks.length === 0) return candidates.leastLoaded(ctx.random);
    let best: Worker | undefined;
    let bestBlocks = 0;
    for (let i = 0; i < candidates.size; i++) {
      const w = candidates.at(i);
      const n = this.#engine(w)?.cachedPrefixBlocks(blocks) ?? 0;
      if (n === 0 || n < bestBlocks) continue;
      if (n > bestBlocks || best === undefined || w.inFlight * best.capacity < best.inFlight * w.capacity) {
        best = w;
        bestBlocks = n;
      }
    }
    return best ?? candidates.leastLoaded(ctx.random);
  }
}
