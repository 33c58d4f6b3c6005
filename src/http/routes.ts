/**
 * The inference routes the gateway knows by name, each with the JSON schema its body
 * must meet. Bodies are forwarded byte for byte: the schema only checks what routing
 * and the OpenAI/TGI contract need, so unknown fields pass untouched.
 */
export interface InferenceRoute {
  readonly url: string;
  /** The JSON schema of the request body. */
  readonly schema: object;
}

const object = (required: string[], properties: Record<string, unknown>): object => ({
  type: 'object',
  required,
  properties,
});

const common = {
  model: { type: 'string' },
  stream: { type: 'boolean' },
  user: { type: 'string' },
};

export const INFERENCE_ROUTES: readonly InferenceRoute[] = [
  {
    url: '/v1/chat/completions',
    schema: object(['messages'], {
      ...common,
      messages: { type: 'array', minItems: 1, items: { type: 'object', required: ['role'] } },
    }),
  },
  {
    url: '/v1/completions',
    schema: object(['prompt'], {
      ...common,
      prompt: { anyOf: [{ type: 'string' }, { type: 'array' }] },
    }),
  },
  {
    url: '/v1/embeddings',
    schema: object(['input'], {
      model: common.model,
      user: common.user,
      input: { anyOf: [{ type: 'string' }, { type: 'array' }] },
    }),
  },
  {
    url: '/generate',
    schema: object(['inputs'], { inputs: { type: 'string' }, parameters: { type: 'object' }, stream: common.stream }),
  },
  {
    url: '/generate_stream',
    schema: object(['inputs'], { inputs: { type: 'string' }, parameters: { type: 'object' }, stream: common.stream }),
  },
];
