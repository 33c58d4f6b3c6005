import { describe, expect, it } from 'vitest';
import { toOpenAIError } from '../../../src/core/errors.js';
import { errorEventMessage, readWorkerError, workerError } from '../../../src/upstream/worker-error.js';

describe("a worker's error body, whatever its engine's shape", () => {
  // [engine, body, message, param]
  const table: [string, string, string | undefined, string | undefined][] = [
    [
      'older vLLM',
      '{"object":"error","message":"max_tokens must be at least 1, got 0.","type":"BadRequestError","param":null,"code":400}',
      'max_tokens must be at least 1, got 0.',
      undefined,
    ],
    [
      'newer vLLM, OpenAI, SGLang',
      '{"error":{"message":"model x does not exist","type":"NotFoundError","param":"model","code":404}}',
      'model x does not exist',
      'model',
    ],
    [
      'TGI',
      '{"error":"Input validation error: `inputs` cannot be empty","error_type":"validation"}',
      'Input validation error: `inputs` cannot be empty',
      undefined,
    ],
    ['FastAPI 404', '{"detail":"Not Found"}', 'Not Found', undefined],
    [
      'FastAPI validation (422)',
      '{"detail":[{"type":"missing","loc":["body","messages"],"msg":"Field required","input":{}}]}',
      'messages: Field required',
      'messages',
    ],
    ['plain text', 'upstream connect error\n', 'upstream connect error', undefined],
    ['empty', '', undefined, undefined],
    ['JSON of another shape', '{"status":"bad"}', '{"status":"bad"}', undefined],
  ];

  it.each(table)('%s: message and param read', (_engine, body, message, param) => {
    expect(readWorkerError(Buffer.from(body))).toEqual({
      ...(message === undefined ? {} : { message }),
      ...(param === undefined ? {} : { param }),
    });
  });

  it('a long body is cut', () => {
    const said = readWorkerError(Buffer.from('<html>' + 'x'.repeat(5000)));
    expect(said.message?.length).toBe(1001);
  });
});

describe('workerError', () => {
  it("keeps the worker's status and message; the code and type come from the catalogue", () => {
    const body = Buffer.from(
      '{"object":"error","message":"bad max_tokens","type":"BadRequestError","param":null,"code":400}',
    );
    const e = workerError(400, {}, body);
    expect([e.status, e.code, e.grpcCode]).toEqual([400, 'upstream_bad_request', 3]);
    expect(toOpenAIError(e)).toEqual({
      error: { message: 'bad max_tokens', type: 'invalid_request_error', param: null, code: 'upstream_bad_request' },
    });
  });

  it("a worker's 503 with Retry-After keeps both; an empty body gets the catalogue's message", () => {
    const e = workerError(503, { 'retry-after': '7' }, Buffer.alloc(0));
    expect([e.status, e.code, e.retryAfterSeconds, e.message]).toEqual([
      503,
      'upstream_overloaded',
      7,
      'The worker cannot serve the request now; retry later.',
    ]);
  });
});

describe('errorEventMessage: an error event inside a stream, or a chunk', () => {
  it.each([
    [{ object: 'error', message: 'KV cache full', type: 'BadRequestError', code: 400 }, 'KV cache full'],
    [{ error: { message: 'engine died' } }, 'engine died'],
    [{ error: 'generation failed', error_type: 'generation' }, 'generation failed'],
    [{ object: 'chat.completion.chunk', choices: [{ delta: { content: 'hi' } }] }, undefined],
    [{ token: { text: 'x' }, error: null }, undefined], // a TGI token event
  ])('%j → %s', (event, message) => {
    expect(errorEventMessage(event)).toBe(message);
  });
});
