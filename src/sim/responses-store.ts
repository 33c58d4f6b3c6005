/**
 * The Responses API's store of one engine simulator: final response objects kept by id, with the
 * conversation each answered, for `previous_response_id` and GET /v1/responses/{id}. It lives in
 * this process's memory only, as vLLM's does with VLLM_ENABLE_RESPONSES_API_STORE=1: a second
 * replica does not know what the first stored, so a follow-up sent there gets a 404.
 */
import { BoundedMap } from '../core/bounded-map.js';
import type { ConversationMessage, ResponseObject } from './responses-objects.js';

/**
 * The most responses one simulator keeps; storing one more drops the oldest. vLLM's store is an
 * unbounded dict (it warns that it leaks memory); the bound is the simulator's, so a long
 * benchmark run against it stays within a fixed memory.
 */
export const RESPONSES_STORE_LIMIT = 10_000;

export interface StoredResponse {
  /** The final response object, as GET /v1/responses/{id} answers it. */
  readonly response: ResponseObject;
  /** The conversation the response answered (instructions first, as a system message); a follow-up replays it. */
  readonly messages: readonly ConversationMessage[];
}

export class ResponseStore {
  readonly #entries: BoundedMap<string, StoredResponse>;

  constructor(limit = RESPONSES_STORE_LIMIT) {
    this.#entries = new BoundedMap(limit);
  }

  get size(): number {
    return this.#entries.size;
  }

  get(id: string): StoredResponse | undefined {
    return this.#entries.get(id);
  }

  /** Keeps `entry` under `id`; past the limit the entry stored longest ago goes. */
  put(id: string, entry: StoredResponse): void {
    this.#entries.set(id, entry);
  }
}
