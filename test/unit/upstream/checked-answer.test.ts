import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../../src/core/errors.js';
import { BodyStream } from '../../../src/upstream/body-stream.js';
import { bodyKind, checkedAnswer, type AnswerCheckOptions } from '../../../src/upstream/checked-answer.js';

const opts = (o: Partial<AnswerCheckOptions> = {}): AnswerCheckOptions => ({
  kind: 'sse',
  worker: 'w-1',
  repetitionLimit: 0,
  openaiStream: true,
  mapError: (err) => new GatewayError('upstream_interrupted', { cause: err }),
  ...o,
});

/**
 * A worker's body as the upstream client makes it: fed one chunk per turn of the event loop
 * (the end or the error last) until it is told to pause or abort.
 */
function workerBody(chunks: (string | Error)[]): { body: BodyStream; aborted: () => boolean } {
  let paused = false;
  let aborted = false;
  let next = 0;
  const step = (): void => {
    if (paused || aborted || next > chunks.length) return;
    const c = chunks[next++];
    if (c === undefined) body.finish();
    else if (c instanceof Error) {
      next = chunks.length + 1;
      body.fail(c);
    } else {
      body.push(Buffer.from(c));
      setImmediate(step);
    }
  };
  const body = new BodyStream({
    pause: () => (paused = true),
    resume: () => {
      paused = false;
      setImmediate(step);
    },
    abort: () => (aborted = true),
  });
  setImmediate(step);
  return { body, aborted: () => aborted };
}

/** Runs the checker over `chunks`; what came out, and the error it ended with. */
async function run(chunks: (string | Error)[], o: Partial<AnswerCheckOptions> = {}) {
  const source = workerBody(chunks);
  const out: string[] = [];
  let error: GatewayError | undefined;
  try {
    for await (const b of checkedAnswer(source.body, opts(o))) out.push(b.toString());
  } catch (e) {
    error = e as GatewayError;
  }
  return { out, error, sourceAborted: source.aborted() };
}

/** Whole events in what came out (pieces may hold several). */
const events = (out: string[]): number =>
  out
    .join('')
    .split(/(?<=\n\n)/)
    .filter((e) => e !== '').length;
const ev = (o: unknown): string => `data: ${JSON.stringify(o)}\n\n`;
const chat = (content: string) => ev({ choices: [{ index: 0, delta: { content } }] });

describe('checkedAnswer: SSE', () => {
  it('passes whole events through byte for byte, however the chunks fall', async () => {
    const text =
      chat('a') + ': keep-alive\n\n' + 'data: {"a":\ndata: 1}\n\n' + 'data:{"x":1}\r\n\r\n' + 'data: [DONE]\n\n';
    const cuts = [1, 7, 20, 33, 50, text.length - 3];
    const chunks = cuts.map((c, i) => text.slice(i === 0 ? 0 : cuts[i - 1], c)).concat(text.slice(cuts.at(-1)));
    const { out, error } = await run(chunks);
    expect(error).toBeUndefined();
    expect(out.join('')).toBe(text);
    // A piece holds whole events (all those one read completed), never part of one.
    for (const piece of out) expect(piece).toMatch(/(\n\n|\r\n\r\n)$/);
  });

  // [label, chunks, error code, events passed before it]
  const bad: [string, (string | Error)[], string, number][] = [
    ['data that is not JSON', [chat('a'), 'data: {"cut\n\n'], 'upstream_malformed', 1],
    ['a line that is no SSE field', [chat('a'), 'garbage here\n\n'], 'upstream_malformed', 1],
    ['JSON broken over two lines', [chat('a') + chat('b') + 'data: {"a":\n1}\n\n' + chat('c')], 'upstream_malformed', 2],
    ['ends in the middle of an event', [chat('a'), 'data: {"choices": ['], 'upstream_malformed', 1],
    ['an event that never ends', [chat('a'), 'data: ' + 'x'.repeat(2000)], 'upstream_malformed', 1],
    ['the source fails', [chat('a'), Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' })], 'upstream_interrupted', 1],
  ]; // prettier-ignore

  it.each(bad)('%s → %s after the whole events before it', async (_label, chunks, code, passed) => {
    const { out, error } = await run(chunks, { maxEventBytes: 1024 });
    expect(error?.code).toBe(code);
    expect(events(out)).toBe(passed);
  });

  it('onEvents hands on the JSON of exactly the events that passed, in order', async () => {
    const objs: unknown[] = [];
    const onEvents = (e: unknown[]): number => objs.push(...e);
    const text = chat('a') + ': keep-alive\n\n' + 'data:{"x":1}\r\n\r\n' + 'data: [DONE]\n\n';
    await run([text.slice(0, 9), text.slice(9)], { onEvents });
    expect(objs).toEqual([{ choices: [{ index: 0, delta: { content: 'a' } }] }, { x: 1 }]);
    // Nothing past a malformed event, nor the event the repetition guard stopped at.
    objs.length = 0;
    const { out } = await run([chat('a') + chat('b') + 'data: {"cut\n\n' + chat('c')], { onEvents });
    expect(objs).toHaveLength(events(out));
    objs.length = 0;
    const line = 'All work and no play makes Jack a dull boy.\n';
    await run(
      Array.from({ length: 5 }, () => chat(line)),
      { onEvents, repetitionLimit: 2 },
    );
    expect(objs).toHaveLength(2);
  });

  const errorEvents: [string, string][] = [
    // Some vLLM versions: the error object alone, which OpenAI's clients read as one more chunk.
    [
      'flat, as json.dumps writes it',
      'data: {"object": "error", "message": "CUDA out of memory", "type": "InternalServerError", "param": null, "code": 500}\n\n',
    ],
    [
      'nested, as newer vLLM and OpenAI send it',
      'data: {"error": {"message": "CUDA out of memory", "type": "InternalServerError", "param": null, "code": 500}}\n\n',
    ],
    ['with a space after the brace', 'data: { "error": {"message": "CUDA out of memory"}}\n\n'],
  ];
  // Both paths: in place (nothing needs the events' objects: HTTP) and parsed (onEvents: gRPC).
  it.each(errorEvents.flatMap(([label, event]) => [true, false].map((parsed) => [label, event, parsed] as const)))(
    "an engine's error event in an OpenAI stream (%s; parsed: %s) ends it: the events before it, then upstream_interrupted",
    async (_, errorEvent, parsed) => {
      const objs: unknown[] = [];
      const onEvents = parsed ? (e: unknown[]) => objs.push(...e) : undefined;
      for (const chunks of [
        [chat('Hello'), errorEvent, 'data: [DONE]\n\n'],
        [chat('Hello') + errorEvent + 'data: [DONE]\n\n'], // one read
      ]) {
        objs.length = 0;
        const { out, error, sourceAborted } = await run(chunks, { onEvents });
        expect(out.join('')).toBe(chat('Hello'));
        expect(error).toMatchObject({
          code: 'upstream_interrupted',
          message: 'worker stream error: CUDA out of memory',
        });
        expect(objs).toHaveLength(parsed ? 1 : 0);
        expect(sourceAborted).toBe(true);
      }
    },
  );

  it.each([true, false])(
    'passed as chunks on both paths (parsed: %s): `"error": null`, and an error object that does not open with its error or object key (no engine writes one so)',
    async (parsed) => {
      for (const chunk of [
        ev({ object: 'response.keepalive', error: null }),
        'data: {"message": "CUDA out of memory", "object": "error"}\n\n',
      ]) {
        const r = await run([chunk, 'data: [DONE]\n\n'], parsed ? { onEvents: () => {} } : {});
        expect(r.error).toBeUndefined();
        expect(r.out.join('')).toBe(chunk + 'data: [DONE]\n\n');
      }
    },
  );

  it("a TGI stream's error event passes as it came (its clients read it); a chunk whose first key is object passes too", async () => {
    const tgiError = 'data:{"error":"Request failed during generation","error_type":"generation"}\n\n';
    const tgi = await run([tgiError], { openaiStream: false });
    expect(tgi).toMatchObject({ out: [tgiError], error: undefined });
    const chunk = ev({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: 'a' } }] });
    const openai = await run([chunk, 'data: [DONE]\n\n']);
    expect(openai.error).toBeUndefined();
    expect(openai.out.join('')).toBe(chunk + 'data: [DONE]\n\n');
  });

  it('repetition guard: ends an OpenAI stream with [DONE] and stops reading the worker', async () => {
    const line = 'All work and no play makes Jack a dull boy.\n';
    let trips = 0;
    const chunks = Array.from({ length: 10 }, () => chat(line));
    const { out, error, sourceAborted } = await run(chunks, { repetitionLimit: 2, onRepetition: () => trips++ });
    expect(error).toBeUndefined();
    expect(out.join('')).toBe(chat(line) + chat(line) + 'data: [DONE]\n\n');
    expect(trips).toBe(1);
    expect(sourceAborted).toBe(true);
  });

  it('repetition guard on TGI tokens: the stream just ends', async () => {
    const tok = (text: string) => `data:${JSON.stringify({ token: { id: 1, text, special: false } })}\n\n`;
    const words = 'Again and again and again.\n'.split(/(?<= )/);
    const chunks = Array.from({ length: 4 }, () => words.map(tok)).flat();
    const { out } = await run(chunks, { repetitionLimit: 1, openaiStream: false });
    expect(out.join('')).not.toContain('[DONE]');
    expect(events(out)).toBe(words.length * 2 - 1);
  });

  it('repetition guard on Responses API text deltas (named events)', async () => {
    const line = 'All work and no play makes Jack a dull boy.\n';
    const delta = (text: string) =>
      `event: response.output_text.delta\ndata: ${JSON.stringify({ type: 'response.output_text.delta', output_index: 0, delta: text })}\n\n`;
    const { out, sourceAborted } = await run(
      Array.from({ length: 6 }, () => delta(line)),
      { repetitionLimit: 2 },
    );
    expect(out.join('')).toBe(delta(line) + delta(line) + 'data: [DONE]\n\n');
    expect(sourceAborted).toBe(true);
  });

  it('choices are guarded apart (n > 1 interleaves them)', async () => {
    const line = 'A line long enough to count.\n';
    const two = (i: number) => ev({ choices: [{ index: i, text: line }] });
    const { out } = await run([two(0), two(1), two(0), two(1)], { repetitionLimit: 2 });
    expect(events(out)).toBe(4);
  });
});

describe('checkedAnswer: JSON and raw', () => {
  it('a JSON answer that parses passes; one cut short → upstream_malformed', async () => {
    const whole = await run(['{"a":', '1}'], { kind: 'json' });
    expect(whole.error).toBeUndefined();
    expect(whole.out).toEqual(['{"a":1}']); // held until it parses, then passed on as one chunk
    expect(whole.sourceAborted).toBe(false); // read to its end: the worker's connection is kept
    const cut = await run(['{"a":', '1'], { kind: 'json' });
    expect(cut.error?.code).toBe('upstream_malformed');
  });

  it('raw answers are not looked at', async () => {
    expect((await run(['not json'], { kind: 'raw' })).out).toEqual(['not json']);
  });

  // [method, status, content-type, kind]
  const kinds: [string, number, string, string][] = [
    ['POST', 200, 'text/event-stream; charset=utf-8', 'sse'],
    ['POST', 200, 'application/json', 'json'],
    ['GET', 200, 'application/problem+json', 'json'],
    ['POST', 400, 'application/json', 'raw'],
    ['HEAD', 200, 'application/json', 'raw'],
    ['GET', 200, 'text/plain', 'raw'],
  ];
  it.each(kinds)('%s %i %s → %s', (method, status, type, kind) => {
    expect(bodyKind(method, status, { 'content-type': type })).toBe(kind);
  });
});

describe('checkedAnswer: onFirstChunk (the worker has prefilled the prompt)', () => {
  // [label, kind, the worker's chunks, calls]
  const table: [string, AnswerCheckOptions['kind'], (string | Error)[], number][] = [
    ['an SSE stream of three chunks: once, at the first', 'sse', [chat('a'), chat('b'), 'data: [DONE]\n\n'], 1],
    ['half an event first: once (bytes came back, whole events or not)', 'sse', ['data: {"a"', ':1}\n\n'], 1],
    ['a JSON answer in two chunks: once', 'json', ['{"a":', '1}'], 1],
    ['a body that fails before any byte: never (release clears the lease)', 'sse', [new Error('reset')], 0],
    ['an empty body: never', 'raw', [], 0],
  ];
  it.each(table)('%s', async (_label, kind, chunks, want) => {
    let calls = 0;
    await run(chunks, { kind, onFirstChunk: () => calls++ });
    expect(calls).toBe(want);
  });
});

describe('checkedAnswer: onResponseId (the Responses API answer an engine may store)', () => {
  const named = (type: string, o: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...o })}\n\n`;

  it("a stream hands on its first event's response id once, and passes every event as it came", async () => {
    const ids: string[] = [];
    const text =
      named('response.created', { response: { id: 'resp_1', status: 'in_progress' } }) +
      named('response.in_progress', { response: { id: 'resp_1' } }) +
      named('response.output_text.delta', { delta: 'a' }) +
      named('response.completed', { response: { id: 'resp_1', status: 'completed' } });
    // Cut inside the first event: the id is read once the event is whole.
    const { out, error } = await run([text.slice(0, 30), text.slice(30)], { onResponseId: (id) => ids.push(id) });
    expect(error).toBeUndefined();
    expect(out.join('')).toBe(text);
    expect(ids).toEqual(['resp_1']);
  });

  it('a data-only stream is read for the id too', async () => {
    const ids: string[] = [];
    await run([ev({ type: 'x' }) + ev({ response: { id: 'resp_2' } })], { onResponseId: (id) => ids.push(id) });
    expect(ids).toEqual(['resp_2']);
  });

  it('a JSON answer hands on its id; one that does not parse is malformed, and names none', async () => {
    const ids: string[] = [];
    const whole = await run(['{"id":"resp_3","object":', '"response"}'], {
      kind: 'json',
      onResponseId: (id) => ids.push(id),
    });
    expect([whole.error, whole.out, ids]).toEqual([undefined, ['{"id":"resp_3","object":"response"}'], ['resp_3']]);
    const cut = await run(['{"id":"resp_4"'], { kind: 'json', onResponseId: (id) => ids.push(id) });
    expect([cut.error?.code, ids]).toEqual(['upstream_malformed', ['resp_3']]);
  });
});
