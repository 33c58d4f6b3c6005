/**
 * GET /v1/models's cards in vLLM's shape (ModelCard and ModelPermission,
 * vllm/frontend/entrypoints/serve/engine/protocol.py; filled by show_available_models in
 * vllm/frontend/entrypoints/openai/models/serving.py): the served model first, then one card per
 * loaded LoRA adapter, whose `root` is its path, `parent` its base model and `max_model_len` null.
 */
import { randomUUID } from 'node:crypto';
import type { LoadedAdapter } from './lora-adapters.js';

/** The context length the served model's card reports. */
export const MAX_MODEL_LEN = 131072;

/** vLLM's ModelPermission with its defaults: every card carries one, with an id of its own. */
function modelPermission(created: number) {
  return {
    id: `modelperm-${randomUUID().replaceAll('-', '')}`,
    object: 'model_permission',
    created,
    allow_create_engine: false,
    allow_sampling: true,
    allow_logprobs: true,
    allow_search_indices: false,
    allow_view: true,
    allow_fine_tuning: false,
    organization: '*',
    group: null,
    is_blocking: false,
  };
}

function modelCard(id: string, root: string, parent: string | null, maxModelLen: number | null, created: number) {
  return {
    id,
    object: 'model',
    created,
    owned_by: 'vllm',
    root,
    parent,
    max_model_len: maxModelLen,
    permission: [modelPermission(created)],
  };
}

/** The body of GET /v1/models: the served model, then the adapters in load order. */
export function modelList(modelName: string, adapters: readonly LoadedAdapter[], created: number) {
  return {
    object: 'list',
    data: [
      modelCard(modelName, modelName, null, MAX_MODEL_LEN, created),
      ...adapters.map((a) => modelCard(a.name, a.path, a.parent, null, created)),
    ],
  };
}
