import OpenAI, { NotFoundError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';

// Two simulator workers that store Responses API answers in their own memory, as vLLM does with
// VLLM_ENABLE_RESPONSES_API_STORE=1: a turn that names an answer must reach the worker that wrote it.
let t: TestGateway;
let openai: OpenAI;

beforeAll(async () => {
  t = await startGateway({ simArgs: '--responses-store' });
  openai = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(() => t?.close());

describe('the Responses API through the gateway (the official openai client)', () => {
  it('every turn of a conversation reaches the worker that stored the turn before it', async () => {
    // Each conversation starts on whichever worker balancing picks; its later turns follow it
    // (any other worker answers 404: without that, the twelve requests below that name an answer
    // would all land right by chance once in 4,096 runs).
    for (let c = 0; c < 2; c++) {
      let previous = await openai.responses.create({ model: 'sim', input: `Conversation ${c}.`, max_output_tokens: 4 });
      for (let turn = 1; turn < 6; turn++) {
        const next = await openai.responses.create({
          model: 'sim',
          input: `Turn ${turn}.`,
          max_output_tokens: 4,
          previous_response_id: previous.id,
        });
        expect(next.previous_response_id).toBe(previous.id);
        // The engine replays the stored conversation: the prompt grows turn by turn.
        expect(next.usage!.input_tokens).toBeGreaterThan(previous.usage!.input_tokens);
        previous = next;
      }
      const retrieved = await openai.responses.retrieve(previous.id);
      expect(retrieved.id).toBe(previous.id);
    }
  });

  it('a streamed turn is remembered from its first event', async () => {
    const stream = await openai.responses.create({
      model: 'sim',
      input: 'Stream it.',
      max_output_tokens: 3,
      stream: true,
    });
    let id: string | undefined;
    let text = '';
    for await (const event of stream) {
      if (event.type === 'response.created') id = event.response.id;
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
    expect(text.length).toBeGreaterThan(0);
    for (let turn = 0; turn < 4; turn++) {
      const next = await openai.responses.create({
        model: 'sim',
        input: 'Go on.',
        max_output_tokens: 2,
        previous_response_id: id!,
      });
      id = next.id;
    }
  });

  it("an id no worker wrote gets the engine's 404, in OpenAI's shape", async () => {
    const err = await openai.responses
      .create({ model: 'sim', input: 'x', previous_response_id: 'resp_nobodywrotethis' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).message).toContain("Response with id 'resp_nobodywrotethis' not found.");
  });
});
