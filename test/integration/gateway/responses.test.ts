import { credentials } from '@grpc/grpc-js';
import OpenAI, { NotFoundError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ForwardRequest,
  InferenceServiceClient,
  type ForwardResponse,
} from '../../../src/gen/flockserve/v1/inference.js';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { bearer, collect } from '../../helpers/grpc.js';

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

describe('the Responses API over gRPC Forward', () => {
  /** One Forward call: the worker's status and body. */
  async function forward(method: string, path: string, body?: object): Promise<{ status: number; json: unknown }> {
    const grpc = new InferenceServiceClient(t.grpcAddress, credentials.createInsecure());
    try {
      const req = ForwardRequest.fromPartial({
        method,
        path,
        headers: { 'content-type': 'application/json' },
        body: body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body)),
      });
      const { got, error } = await collect<ForwardResponse>(grpc.forward(req, bearer()));
      expect(error).toBeUndefined();
      let status = 0;
      const chunks: Buffer[] = [];
      for (const m of got) {
        if (m.part?.$case === 'head') status = m.part.value.status;
        if (m.part?.$case === 'bodyChunk') chunks.push(Buffer.from(m.part.value));
      }
      return { status, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown };
    } finally {
      grpc.close();
    }
  }

  it('later turns and retrievals reach the worker that stored the answer they name', async () => {
    let previous = await forward('POST', '/v1/responses', { model: 'sim', input: 'Over gRPC.', max_output_tokens: 2 });
    expect(previous.status).toBe(200);
    for (let turn = 0; turn < 5; turn++) {
      const id = (previous.json as { id: string }).id;
      const next = await forward('POST', '/v1/responses', {
        model: 'sim',
        input: 'Again.',
        max_output_tokens: 2,
        previous_response_id: id,
      });
      expect(next.status).toBe(200);
      const retrieved = await forward('GET', `/v1/responses/${id}`);
      expect([retrieved.status, (retrieved.json as { id: string }).id]).toEqual([200, id]);
      previous = next;
    }
  });
});
