/** What the engine simulator's route handlers get from the server (see server.ts). */
import type { ServerResponse } from 'node:http';
import type { EngineModel, FinishReason } from './engine-model.js';
import type { LoraAdapters } from './lora-adapters.js';
import type { ResponseStore } from './responses-store.js';

export interface Generation {
  readonly promptTokens: number;
  readonly maxTokens: number;
  /** The prompt as text, hashed into blocks for the engine's prefix cache. */
  readonly promptText?: string;
  onToken(index: number): void;
  onDone(reason: FinishReason): void;
  onError(error: Error): void;
}

export interface SimContext {
  /** The served model name (`--model`). */
  readonly modelName: string;
  readonly model: EngineModel;
  /**
   * The Responses API's answers kept for previous_response_id and GET /v1/responses/{id};
   * undefined when the simulator keeps none (vLLM's default, without VLLM_ENABLE_RESPONSES_API_STORE).
   */
  readonly responseStore: ResponseStore | undefined;
  /** The LoRA adapters loaded (none without --enable-lora); requests may name one as their model. */
  readonly loras: LoraAdapters;
  /** Varies the generated words. */
  readonly seed: number;
  /** The text of generated token `index` (depends on --seed, or --repetitive). */
  tokenText(index: number): string;
  /** The first `count` tokens' text joined: a non-streamed answer. */
  generatedText(count: number): string;
  /**
   * Runs one generation on the engine model for `res`: a client that disconnects cancels it,
   * and the crash-after trigger fires here.
   */
  generate(res: ServerResponse, gen: Generation): void;
}
