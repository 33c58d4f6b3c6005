import { request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { parseSimArgs } from '../../../src/cli/flockserve-sim.js';
import { VirtualClock } from '../../../src/core/clock.js';
import { estimateTokens, generatedText } from '../../../src/sim/fake-text.js';
import { finishStatus, responseObject, responseUsage } from '../../../src/sim/responses-objects.js';
import type { ResponseObject, ResponsesAsk } from '../../../src/sim/responses-objects.js';
import { ResponseStore } from '../../../src/sim/responses-store.js';
import type { SimStats } from '../../../src/sim/server.js';
import { simulatorsClosedAfterEach } from '../../helpers/simulators.js';

const start = simulatorsClosedAfterEach();

async function post(url: string, body: unknown) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function postResponse(url: string, body: Record<string, unknown>): Promise<ResponseObject> {
  const res = await post(`${url}/v1/responses`, body);
  expect(res.status, res.text).toBe(200);
  return JSON.parse(res.text) as ResponseObject;
}

async function get(url: string) {
  const res = await fetch(url);
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

async function simStats(url: string): Promise<SimStats> {
  return (await (await fetch(`${url}/sim/stats`)).json()) as SimStats;
}

interface NamedEvent {
  readonly event: string;
  readonly data: Record<string, unknown> & { type: string; sequence_number: number };
}

/** An SSE body's events, each exactly `event: TYPE` then `data: JSON` (vLLM's two lines). */
function namedEvents(text: string): NamedEvent[] {
  return text
    .split('\n\n')
    .filter((e) => e !== '')
    .map((e) => {
      const lines = e.split('\n');
      expect(lines, e).toHaveLength(2);
      expect(lines[0]).toMatch(/^event: \S+$/);
      expect(lines[1]).toMatch(/^data: \{/);
      return { event: lines[0]!.slice('event: '.length), data: JSON.parse(lines[1]!.slice('data: '.length)) };
    });
}

/** vLLM's error body for an unknown response id. */
function notFound(id: string) {
  return {
    object: 'error',
    message: `Response with id '${id}' not found.`,
    type: 'invalid_request_error',
    param: 'response_id',
    code: 404,
  };
}

const HEX32 = /^[0-9a-f]{32}$/;

describe('engine simulator: Responses API answers', () => {
  it('a whole answer has vLLM’s ResponsesResponse shape, ids and usage', async () => {
    const sim = await start();
    const res = await post(`${sim.url}/v1/responses`, {
      model: 'my-model',
      input: 'Hello there, simulator!', // 23 chars → 6 tokens
      instructions: 'Be brief', // the system message: "Be brief\nHello there, simulator!" is 32 chars → 8 tokens
      max_output_tokens: 5,
      user: 'u1',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const r = JSON.parse(res.text) as ResponseObject;
    expect(r.id.slice(0, 5)).toBe('resp_');
    expect(r.id.slice(5)).toMatch(HEX32);
    expect(r.created_at).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(r.output).toHaveLength(1);
    const message = r.output[0]!;
    expect(message.id.slice(0, 4)).toBe('msg_');
    expect(message.id.slice(4)).toMatch(HEX32);
    expect(message).toMatchObject({ type: 'message', role: 'assistant', status: 'completed' });
    expect(message.content).toHaveLength(1);
    expect(message.content[0]).toMatchObject({ type: 'output_text', annotations: [], logprobs: null });
    expect(message.content[0]!.text.split(' ')).toHaveLength(5);
    expect(r).toEqual({
      id: r.id,
      created_at: r.created_at,
      // The simulator always generates max_output_tokens, so every answer stops at the length limit.
      incomplete_details: { reason: 'max_output_tokens' },
      instructions: 'Be brief',
      metadata: null,
      model: 'my-model',
      object: 'response',
      output: r.output,
      parallel_tool_calls: true,
      temperature: 1,
      tool_choice: 'auto',
      tools: [],
      top_p: 1,
      background: false,
      max_output_tokens: 5,
      max_tool_calls: null,
      previous_response_id: null,
      prompt: null,
      reasoning: null,
      service_tier: 'auto',
      status: 'incomplete',
      text: null,
      top_logprobs: null,
      truncation: 'disabled',
      usage: {
        input_tokens: 8,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: 5,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: 13,
      },
      user: 'u1',
    });
    expect((await simStats(sim.url)).received).toBe(1);
  });

  it('a list input reads messages and joins their text parts; without max_output_tokens 16 tokens come', async () => {
    const sim = await start();
    const r = await postResponse(sim.url, {
      input: [
        {
          type: 'message',
          role: 'user',
          content: [
            { type: 'input_text', text: 'Hello there, ' },
            { type: 'input_text', text: 'simulator!' },
          ],
        },
      ],
    });
    expect(r.usage).toMatchObject({ input_tokens: 6, output_tokens: 16 });
    expect(r.max_output_tokens).toBe(16);
  });

  it.each([
    { status: 'stop', want: 'completed', details: null },
    { status: 'length', want: 'incomplete', details: { reason: 'max_output_tokens' } },
  ] as const)('finish reason $status → status $want', ({ status, want, details }) => {
    const ask: ResponsesAsk = {
      model: 'm',
      instructions: null,
      previousResponseId: null,
      maxOutputTokens: 4,
      temperature: 1,
      topP: 1,
      parallelToolCalls: true,
      metadata: null,
      user: null,
    };
    const r = responseObject(ask, { id: 'resp_x', createdAt: 1 }, finishStatus(status), [], responseUsage(3, 4));
    expect([r.status, r.incomplete_details, r.usage?.total_tokens]).toEqual([want, details, 7]);
  });

  it('the official openai client reads the answer and the stream', async () => {
    const sim = await start({ responsesStore: true });
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'x' });
    const whole = await client.responses.create({ model: 'sim', input: 'Say three words', max_output_tokens: 3 });
    expect(whole.output_text.split(' ')).toHaveLength(3);
    const again = await client.responses.retrieve(whole.id);
    expect(again.output_text).toBe(whole.output_text);

    const stream = await client.responses.create({
      model: 'sim',
      input: 'Say three words',
      max_output_tokens: 3,
      stream: true,
    });
    const types: string[] = [];
    let text = '';
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
    expect(types.at(-1)).toBe('response.completed');
    // The same seed generates the same words, whole or streamed.
    expect(text).toBe(whole.output_text);
  });
});

describe('engine simulator: Responses API streams', () => {
  it('named events in vLLM’s order, numbered from 0, deltas joining to the done text, no [DONE]', async () => {
    const sim = await start();
    const whole = await postResponse(sim.url, { input: 'stream please', max_output_tokens: 4 });
    const res = await post(`${sim.url}/v1/responses`, { input: 'stream please', max_output_tokens: 4, stream: true });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.text).not.toContain('[DONE]');
    const events = namedEvents(res.text);
    expect(events.map((e) => e.event)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events.map((e) => e.data.type)).toEqual(events.map((e) => e.event));
    expect(events.map((e) => e.data.sequence_number)).toEqual(events.map((_, i) => i));

    const [created, inProgress, itemAdded, partAdded] = events.map((e) => e.data);
    const completed = events.at(-1)!.data.response as ResponseObject;
    for (const e of [created, inProgress]) {
      expect(e!.response).toMatchObject({ id: completed.id, status: 'in_progress', output: [], usage: null });
    }
    const itemId = completed.output[0]!.id;
    expect(itemAdded).toMatchObject({
      output_index: 0,
      item: { id: itemId, type: 'message', role: 'assistant', status: 'in_progress', content: [] },
    });
    expect(partAdded).toMatchObject({
      item_id: itemId,
      output_index: 0,
      content_index: 0,
      part: { type: 'output_text', text: '', annotations: [], logprobs: [] },
    });
    const deltas = events.filter((e) => e.event === 'response.output_text.delta').map((e) => e.data);
    for (const d of deltas)
      expect(d).toMatchObject({ item_id: itemId, output_index: 0, content_index: 0, logprobs: [] });
    const text = deltas.map((d) => d.delta).join('');
    expect(text.split(' ')).toHaveLength(4);
    expect(text).toBe(whole.output[0]!.content[0]!.text);
    const done = events.find((e) => e.event === 'response.output_text.done')!.data;
    expect(done).toMatchObject({ item_id: itemId, text });
    expect(events.find((e) => e.event === 'response.content_part.done')!.data).toMatchObject({
      item_id: itemId,
      part: { type: 'output_text', text },
    });
    expect(events.find((e) => e.event === 'response.output_item.done')!.data).toMatchObject({
      item: { id: itemId, status: 'completed', content: [{ type: 'output_text', text }] },
    });
    expect(completed).toMatchObject({
      status: 'incomplete',
      usage: { input_tokens: estimateTokens('stream please'), output_tokens: 4, total_tokens: 8 },
    });
  });

  it('a socket that pushes back: deltas merge while it is blocked, every token arrives once, in order', async () => {
    // On a virtual clock one advance() runs every engine step at once, so 20,000 tokens (~4 MB
    // of events) meet a reader that is not reading: more than the loopback socket buffers hold.
    const TOKENS = 20_000;
    const clock = new VirtualClock(Date.now());
    const sim = await start({ clock, tokenIntervalMs: 1 });
    let res!: IncomingMessage;
    const answered = new Promise<void>((resolve, reject) => {
      const req = httpRequest(
        `${sim.url}/v1/responses`,
        { method: 'POST', headers: { 'content-type': 'application/json' } },
        (r) => {
          res = r;
          r.pause();
          resolve();
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify({ input: 'x', max_output_tokens: TOKENS, stream: true }));
    });
    await answered; // the stream's headers are out, so its sequence runs on the engine
    clock.advance(TOKENS * 10);
    const text = await new Promise<string>((resolve) => {
      let all = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (all += c));
      res.on('end', () => resolve(all));
      res.resume();
    });
    const events = namedEvents(text);
    expect(events.map((e) => e.data.sequence_number)).toEqual(events.map((_, i) => i));
    const deltas = events.filter((e) => e.event === 'response.output_text.delta').map((e) => e.data.delta as string);
    expect(deltas.length).toBeLessThan(TOKENS);
    const joined = deltas.join('');
    expect(joined).toBe(generatedText(TOKENS));
    expect(events.find((e) => e.event === 'response.output_text.done')!.data.text).toBe(joined);
    expect(events.at(-1)!.event).toBe('response.completed');
  });
});

describe('engine simulator: Responses API store', () => {
  it("store off (vLLM's default): nothing is kept, so previous_response_id and GET are 404s", async () => {
    const sim = await start();
    const first = await postResponse(sim.url, { input: 'Hi', store: true });
    const follow = await post(`${sim.url}/v1/responses`, { input: 'And then?', previous_response_id: first.id });
    expect(follow.status).toBe(404);
    expect(JSON.parse(follow.text)).toEqual(notFound(first.id));
    const got = await get(`${sim.url}/v1/responses/${first.id}`);
    expect([got.status, got.body]).toEqual([404, notFound(first.id)]);
  });

  it('store on: a follow-up replays the conversation, hits the prefix cache, and only this replica knows it', async () => {
    const sim = await start({ responsesStore: true });
    const other = await start({ responsesStore: true });
    // 80 characters: one whole 64-character prefix-cache block.
    const story = 'Tell me a long story about a simulator that serves many replicas of one model..';
    const first = await postResponse(sim.url, { instructions: 'Be brief', input: story, max_output_tokens: 5 });
    const hitsBefore = (await simStats(sim.url)).prefixCacheHits;
    const second = await postResponse(sim.url, {
      instructions: 'Be brief',
      input: [{ role: 'user', content: 'Why?' }],
      previous_response_id: first.id,
      max_output_tokens: 5,
    });
    const firstText = first.output[0]!.content[0]!.text;
    // [system Be brief, user story, assistant first answer, user Why?], a message a line.
    expect(second.usage!.input_tokens).toBe(estimateTokens(['Be brief', story, firstText, 'Why?'].join('\n')));
    expect(second.usage!.input_tokens).toBeGreaterThan(first.usage!.input_tokens + first.usage!.output_tokens);
    expect(second.previous_response_id).toBe(first.id);
    expect((await simStats(sim.url)).prefixCacheHits).toBeGreaterThanOrEqual(hitsBefore + 16);

    const elsewhere = await post(`${other.url}/v1/responses`, { input: 'Why?', previous_response_id: first.id });
    expect([elsewhere.status, JSON.parse(elsewhere.text)]).toEqual([404, notFound(first.id)]);
  });

  it('store on: instructions do not carry over to the follow-up', async () => {
    const sim = await start({ responsesStore: true });
    const first = await postResponse(sim.url, {
      instructions: 'Answer in French please',
      input: 'Hi',
      max_output_tokens: 2,
    });
    const second = await postResponse(sim.url, { input: 'Why?', previous_response_id: first.id, max_output_tokens: 2 });
    const firstText = first.output[0]!.content[0]!.text;
    expect(second.usage!.input_tokens).toBe(estimateTokens(['Hi', firstText, 'Why?'].join('\n')));
    expect(second.instructions).toBeNull();
  });

  it('GET /v1/responses/{id}: the stored object (whole or streamed), 404 unknown or not stored, 400 not a resp id', async () => {
    const sim = await start({ responsesStore: true });
    const whole = await postResponse(sim.url, { input: 'keep me', max_output_tokens: 3 });
    const got = await get(`${sim.url}/v1/responses/${whole.id}`);
    expect(got.status).toBe(200);
    expect(got.headers.get('content-type')).toBe('application/json');
    expect(got.body).toEqual(whole);

    const streamed = await post(`${sim.url}/v1/responses`, { input: 'keep me', max_output_tokens: 3, stream: true });
    const completed = namedEvents(streamed.text).at(-1)!.data.response as ResponseObject;
    expect((await get(`${sim.url}/v1/responses/${completed.id}`)).body).toEqual(completed);

    const unstored = await postResponse(sim.url, { input: 'forget me', max_output_tokens: 1, store: false });
    const missing = await get(`${sim.url}/v1/responses/${unstored.id}`);
    expect([missing.status, missing.body]).toEqual([404, notFound(unstored.id)]);

    const bad = await get(`${sim.url}/v1/responses/chatcmpl-123`);
    expect([bad.status, bad.body]).toEqual([
      400,
      {
        object: 'error',
        message: "Invalid 'response_id': 'chatcmpl-123'. Expected an ID that begins with 'resp'.",
        type: 'invalid_request_error',
        param: 'response_id',
        code: 400,
      },
    ]);
    expect((await simStats(sim.url)).lastRequests.at(-1)).toMatchObject({
      method: 'GET',
      path: '/v1/responses/chatcmpl-123',
    });
  });

  it('POST /v1/responses/{id}/cancel: a stored synchronous response → 400, unknown → 404', async () => {
    const sim = await start({ responsesStore: true });
    const r = await postResponse(sim.url, { input: 'done already', max_output_tokens: 1 });
    const cancel = await post(`${sim.url}/v1/responses/${r.id}/cancel`, '');
    expect([cancel.status, JSON.parse(cancel.text)]).toEqual([
      400,
      {
        object: 'error',
        message: 'Cannot cancel a synchronous response.',
        type: 'invalid_request_error',
        param: 'response_id',
        code: 400,
      },
    ]);
    const unknown = await post(`${sim.url}/v1/responses/resp_nope/cancel`, '');
    expect([unknown.status, JSON.parse(unknown.text)]).toEqual([404, notFound('resp_nope')]);
    // The other method on each path is Starlette's 405.
    const wrong = await post(`${sim.url}/v1/responses/${r.id}`, '{}');
    expect([wrong.status, wrong.headers.get('allow')]).toEqual([405, 'GET']);
    expect((await simStats(sim.url)).received).toBe(1);
  });

  it('the store keeps the newest entries up to its bound, dropping the oldest first', () => {
    const store = new ResponseStore(2);
    const entry = { response: {} as ResponseObject, messages: [] };
    store.put('resp_a', entry);
    store.put('resp_b', entry);
    store.put('resp_c', entry);
    expect([store.get('resp_a'), store.get('resp_b'), store.get('resp_c'), store.size]).toEqual([
      undefined,
      entry,
      entry,
      2,
    ]);
  });
});

describe('engine simulator: Responses API errors and faults', () => {
  it.each([
    { body: {}, message: /^input: Field required/ },
    { body: { input: 5 }, message: /^input: Field required/ },
    { body: { input: { role: 'user', content: 'hi' } }, message: /^input: Field required/ },
    { body: { input: ['hi'] }, message: /^input\[0\]: an input item must be an object/ },
    { body: { input: [{ content: 'hi' }] }, message: /^input\[0\]\.role: Field required/ },
    { body: { input: [{ role: 'user', content: 5 }] }, message: /^input\[0\]\.content: Field required/ },
    { body: { input: [{ type: 'function_call_output', output: '1' }] }, message: /message items only/ },
    { body: { input: 'x', max_output_tokens: 0 }, message: /^max_tokens must be at least 1, got 0\.$/ },
    { body: { input: 'x', max_output_tokens: 1.5 }, message: /'loc': \('body', 'max_output_tokens'\)/ },
    { body: { input: 'x', instructions: 3 }, message: /^instructions: Input should be a valid string$/ },
    {
      body: { input: 'x', previous_response_id: 3 },
      message: /^previous_response_id: Input should be a valid string$/,
    },
  ])('$body → 400', async ({ body, message }) => {
    const sim = await start();
    const res = await post(`${sim.url}/v1/responses`, body);
    expect(res.status).toBe(400);
    const err = JSON.parse(res.text) as { object: string; message: string; code: number };
    expect(err).toMatchObject({ object: 'error', code: 400 });
    expect(err.message).toMatch(message);
  });

  it("background mode: vLLM's refusal without the store", async () => {
    const sim = await start();
    const res = await post(`${sim.url}/v1/responses`, { input: 'x', background: true });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toMatchObject({
      type: 'invalid_request_error',
      param: 'background',
      message: expect.stringMatching(/VLLM_ENABLE_RESPONSES_API_STORE=1/),
    });
  });

  it('errorRate 1 answers /v1/responses with the simulated error, and counts it received', async () => {
    const sim = await start({ errorRate: 1, errorStatus: 503 });
    const res = await post(`${sim.url}/v1/responses`, { input: 'x' });
    expect(res.status).toBe(503);
    expect(JSON.parse(res.text)).toMatchObject({ object: 'error', type: 'ServiceUnavailableError', code: 503 });
    expect(await simStats(sim.url)).toMatchObject({ received: 1, errors: 1 });
  });

  it('hang "generation" hangs /v1/responses but not GET /v1/responses/{id}', async () => {
    const sim = await start({ hang: 'generation' });
    const hung = await fetch(`${sim.url}/v1/responses`, {
      method: 'POST',
      body: JSON.stringify({ input: 'x' }),
      signal: AbortSignal.timeout(300),
    }).then(
      () => 'answered',
      (e: Error) => e.name,
    );
    expect(hung).toBe('TimeoutError');
    expect((await get(`${sim.url}/v1/responses/resp_x`)).status).toBe(404);
  });

  it('malformed: a whole answer is cut JSON, a stream ends in a cut event without response.completed', async () => {
    const sim = await start({ malformed: true });
    const whole = await post(`${sim.url}/v1/responses`, { input: 'x', max_output_tokens: 3 });
    expect(whole.status).toBe(200);
    expect(() => JSON.parse(whole.text) as unknown).toThrow();
    const streamed = await post(`${sim.url}/v1/responses`, { input: 'x', max_output_tokens: 3, stream: true });
    expect(streamed.text).toContain('event: response.output_text.delta');
    expect(streamed.text).not.toContain('response.completed');
    const last = streamed.text
      .split('\n\n')
      .filter((e) => e !== '')
      .at(-1)!;
    expect(last.startsWith('data: ')).toBe(true);
    expect(() => JSON.parse(last.slice('data: '.length)) as unknown).toThrow();
  });

  it('hangMidStream: the stream goes silent after the first delta', async () => {
    const sim = await start({ hangMidStream: true });
    const res = await fetch(`${sim.url}/v1/responses`, {
      method: 'POST',
      body: JSON.stringify({ input: 'x', max_output_tokens: 5, stream: true }),
    });
    const reader = res.body!.getReader();
    let text = '';
    const deadline = Date.now() + 300;
    while (Date.now() < deadline) {
      const next = await Promise.race([
        reader.read(),
        new Promise<undefined>((r) => setTimeout(() => r(undefined), deadline - Date.now())),
      ]);
      if (!next || next.done) break;
      text += new TextDecoder().decode(next.value);
    }
    await reader.cancel();
    const events = namedEvents(text).map((e) => e.event);
    expect(events.filter((e) => e === 'response.output_text.delta')).toHaveLength(1);
    expect(events).not.toContain('response.completed');
  });
});

describe('flockserve-sim CLI: the Responses API store', () => {
  it.each([
    { argv: [], env: {}, want: false },
    { argv: ['--responses-store'], env: {}, want: true },
    { argv: [], env: { VLLM_ENABLE_RESPONSES_API_STORE: '1' }, want: true },
    { argv: [], env: { VLLM_ENABLE_RESPONSES_API_STORE: '0' }, want: false },
    { argv: ['--responses-store'], env: { VLLM_ENABLE_RESPONSES_API_STORE: '0' }, want: true },
  ])('$argv with $env → responsesStore $want', ({ argv, env, want }) => {
    expect(parseSimArgs(argv, env)).toMatchObject({ responsesStore: want });
  });

  it('VLLM_ENABLE_RESPONSES_API_STORE that is not an integer is refused, as vLLM fails on it', () => {
    expect(() => parseSimArgs([], { VLLM_ENABLE_RESPONSES_API_STORE: 'yes' })).toThrow(
      /VLLM_ENABLE_RESPONSES_API_STORE expects an integer/,
    );
  });
});
