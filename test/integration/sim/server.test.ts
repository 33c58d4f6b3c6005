import { request as httpRequest } from 'node:http';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import type { SimStats } from '../../../src/sim/server.js';
import { waitForValue } from '../../helpers/wait.js';
import { simulatorsClosedAfterEach } from '../../helpers/simulators.js';

const start = simulatorsClosedAfterEach();

async function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** The `data:` payloads of an SSE body. */
function sseData(text: string, prefix = 'data: '): string[] {
  return text
    .split('\n\n')
    .filter((e) => e.startsWith(prefix))
    .map((e) => e.slice(prefix.length));
}

async function simStats(url: string): Promise<SimStats> {
  return (await (await fetch(`${url}/sim/stats`)).json()) as SimStats;
}

describe('engine simulator: OpenAI routes through the official openai client', () => {
  it('chat completion (JSON) has vLLM’s shape and usage', async () => {
    const sim = await start();
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'x' });
    const res = await client.chat.completions.create({
      model: 'sim',
      messages: [{ role: 'user', content: 'Hello there, simulator!' }], // 23 chars → 6 tokens
      max_tokens: 5,
    });
    expect(res.object).toBe('chat.completion');
    expect(res.choices[0]?.message.role).toBe('assistant');
    expect(res.choices[0]?.message.content?.split(' ')).toHaveLength(5);
    expect(res.choices[0]?.finish_reason).toBe('length');
    expect(res.usage).toMatchObject({ prompt_tokens: 6, completion_tokens: 5, total_tokens: 11 });
    const raw = res as unknown as Record<string, unknown>;
    expect(raw).toHaveProperty('prompt_logprobs', null);
    expect(raw).toHaveProperty('kv_transfer_params', null);
    expect(res.choices[0]).toHaveProperty('stop_reason', null);
  });

  it('chat completion stream: role delta first, one delta per token, finish chunk, usage chunk', async () => {
    const sim = await start();
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'x' });
    const stream = await client.chat.completions.create({
      model: 'sim',
      messages: [{ role: 'user', content: 'stream please' }],
      max_tokens: 4,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks[0]?.choices[0]?.delta).toEqual({ role: 'assistant', content: '' });
    const contents = chunks.slice(1, 5).map((c) => c.choices[0]?.delta.content);
    expect(contents).toHaveLength(4);
    expect(contents.every((t) => typeof t === 'string' && t.length > 0)).toBe(true);
    expect(chunks[4]?.choices[0]?.finish_reason).toBe('length');
    expect(chunks[5]?.choices).toEqual([]);
    expect(chunks[5]?.usage).toMatchObject({ completion_tokens: 4 });
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
  });

  it('completions (JSON and stream) and the [DONE] terminator', async () => {
    const sim = await start();
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'x' });
    const res = await client.completions.create({ model: 'sim', prompt: 'Once upon a time', max_tokens: 3 });
    expect(res.object).toBe('text_completion');
    expect(res.choices[0]?.text.split(' ')).toHaveLength(3);
    expect(res.usage?.completion_tokens).toBe(3);

    const raw = await postJson(`${sim.url}/v1/completions`, { prompt: 'x', max_tokens: 3, stream: true });
    expect(raw.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = sseData(raw.text);
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events
      .slice(0, -1)
      .map((e) => JSON.parse(e) as { choices: { text: string; finish_reason: string | null }[] });
    expect(chunks.map((c) => c.choices[0]?.text).join('')).toBe(res.choices[0]?.text);
    expect(chunks.map((c) => c.choices[0]?.finish_reason)).toEqual([null, null, 'length']);
  });

  it('n choices (chat, JSON and stream): one sequence each, numbered 0..n-1, usage summed', async () => {
    const sim = await start();
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'x' });
    const messages = [{ role: 'user' as const, content: 'three ways' }];
    const res = await client.chat.completions.create({ model: 'sim', messages, max_tokens: 4, n: 3 });
    expect(res.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(res.choices.every((c) => c.message.content?.split(' ').length === 4 && c.finish_reason === 'length')).toBe(
      true,
    );
    expect(res.usage).toMatchObject({ completion_tokens: 12, prompt_tokens: res.usage!.prompt_tokens });
    expect((await simStats(sim.url)).completed).toBe(3);

    const stream = await client.chat.completions.create({
      model: 'sim',
      messages,
      max_tokens: 3,
      n: 2,
      stream: true,
      stream_options: { include_usage: true },
    });
    const byChoice: { role?: string; content: string; finish?: string | null }[] = [{ content: '' }, { content: '' }];
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const c of stream) {
      if (c.usage) usage = c.usage;
      for (const ch of c.choices) {
        const seen = byChoice[ch.index]!;
        // The role delta comes first, before any of the choice's text.
        if (ch.delta.role) expect(seen).toEqual({ content: '' });
        seen.role ??= ch.delta.role;
        seen.content += ch.delta.content ?? '';
        if (ch.finish_reason) seen.finish = ch.finish_reason;
      }
    }
    for (const seen of byChoice) {
      expect(seen.role).toBe('assistant');
      expect(seen.content.split(' ')).toHaveLength(3);
      expect(seen.finish).toBe('length');
    }
    expect(usage).toMatchObject({ completion_tokens: 6 });
  });

  it('n = 20: one close listener per answer, not one per sequence (no listener-leak warning)', async () => {
    const sim = await start();
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const res = await postJson(`${sim.url}/v1/chat/completions`, {
        messages: [{ role: 'user', content: 'x' }],
        max_tokens: 2,
        n: 20,
      });
      expect((JSON.parse(res.text) as { choices: unknown[] }).choices).toHaveLength(20);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('a list of prompts with n: a choice per prompt and sample, numbered prompt·n + sample (JSON and stream)', async () => {
    const sim = await start();
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'x' });
    const res = await client.completions.create({ model: 'sim', prompt: ['one', 'two two'], max_tokens: 2, n: 2 });
    expect(res.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    const single = await client.completions.create({ model: 'sim', prompt: 'one', max_tokens: 2 });
    const other = await client.completions.create({ model: 'sim', prompt: 'two two', max_tokens: 2 });
    expect(res.usage).toMatchObject({
      prompt_tokens: single.usage!.prompt_tokens + other.usage!.prompt_tokens,
      completion_tokens: 8,
    });
    // Lists of token ids are prompts too.
    const ids = await client.completions.create({ model: 'sim', prompt: [[1, 2, 3], [4]], max_tokens: 2 });
    expect(ids.usage).toMatchObject({ prompt_tokens: 4, completion_tokens: 4 });

    const raw = await postJson(`${sim.url}/v1/completions`, { prompt: ['a', 'b'], max_tokens: 2, stream: true });
    const chunks = sseData(raw.text)
      .slice(0, -1)
      .map((e) => JSON.parse(e) as { choices: { index: number; text: string; finish_reason: string | null }[] });
    for (const index of [0, 1]) {
      const mine = chunks.flatMap((c) => c.choices).filter((c) => c.index === index);
      expect(
        mine
          .map((c) => c.text)
          .join('')
          .split(' '),
      ).toHaveLength(2);
      expect(mine.at(-1)?.finish_reason).toBe('length');
    }
  });

  it('logprobs (chat): each token’s, with top_logprobs alternatives, the sampled one first; the same tokens streamed', async () => {
    const sim = await start();
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'x' });
    const messages = [{ role: 'user' as const, content: 'how sure' }];
    const res = await client.chat.completions.create({
      model: 'sim',
      messages,
      max_tokens: 3,
      logprobs: true,
      top_logprobs: 2,
    });
    const content = res.choices[0]!.logprobs!.content!;
    expect(content.map((c) => c.token).join('')).toBe(res.choices[0]!.message.content);
    for (const c of content) {
      expect(c.logprob).toBeLessThanOrEqual(0);
      expect(c.bytes).toEqual([...Buffer.from(c.token)]);
      expect(c.top_logprobs).toHaveLength(2);
      expect(c.top_logprobs[0]).toMatchObject({ token: c.token, logprob: c.logprob });
      expect(c.top_logprobs[1]!.logprob).toBeLessThan(c.logprob);
    }
    // Without logprobs: null, as vLLM sends it.
    const plain = await client.chat.completions.create({ model: 'sim', messages, max_tokens: 2 });
    expect(plain.choices[0]!.logprobs).toBeNull();

    const stream = await client.chat.completions.create({
      model: 'sim',
      messages,
      max_tokens: 3,
      logprobs: true,
      stream: true,
    });
    const streamed: string[] = [];
    for await (const c of stream) for (const t of c.choices[0]?.logprobs?.content ?? []) streamed.push(t.token);
    expect(streamed).toEqual(content.map((c) => c.token));
  });

  it('logprobs (completions): tokens, their logprobs, text offsets and top lists, whole and streamed', async () => {
    const sim = await start();
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'x' });
    const res = await client.completions.create({ model: 'sim', prompt: 'x', max_tokens: 3, logprobs: 2 });
    const lp = res.choices[0]!.logprobs!;
    expect(lp.tokens!.join('')).toBe(res.choices[0]!.text);
    expect(lp.text_offset).toEqual([0, lp.tokens![0]!.length, lp.tokens![0]!.length + lp.tokens![1]!.length]);
    expect(lp.top_logprobs!.map((t) => Object.keys(t).length)).toEqual([2, 2, 2]);
    expect(lp.top_logprobs![0]![lp.tokens![0]!]).toBe(lp.token_logprobs![0]);

    const raw = await postJson(`${sim.url}/v1/completions`, { prompt: 'x', max_tokens: 3, logprobs: 1, stream: true });
    const chunks = sseData(raw.text)
      .slice(0, -1)
      .map((e) => JSON.parse(e) as { choices: { logprobs: { tokens: string[]; text_offset: number[] } }[] });
    expect(chunks.flatMap((c) => c.choices[0]!.logprobs.tokens)).toEqual(lp.tokens);
    expect(chunks.flatMap((c) => c.choices[0]!.logprobs.text_offset)).toEqual(lp.text_offset);
  });

  it('embeddings: deterministic vectors, float and base64 (the client’s default)', async () => {
    const sim = await start();
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'x' });
    const a = await client.embeddings.create({ model: 'sim', input: ['alpha', 'beta'] });
    const b = await client.embeddings.create({ model: 'sim', input: 'alpha', encoding_format: 'float' });
    expect(a.data).toHaveLength(2);
    expect(a.data[0]?.embedding).toHaveLength(8);
    expect(a.data[0]?.embedding).toEqual(b.data[0]?.embedding);
    expect(a.data[0]?.embedding).not.toEqual(a.data[1]?.embedding);
  });

  it('GET /v1/models lists the served name', async () => {
    const sim = await start({ modelName: 'llama-sim' });
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'x' });
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['llama-sim']);
  });
});

describe('engine simulator: errors', () => {
  it.each([
    { name: 'invalid JSON', path: '/v1/chat/completions', body: '{nope', status: 400 },
    { name: 'missing messages', path: '/v1/chat/completions', body: { model: 'sim' }, status: 400 },
    {
      name: 'bad max_tokens',
      path: '/v1/chat/completions',
      body: { messages: [{ role: 'user', content: 'x' }], max_tokens: 0 },
      status: 400,
    },
    { name: 'missing prompt', path: '/v1/completions', body: { max_tokens: 2 }, status: 400 },
  ])('$name → $status with vLLM’s error JSON', async ({ path, body, status }) => {
    const sim = await start();
    const res = await postJson(sim.url + path, body);
    expect(res.status).toBe(status);
    expect(JSON.parse(res.text)).toMatchObject({ object: 'error', type: 'BadRequestError', param: null, code: status });
  });

  it.each([
    [
      '"x"',
      'x',
      "'type': 'int_parsing', 'loc': ('body', 'max_tokens'), 'msg': 'Input should be a valid integer, unable to parse string as an integer', 'input': 'x'",
    ],
    ['1.5', 1.5, "'type': 'int_from_float'"],
    ['true', true, "'type': 'int_type'"],
    ['0', 0, 'max_tokens must be at least 1, got 0.'],
  ])('max_tokens %s → 400 worded as vLLM words it', async (_label, maxTokens, words) => {
    const sim = await start();
    const res = await postJson(sim.url + '/v1/chat/completions', {
      messages: [{ role: 'user', content: 'x' }],
      max_tokens: maxTokens,
    });
    expect(res.status).toBe(400);
    expect((JSON.parse(res.text) as { message: string }).message).toContain(words);
  });

  it.each([
    ['0', 0, 'n must be at least 1, got 0.'],
    ['1.5', 1.5, "'type': 'int_from_float', 'loc': ('body', 'n')"],
    ['200 (over the simulator’s sequences per request)', 200, 'at most 128 sequences per request'],
  ])('n %s → 400', async (_label, n, words) => {
    const sim = await start();
    const res = await postJson(sim.url + '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], n });
    expect(res.status).toBe(400);
    expect((JSON.parse(res.text) as { message: string }).message).toContain(words);
    expect((await simStats(sim.url)).completed).toBe(0);
  });

  it.each([
    ['/v1/chat/completions', { top_logprobs: 2 }, 'when using `top_logprobs`, `logprobs` must be set to true.'],
    ['/v1/chat/completions', { logprobs: true, top_logprobs: 21 }, 'greater than max allowed: 20'],
    ['/v1/completions', { logprobs: -1 }, '`logprobs` must be a positive value.'],
  ])('%s with %j → 400', async (path, extra, words) => {
    const sim = await start();
    const body = path === '/v1/completions' ? { prompt: 'x' } : { messages: [{ role: 'user', content: 'x' }] };
    const res = await postJson(sim.url + path, { ...body, ...extra });
    expect(res.status).toBe(400);
    expect((JSON.parse(res.text) as { message: string }).message).toContain(words);
  });

  it('max_tokens "3" is taken as 3, as pydantic takes it', async () => {
    const sim = await start();
    const res = await postJson(sim.url + '/v1/completions', { prompt: 'x', max_tokens: '3' });
    expect(res.status).toBe(200);
    expect((JSON.parse(res.text) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(3);
  });

  it("a route asked with another method → 405 with Allow: POST (Starlette's body; axum's none for TGI)", async () => {
    const sim = await start();
    const chat = await fetch(`${sim.url}/v1/chat/completions`);
    expect(chat.status).toBe(405);
    expect(chat.headers.get('allow')).toBe('POST');
    expect(await chat.json()).toEqual({ detail: 'Method Not Allowed' });
    const tgi = await fetch(`${sim.url}/generate`, { method: 'PUT', body: '{}' });
    expect(tgi.status).toBe(405);
    expect(tgi.headers.get('allow')).toBe('POST');
    expect(await tgi.text()).toBe('');
  });

  it('unknown route → 404 JSON', async () => {
    const sim = await start();
    const res = await fetch(`${sim.url}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ detail: 'Not Found' });
  });

  it('errorRate 1 answers every generation request 500 (and the openai client sees an APIError)', async () => {
    const sim = await start({ errorRate: 1 });
    const res = await postJson(`${sim.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'x' }] });
    expect(res.status).toBe(500);
    expect(JSON.parse(res.text)).toMatchObject({ object: 'error', type: 'InternalServerError', code: 500 });
    const tgi = await postJson(`${sim.url}/generate`, { inputs: 'x' });
    expect(tgi.status).toBe(500);
    expect(JSON.parse(tgi.text)).toMatchObject({ error_type: 'generation' });
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'x', maxRetries: 0 });
    await expect(client.completions.create({ model: 'sim', prompt: 'x' })).rejects.toMatchObject({ status: 500 });
    expect((await simStats(sim.url)).errors).toBe(3);
  });

  it('errorRate 0.5 with a seed fails some requests and serves the others', async () => {
    const sim = await start({ errorRate: 0.5, seed: 7 });
    const statuses = [];
    for (let i = 0; i < 20; i++) {
      statuses.push((await postJson(`${sim.url}/v1/completions`, { prompt: 'x', max_tokens: 1 })).status);
    }
    expect(statuses.filter((s) => s === 500).length).toBeGreaterThan(2);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(2);
  });
});

describe('engine simulator: TGI routes', () => {
  it('/generate returns generated_text, and details when asked', async () => {
    const sim = await start();
    const plain = await postJson(`${sim.url}/generate`, {
      inputs: 'What is Deep Learning?',
      parameters: { max_new_tokens: 3 },
    });
    expect(plain.status).toBe(200);
    const p = JSON.parse(plain.text) as Record<string, unknown>;
    expect(Object.keys(p)).toEqual(['generated_text']);
    expect((p.generated_text as string).split(' ')).toHaveLength(3);
    // TGI's router reports the counts in headers, details or not.
    expect(plain.headers.get('x-generated-tokens')).toBe('3');
    expect(Number(plain.headers.get('x-prompt-tokens'))).toBeGreaterThan(0);

    const detailed = JSON.parse(
      (await postJson(`${sim.url}/generate`, { inputs: 'x', parameters: { max_new_tokens: 3, details: true } })).text,
    ) as { details: { finish_reason: string; generated_tokens: number; tokens: unknown[] } };
    expect(detailed.details).toMatchObject({ finish_reason: 'length', generated_tokens: 3 });
    expect(detailed.details.tokens[0]).toMatchObject({
      id: expect.any(Number),
      text: expect.any(String),
      special: false,
    });
  });

  it('/generate_stream sends one data: event per token, the last with generated_text and details', async () => {
    const sim = await start();
    const res = await postJson(`${sim.url}/generate_stream`, { inputs: 'x', parameters: { max_new_tokens: 3 } });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = sseData(res.text, 'data:').map((e) => JSON.parse(e) as Record<string, unknown>);
    expect(events.map((e) => e.index)).toEqual([1, 2, 3]);
    expect(events.slice(0, 2).every((e) => e.generated_text === null && e.details === null)).toBe(true);
    const texts = events.map((e) => (e.token as { text: string }).text).join('');
    expect(events[2]).toMatchObject({
      generated_text: texts,
      details: { finish_reason: 'length', generated_tokens: 3 },
    });
  });

  it('POST / is TGI’s compat route (where huggingface_hub’s text_generation posts): one answer, or a stream when the body says so', async () => {
    const sim = await start();
    const whole = await postJson(`${sim.url}/`, { inputs: 'hi', parameters: { max_new_tokens: 2 } });
    expect(whole.status).toBe(200);
    expect((JSON.parse(whole.text) as { generated_text: string }).generated_text.split(' ')).toHaveLength(2);
    const stream = await postJson(`${sim.url}/`, { inputs: 'hi', parameters: { max_new_tokens: 2 }, stream: true });
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(sseData(stream.text, 'data:').map((e) => (JSON.parse(e) as { index: number }).index)).toEqual([1, 2]);
  });

  it('missing inputs → 422 with TGI’s error shape', async () => {
    const sim = await start();
    const res = await postJson(`${sim.url}/generate`, { parameters: {} });
    expect(res.status).toBe(422);
    expect(JSON.parse(res.text)).toMatchObject({ error: expect.any(String), error_type: 'validation' });
  });
});

describe('engine simulator: health, metrics, stats', () => {
  it('health answers 503 during the startup delay, then 200', async () => {
    const sim = await start({ startupDelayMs: 200 });
    const first = await fetch(`${sim.url}/health`);
    expect(first.status).toBe(503);
    await waitForValue(
      () => fetch(`${sim.url}/health`).then((r) => r.status),
      (s) => s === 200,
      '/health to answer 200',
    );
  });

  it('/metrics exposes vLLM’s and TGI’s gauge names with the running count', async () => {
    const sim = await start({ tokenIntervalMs: 50 });
    const inflight = postJson(`${sim.url}/v1/completions`, { prompt: 'x', max_tokens: 6 });
    await waitForValue(
      () => simStats(sim.url),
      (s) => s.running === 1,
      'one running sequence',
    );
    const text = await (await fetch(`${sim.url}/metrics`)).text();
    expect(text).toContain('vllm:num_requests_running{model_name="sim"} 1');
    expect(text).toContain('vllm:num_requests_waiting{model_name="sim"} 0');
    expect(text).toMatch(/vllm:gpu_cache_usage_perc\{model_name="sim"\} 0\.\d+/);
    expect(text).toMatch(/vllm:kv_cache_usage_perc\{model_name="sim"\} /);
    expect(text).toMatch(/^tgi_queue_size 0$/m);
    await inflight;
  });

  it('/metrics counts prefix-cache queries and hits in tokens, as vLLM does: a repeated prompt hits its whole blocks', async () => {
    const sim = await start();
    const prompt = 'p'.repeat(64 * 10 + 8); // 162 tokens: 10 whole blocks of 16 tokens and 2 left over
    await postJson(`${sim.url}/v1/completions`, { prompt, max_tokens: 1 });
    await postJson(`${sim.url}/v1/completions`, { prompt, max_tokens: 1 });
    const text = await (await fetch(`${sim.url}/metrics`)).text();
    expect(text).toMatch(/^vllm:prefix_cache_queries_total\{model_name="sim"\} 324$/m);
    expect(text).toMatch(/^vllm:prefix_cache_hits_total\{model_name="sim"\} 160$/m);
  });

  it('/sim/stats records request bodies with unknown fields and headers', async () => {
    const sim = await start();
    await postJson(
      `${sim.url}/v1/chat/completions`,
      { messages: [{ role: 'user', content: 'x' }], max_tokens: 1, top_k: 5, my_extra: { a: 1 } },
      { 'x-trace': 'abc' },
    );
    const s = await simStats(sim.url);
    expect(s.received).toBe(1);
    expect(s.completed).toBe(1);
    const last = s.lastRequests.at(-1)!;
    expect(last).toMatchObject({
      method: 'POST',
      path: '/v1/chat/completions',
      body: { top_k: 5, my_extra: { a: 1 } },
    });
    expect(last.headers['x-trace']).toBe('abc');
  });
});

describe('engine simulator: disconnects, backpressure, faults', () => {
  it('a client that disconnects mid-stream aborts its sequence', async () => {
    const sim = await start({ tokenIntervalMs: 20 });
    const ac = new AbortController();
    const res = await fetch(`${sim.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], max_tokens: 1000, stream: true }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    await reader.read(); // some bytes flowed
    ac.abort();
    const s = await waitForValue(
      () => simStats(sim.url),
      (v) => v.aborted === 1,
      'the sequence aborted',
    );
    expect(s).toMatchObject({ aborted: 1, running: 0, completed: 0 });
  });

  it('a client that disconnects from n choices aborts every one of their sequences', async () => {
    const sim = await start({ tokenIntervalMs: 20 });
    const ac = new AbortController();
    const res = await fetch(`${sim.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], max_tokens: 1000, n: 3, stream: true }),
      signal: ac.signal,
    });
    await res.body!.getReader().read();
    ac.abort();
    const s = await waitForValue(
      () => simStats(sim.url),
      (v) => v.aborted === 3,
      'the three sequences aborted',
    );
    expect(s).toMatchObject({ aborted: 3, running: 0, completed: 0 });
  });

  it('a non-streaming client that disconnects aborts too', async () => {
    const sim = await start({ tokenIntervalMs: 20 });
    const ac = new AbortController();
    const pending = fetch(`${sim.url}/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: 'x', parameters: { max_new_tokens: 1000 } }),
      signal: ac.signal,
    }).catch(() => undefined);
    await waitForValue(
      () => simStats(sim.url),
      (v) => v.running === 1,
      'one running sequence',
    );
    ac.abort();
    await pending;
    const s = await waitForValue(
      () => simStats(sim.url),
      (v) => v.aborted === 1,
      'the sequence aborted',
    );
    expect(s).toMatchObject({ running: 0, completed: 0 });
  });

  it('a reader that does not read gets a bounded stream that completes once it reads', async () => {
    const sim = await start({ tokenIntervalMs: 0 });
    const body = JSON.stringify({ prompt: 'x', max_tokens: 500, stream: true });
    const text = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(
        `${sim.url}/v1/completions`,
        { method: 'POST', headers: { 'content-type': 'application/json' } },
        (res) => {
          res.pause(); // let the socket fill up, then read everything
          setTimeout(() => {
            let all = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (all += c));
            res.on('end', () => resolve(all));
            res.resume();
          }, 300);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    const events = sseData(text);
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as { choices: { text: string }[] });
    // Every token arrives exactly once, whether or not deltas were coalesced while blocked.
    expect(
      chunks
        .map((c) => c.choices[0]!.text)
        .join('')
        .split(' '),
    ).toHaveLength(500);
  });

  it('crashAfter 1: the first request completes, the second dies mid-stream and the server goes away', async () => {
    const sim = await start({ crashAfter: 1, tokenIntervalMs: 5 });
    const ok = await postJson(`${sim.url}/v1/completions`, { prompt: 'x', max_tokens: 2 });
    expect(ok.status).toBe(200);
    const res = await fetch(`${sim.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'x', max_tokens: 100, stream: true }),
    });
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    await expect(fetch(`${sim.url}/health`)).rejects.toThrow();
  });

  it('crashAfter calls onCrash (the CLI exits there) instead of closing in-process', async () => {
    let crashed = 0;
    const sim = await start({ crashAfter: 0, onCrash: () => crashed++ });
    await postJson(`${sim.url}/v1/completions`, { prompt: 'x', max_tokens: 3 });
    expect(crashed).toBe(1);
  });

  it.each([
    { hang: 'all' as const, path: '/health', hangs: true },
    { hang: 'generation' as const, path: '/health', hangs: false },
  ])('hang $hang: GET $path hangs=$hangs, and /sim/stats still answers', async ({ hang, path, hangs }) => {
    const sim = await start({ hang });
    const outcome = await fetch(sim.url + path, { signal: AbortSignal.timeout(300) }).then(
      (r) => r.status,
      () => 'timeout',
    );
    expect(outcome).toBe(hangs ? 'timeout' : 200);
    const gen = await fetch(`${sim.url}/v1/completions`, {
      method: 'POST',
      body: JSON.stringify({ prompt: 'x' }),
      signal: AbortSignal.timeout(300),
    }).then(
      (r) => r.status,
      () => 'timeout',
    );
    expect(gen).toBe('timeout');
    expect((await fetch(`${sim.url}/sim/stats`)).status).toBe(200);
  });
});
