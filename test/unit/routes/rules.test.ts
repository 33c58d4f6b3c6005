import { describe, expect, it } from 'vitest';
import {
  adapterBodyOf,
  adapterChangeOf,
  MAX_ADAPTER_BODY_BYTES,
  bodyTellingToStream,
  mustTellWorkerToStream,
  priorityOf,
  promptTextOf,
  errorShapeOf,
  requestIdOf,
  sessionKeyOf,
  storedResponseOf,
  mayStoreResponse,
  wantsStream,
} from '../../../src/routes/rules.js';
import { apiOfPath, inferenceRoute, INFERENCE_ROUTES } from '../../../src/routes/table.js';

const route = (path: string) => inferenceRoute(path)!;

describe('the stream rule', () => {
  // [path, body stream, `stream` header, streams, the worker must be told in the body]
  const table: [string, unknown, string | undefined, boolean, boolean][] = [
    ['/v1/chat/completions', true, undefined, true, false],
    ['/v1/chat/completions', false, undefined, false, false],
    ['/v1/chat/completions', undefined, '1', true, true],
    ['/v1/chat/completions', false, 'true', true, true],
    ['/v1/chat/completions', undefined, '0', false, false],
    ['/v1/completions', undefined, '1', true, true],
    ['/v1/responses', true, undefined, true, false],
    ['/v1/responses', undefined, '1', true, true],
    ['/v1/embeddings', true, '1', false, false], // embeddings never stream
    ['/generate', true, '1', false, false], // TGI: the path decides
    ['/generate_stream', undefined, undefined, true, false],
  ];

  it.each(table)('%s, body stream %j, header %s → streams %s, tell the worker %s', (path, s, header, streams, tell) => {
    const body = s === undefined ? {} : { stream: s };
    expect(wantsStream(route(path), body, header)).toBe(streams);
    expect(mustTellWorkerToStream(route(path), body, streams)).toBe(tell);
  });
});

describe('the body that tells the worker to stream', () => {
  it.each([
    [
      '{"seed": 18446744073709551615, "t": 1e400, "p": 1.0, "messages": []}',
      '{"stream":true,"seed": 18446744073709551615, "t": 1e400, "p": 1.0, "messages": []}',
    ],
    ['  {"a":1}', '  {"stream":true,"a":1}'],
    ['{}', '{"stream":true}'],
    ['{ }', '{"stream":true }'],
    ['{"stream": false, "a": 1}', '{"stream":true,"a":1}'], // named already: written again
  ])('%s → %s', (sent, told) => {
    const out = bodyTellingToStream(Buffer.from(sent), JSON.parse(sent) as Record<string, unknown>).toString();
    expect(out).toBe(told);
    expect((JSON.parse(out) as { stream: unknown }).stream).toBe(true);
  });
});

describe('the session key', () => {
  it.each([
    [{ user: 'alice' }, 'sess-1', 'alice'],
    [{}, 'sess-1', 'sess-1'],
    [{ user: 42 }, 'sess-1', 'sess-1'], // not a string: not a key
    [{ prompt_cache_key: 'conv-7', user: 'alice' }, 'sess-1', 'conv-7'], // OpenAI's cache key first
    [{ prompt_cache_key: null, user: 'alice' }, undefined, 'alice'],
    [{}, undefined, undefined],
  ])('body %j, x-session-id %s → %s', (body, header, key) => {
    expect(sessionKeyOf(body, header)).toBe(key);
  });
});

describe('the routing text', () => {
  it.each([
    [
      {
        messages: [
          { role: 'system', content: 'S' },
          { role: 'user', content: [{ type: 'text', text: 'U' }] },
        ],
      },
      'S\nU\n',
    ],
    [{ prompt: 'once' }, 'once'],
    [{ prompt: ['a', 'b'] }, 'a\nb'],
    [{ prompt: [1, 2, 3] }, undefined], // token ids have no text
    [{ inputs: 'tgi' }, 'tgi'],
    [{ text: 'sglang', sampling_params: {} }, 'sglang'],
    [{ text: ['s', 'g'] }, 's\ng'],
    [{ input: 'embed me' }, undefined],
  ])('%j → %j', (body, text) => {
    expect(promptTextOf(body)).toBe(text);
  });

  it.each([
    [{ input: 'hello' }, 'hello'],
    [{ instructions: 'Be brief.', input: 'hello' }, 'Be brief.\nhello'],
    [
      {
        instructions: 'I',
        input: [
          { role: 'user', content: 'a' },
          { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'b' }] },
          { type: 'function_call_output', call_id: 'c1', output: '{}' },
        ],
      },
      'I\na\nb\n',
    ],
    [{ previous_response_id: 'resp_1' }, undefined],
  ])('the Responses API: %j → %j', (body, text) => {
    expect(promptTextOf(body, route('/v1/responses'))).toBe(text);
    expect(promptTextOf(body, route('/v1/embeddings'))).toBe(undefined);
  });
});

it.each([
  ['/generate', { inputs: 'x' }, 'tgi'],
  ['/generate', { text: 'x', sampling_params: {} }, 'openai'],
  ['/generate', { input_ids: [1] }, 'openai'],
  ['/generate', { sampling_params: {} }, 'openai'],
  ['/generate', {}, 'tgi'],
  ['/generate', undefined, 'tgi'], // the bytes did not parse
  ['/generate_stream', { text: 'x' }, 'tgi'],
  ['/v1/completions', { inputs: 'x' }, 'openai'],
] as const)("the gateway's errors on %s for %j: %s's shape", (path, body, shape) => {
  expect(errorShapeOf(route(path), body)).toBe(shape);
});

it("embeddings are balanced on load alone: vLLM's chat embeddings' messages are no prompt to route on", () => {
  const body = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
  expect(promptTextOf(body, route('/v1/chat/completions'))).toBe('hi\n');
  expect(promptTextOf(body, route('/v1/embeddings'))).toBe(undefined);
});

describe('the stored answer a request builds on (the Responses API)', () => {
  const body = (o: object) => Buffer.from(JSON.stringify(o));
  it.each([
    ['POST', '/v1/responses', body({ input: 'x', previous_response_id: 'resp_1' }), 'resp_1'],
    ['POST', '/v1/responses?x=1', body({ previous_response_id: 'resp_1' }), 'resp_1'],
    ['POST', '/v1/responses', body({ input: 'x' }), undefined],
    ['POST', '/v1/responses', body({ previous_response_id: null }), undefined],
    ['POST', '/v1/responses', body({ previous_response_id: '' }), undefined],
    ['POST', '/v1/responses', Buffer.from('{"previous_response_id": '), undefined], // the engine says what is wrong
    ['POST', '/v1/responses', undefined, undefined],
    ['GET', '/v1/responses/resp_2', undefined, 'resp_2'],
    ['GET', '/v1/responses/resp_2?stream=true', undefined, 'resp_2'],
    ['POST', '/v1/responses/resp_2/cancel', undefined, 'resp_2'],
    ['GET', '/v1/responses/', undefined, undefined],
    ['GET', '/v1/responsesx/resp_2', undefined, undefined],
    ['POST', '/v1/chat/completions', body({ previous_response_id: 'resp_1' }), undefined],
  ])('%s %s %s → %s', (method, url, b, id) => {
    expect(storedResponseOf(method, url, b)).toBe(id);
  });

  it.each([
    ['POST', '/v1/responses', true],
    ['POST', '/v1/responses?a=b', true],
    ['GET', '/v1/responses', false],
    ['POST', '/v1/responses/resp_1/cancel', false],
    ['POST', '/v1/chat/completions', false],
  ])('%s %s may store its answer: %s', (method, url, stores) => {
    expect(mayStoreResponse(method, url)).toBe(stores);
  });
});

describe('the request id', () => {
  it("is the client's when it sent one, else a new UUID each time", () => {
    expect(requestIdOf('abc-123')).toBe('abc-123');
    const a = requestIdOf(undefined);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(requestIdOf('')).not.toBe(a);
  });
});

describe('the route table', () => {
  it('names each path once', () => {
    const paths = INFERENCE_ROUTES.map((r) => r.path);
    expect(new Set(paths).size).toBe(paths.length);
  });

  it.each([
    ['/v1/chat/completions', 'openai'],
    ['/v1/models', 'openai'], // OpenAI's namespace, forwarded
    ['/generate_stream', 'tgi'],
    ['/tokenize', undefined], // an engine's own path
  ])('%s answers errors as %s', (path, api) => {
    expect(apiOfPath(path)).toBe(api);
  });
});

describe('priorityOf: the x-priority header', () => {
  it.each([
    [undefined, 0],
    ['0', 0],
    ['7', 7],
    [' -3 ', -3],
    ['+2', 2],
  ])('%s reads as %s', (header, n) => {
    expect(priorityOf(header)).toBe(n);
  });

  it.each(['', 'high', '1.5', '1e3', '0x10', '9999999999999999'])('%j is a 400 that names the header', (header) => {
    expect(() => priorityOf(header)).toThrow(
      `The x-priority header must be an integer of at most 15 digits (lower is served first), got ${JSON.stringify(header)}.`,
    );
  });
});

describe('LoRA adapter changes', () => {
  it.each([
    ['POST', '/v1/load_lora_adapter', 'load'],
    ['POST', '/v1/unload_lora_adapter?x=1', 'unload'],
    // The engine's server decodes percent-escapes before it routes: so does the gateway.
    ['POST', '/v1/load%5Flora_adapter', 'load'],
    ['POST', '/v1/%6Coad_lora_adapter', 'load'],
    ['POST', '/v1/load_lora_adapter/', undefined],
    ['POST', '/v1/bad%zz_lora_adapter', undefined],
    ['GET', '/v1/load_lora_adapter', undefined],
    ['POST', '/v1/chat/completions', undefined],
  ])('%s %s is %s', (method, url, kind) => expect(adapterChangeOf(method, url)).toBe(kind));

  it("reads the adapter's name and path, and refuses a body without a name, not JSON, or too large", () => {
    expect(adapterBodyOf(Buffer.from('{"lora_name":"a","lora_path":"/p"}'))).toEqual({ name: 'a', path: '/p' });
    expect(adapterBodyOf(Buffer.from('{"lora_name":"a"}'))).toEqual({ name: 'a', path: undefined });
    expect(() => adapterBodyOf(Buffer.from('{"lora_path":"/p"}'))).toThrow(/lora_name/);
    expect(() => adapterBodyOf(Buffer.from('[1]'))).toThrow(/lora_name/);
    expect(() => adapterBodyOf(Buffer.from('{'))).toThrow(/not valid JSON/);
    const big = Buffer.from(JSON.stringify({ lora_name: 'a', junk: 'x'.repeat(MAX_ADAPTER_BODY_BYTES) }));
    expect(() => adapterBodyOf(big)).toThrow(/at most 16384 bytes/);
  });
});
