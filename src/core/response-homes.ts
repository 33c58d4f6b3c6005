import { BoundedMap } from './bounded-map.js';

/**
 * Which worker holds each stored answer of OpenAI's Responses API. An engine keeps the answers
 * it stores in its own memory (vLLM with VLLM_ENABLE_RESPONSES_API_STORE), so a later turn that
 * names one (`previous_response_id`, GET /v1/responses/{id}) can only be served by the worker
 * that wrote it: any other answers 404.
 *
 * Bounded: the least recently named ids are forgotten first, so memory stays fixed whatever
 * the traffic (about 100 bytes an id: 9 MiB at the default capacity, vLLM's ids). A forgotten
 * id's request is balanced as any other.
 */
export class ResponseHomes {
  /** Naming an id again makes it the most recent. */
  readonly #homes: BoundedMap<string, string>;

  constructor(capacity = DEFAULT_CAPACITY) {
    this.#homes = new BoundedMap(capacity);
  }

  /** `worker` wrote the answer `id`. */
  remember(id: string, worker: string): void {
    this.#homes.set(id, worker);
  }

  /** The worker that wrote `id`, if remembered. */
  homeOf(id: string): string | undefined {
    const worker = this.#homes.get(id);
    if (worker !== undefined) this.#homes.set(id, worker);
    return worker;
  }

  get size(): number {
    return this.#homes.size;
  }
}

/** Ids remembered by default: a conversation's turns come minutes apart, not after 100,000 others. */
export const DEFAULT_CAPACITY = 100_000;
