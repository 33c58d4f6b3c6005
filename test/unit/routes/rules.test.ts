import { describe, expect, it } from 'vitest';
import {
  mustTellWorkerToStream,
  priorityOf,
  promptTextOf,
  requestIdOf,
  sessionKeyOf,
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

describe('the session key', () => {
  it.each([
    [{ user: 'alice' }, 'sess-1', 'alice'],
    [{}, 'sess-1', 'sess-1'],
    [{ user: 42 }, 'sess-1', 'sess-1'], // not a string: not a key
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
    [{ input: 'embed me' }, undefined],
  ])('%j → %j', (body, text) => {
    expect(promptTextOf(body)).toBe(text);
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
      `The x-priority header must be an integer (lower is served first), got ${JSON.stringify(header)}.`,
    );
  });
});
