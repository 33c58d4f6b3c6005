import { describe, expect, it } from 'vitest';
import type { GatewayError } from '../../../src/core/errors.js';
import {
  parseRequestBody,
  checkedJson,
  checkedRoutes,
  exceedsDepth,
  valueExceedsDepth,
  withoutByteOrderMark,
} from '../../../src/routes/validation.js';

const check = (path: string) => checkedRoutes().get(path)!;

function failure(fn: () => unknown): { code: string; message: string; param: string | undefined } {
  try {
    fn();
  } catch (e) {
    const g = e as GatewayError;
    return { code: g.code, message: g.message, param: g.param };
  }
  throw new Error('expected a failure');
}

describe('one set of messages for a body, whether it came as bytes (HTTP) or was built from a message (gRPC)', () => {
  // [path, body, message, param]
  const table: [string, unknown, string, string | undefined][] = [
    ['/v1/chat/completions', {}, "Invalid request: body must have required property 'messages'", 'messages'],
    [
      '/v1/chat/completions',
      { messages: [] },
      'Invalid request: body/messages must NOT have fewer than 1 items',
      'messages',
    ],
    [
      '/v1/chat/completions',
      { messages: [{ content: 'x' }] },
      "Invalid request: body/messages/0 must have required property 'role'",
      'role',
    ],
    [
      '/v1/chat/completions',
      { messages: [{ role: 'user' }], stream: 'yes' },
      'Invalid request: body/stream must be boolean, body/stream must be null, body/stream must match a schema in anyOf',
      'stream',
    ],
    [
      '/v1/completions',
      { prompt: 7 },
      'Invalid request: body/prompt must be string, body/prompt must be array, body/prompt must be null, body/prompt must match a schema in anyOf',
      'prompt',
    ],
    [
      '/v1/completions',
      { model: 'm' },
      "Invalid request: body must have required property 'prompt', body must have required property 'prompt_embeds', body must match a schema in anyOf",
      'prompt',
    ],
    [
      '/v1/completions',
      { model: 'm', prompt: null },
      "Invalid request: body/prompt must NOT be valid, body must have required property 'prompt_embeds', body must match a schema in anyOf",
      'prompt',
    ],
    [
      '/v1/embeddings',
      {},
      "Invalid request: body must have required property 'input', body must have required property 'messages', body must match a schema in anyOf",
      'input',
    ],
    ['/generate', { inputs: 1 }, 'Invalid request: body/inputs must be string', 'inputs'],
    [
      '/generate',
      { parameters: {} },
      "Invalid request: body must have required property 'inputs', body must have required property 'text', body must have required property 'input_ids', body must match a schema in anyOf",
      'inputs',
    ],
    [
      '/generate',
      { text: 'hi', sampling_params: 'hot' },
      'Invalid request: body/sampling_params must be object, body/sampling_params must be array, body/sampling_params must match a schema in anyOf',
      'sampling_params',
    ],
    ['/generate_stream', [], 'Invalid request: body must be object', undefined],
  ];

  it.each(table)('%s %j → %s', (path, body, message, param) => {
    const fromJson = failure(() => checkedJson(body, check(path)));
    const fromBytes = failure(() => parseRequestBody(Buffer.from(JSON.stringify(body)), 64, check(path)));
    expect(fromJson).toEqual({ code: 'bad_request', message, param });
    expect(fromBytes).toEqual(fromJson);
  });

  it.each([
    { inputs: 'TGI', parameters: { max_new_tokens: 4 } },
    { text: 'SGLang', sampling_params: { max_new_tokens: 4 }, stream: true },
    { text: ['a', 'batch'] },
    { input_ids: [1, 2, 3], sampling_params: [{}, {}] },
  ])("/generate takes TGI's body and SGLang's native one: %j", (body) => {
    expect(checkedJson(body, check('/generate'))).toBe(body);
  });

  it.each<[string, object]>([
    // The openai SDKs type these `T | null`, and vLLM reads null as unset.
    ['/v1/chat/completions', { model: null, messages: [{ role: 'user' }], stream: null, user: null }],
    ['/v1/completions', { model: 'm', prompt: 'hi', stream: null }],
    ['/v1/responses', { model: 'm', input: 'hi', stream: null }],
    // vLLM's prompt embeddings in place of a prompt, and its chat embeddings.
    ['/v1/completions', { model: 'm', prompt_embeds: 'AAAA' }],
    ['/v1/completions', { model: 'm', prompt: null, prompt_embeds: ['AAAA', 'BBBB'] }],
    ['/v1/embeddings', { model: 'm', messages: [{ role: 'user', content: 'hi' }] }],
  ])('%s takes what OpenAI and vLLM take: %j', (path, body) => {
    expect(checkedJson(body, check(path))).toBe(body);
  });

  it('a valid body passes as the same object', () => {
    const body = { messages: [{ role: 'user', content: 'hi' }], top_k: 3 };
    expect(checkedJson(body, check('/v1/chat/completions'))).toBe(body);
  });
});

describe('nesting depth: bytes and values agree', () => {
  const nest = (d: number): unknown => (d === 0 ? 1 : [nest(d - 1)]);
  it.each([
    [1, 1, false],
    [2, 1, true],
    [64, 64, false],
    [65, 64, true],
  ])('depth %i against limit %i → exceeds %s', (depth, limit, exceeds) => {
    const value = { a: nest(depth - 1) };
    expect(valueExceedsDepth(value, limit)).toBe(exceeds);
    expect(exceedsDepth(Buffer.from(JSON.stringify(value)), limit)).toBe(exceeds);
  });

  it('a value nested 100,000 deep is judged without deep recursion', () => {
    let v: unknown = 1;
    for (let i = 0; i < 100_000; i++) v = { a: v };
    expect(valueExceedsDepth(v, 64)).toBe(true);
  });
});

describe('withoutByteOrderMark', () => {
  it('drops a leading UTF-8 byte order mark, and only that', () => {
    const json = Buffer.from('{"a":1}');
    expect(withoutByteOrderMark(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), json]))).toEqual(json);
    expect(withoutByteOrderMark(json)).toBe(json);
    expect(withoutByteOrderMark(Buffer.from([0xef, 0xbb]))).toEqual(Buffer.from([0xef, 0xbb]));
    const inside = Buffer.from('{"a":"\ufeff"}');
    expect(withoutByteOrderMark(inside)).toBe(inside);
  });
});
