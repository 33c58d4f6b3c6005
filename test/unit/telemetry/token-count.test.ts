import { describe, expect, it } from 'vitest';
import { TokenTally } from '../../../src/telemetry/token-count.js';

const sse = (...events: string[]): string => events.map((e) => `data: ${e}\n\n`).join('');
const chat = (content: string, finish: string | null = null): string =>
  JSON.stringify({
    object: 'chat.completion.chunk',
    choices: [{ index: 0, delta: { content }, finish_reason: finish }],
  });
const role = JSON.stringify({ choices: [{ index: 0, delta: { role: 'assistant', content: '' } }] });
const usageOnly = JSON.stringify({ choices: [], usage: { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 } });
const tgi = (i: number, last = false): string =>
  JSON.stringify({
    index: i,
    token: { id: i, text: 'x', logprob: 0, special: false },
    generated_text: last ? 'xxx' : null,
    details: last ? { finish_reason: 'length', generated_tokens: 3, seed: null } : null,
  });

/** Splits a string into pieces of `size` bytes, as a socket might deliver it. */
function pieces(text: string, size: number): Buffer[] {
  const b = Buffer.from(text);
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}

describe('TokenTally', () => {
  const cases: { name: string; stream: boolean; body: string; completion: number | undefined; prompt?: number }[] = [
    {
      name: 'vLLM chat stream without usage: role chunk and [DONE] do not count',
      stream: true,
      body: sse(role, chat('a'), chat(' b'), chat(' c', 'length'), '[DONE]'),
      completion: 3,
    },
    {
      name: 'a last chunk with only finish_reason (empty content) does not count',
      stream: true,
      body: sse(role, chat('a'), chat('b'), chat('', 'stop'), '[DONE]'),
      completion: 2,
    },
    {
      name: 'include_usage: the reported count wins over counted events',
      stream: true,
      body: sse(role, chat('a b'), chat('c d', 'length'), usageOnly, '[DONE]'),
      completion: 4,
      prompt: 9,
    },
    {
      name: 'TGI generate_stream: the last event’s details.generated_tokens',
      stream: true,
      body: sse(tgi(1), tgi(2), tgi(3, true)).replaceAll('data: ', 'data:'),
      completion: 3,
    },
    {
      name: 'non-streamed OpenAI JSON: usage fields (not the total, nor the details’ counts)',
      stream: false,
      body: JSON.stringify({
        choices: [{ message: { content: 'the word "completion_tokens": 99 in text' } }],
        usage: {
          prompt_tokens: 12,
          total_tokens: 19,
          completion_tokens: 7,
          prompt_tokens_details: { cached_tokens: 4 },
          completion_tokens_details: { reasoning_tokens: 2 },
        },
      }),
      completion: 7,
      prompt: 12,
    },
    {
      name: 'Responses API JSON: input and output tokens (not max_output_tokens, cached or reasoning tokens)',
      stream: false,
      body: JSON.stringify({
        id: 'resp_1',
        object: 'response',
        max_output_tokens: 64,
        output: [{ type: 'message', content: [{ type: 'output_text', text: 'hi' }] }],
        usage: {
          input_tokens: 21,
          input_tokens_details: { cached_tokens: 16 },
          output_tokens: 5,
          output_tokens_details: { reasoning_tokens: 3 },
          total_tokens: 26,
        },
      }),
      completion: 5,
      prompt: 21,
    },
    {
      name: 'Responses API stream: the completed event reports the counts',
      stream: true,
      body: [
        [
          'response.created',
          { type: 'response.created', response: { id: 'resp_1', max_output_tokens: 64, usage: null } },
        ],
        ['response.output_text.delta', { type: 'response.output_text.delta', delta: 'a' }],
        ['response.output_text.delta', { type: 'response.output_text.delta', delta: 'b' }],
        [
          'response.completed',
          { type: 'response.completed', response: { usage: { input_tokens: 8, output_tokens: 2 } } },
        ],
      ]
        .map(([event, data]) => `event: ${event as string}\ndata: ${JSON.stringify(data)}\n\n`)
        .join(''),
      completion: 2,
      prompt: 8,
    },
    {
      name: 'TGI /generate list with details: summed over inputs',
      stream: false,
      body: JSON.stringify([{ details: { generated_tokens: 5 } }, { details: { generated_tokens: 6 } }]),
      completion: 11,
    },
    {
      name: 'TGI /generate without details: unknown',
      stream: false,
      body: JSON.stringify({ generated_text: 'hello' }),
      completion: undefined,
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      // Whole, and cut into 7-byte pieces (lines and markers split across chunks).
      for (const chunks of c.stream ? [[Buffer.from(c.body)], pieces(c.body, 7)] : [[Buffer.from(c.body)]]) {
        const t = new TokenTally(c.stream);
        for (const ch of chunks) t.add(ch);
        expect(t.counts.completion).toBe(c.completion);
        expect(t.counts.prompt).toBe(c.prompt);
      }
    });
  }
});
