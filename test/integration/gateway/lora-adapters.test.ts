import { credentials } from '@grpc/grpc-js';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { NotFoundError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ForwardRequest,
  InferenceServiceClient,
  type ForwardResponse,
} from '../../../src/gen/flockserve/v1/inference.js';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { bearer, collect } from '../../helpers/grpc.js';
import { waitFor } from '../../helpers/wait.js';

// Simulator workers that serve LoRA adapters and take run-time loads, as vLLM with
// --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING: each engine keeps its adapters in its own memory.
let t: TestGateway;
let openai: OpenAI;
let adapters: string;

/** A PEFT adapter directory (the simulator reads only that adapter_config.json is there). */
function adapterDir(name: string): string {
  const dir = join(adapters, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 8 }));
  return dir;
}

/** The model ids each worker's engine lists, asked of the engines themselves. */
async function listedByWorker(): Promise<string[][]> {
  const workers = t.gw.workers().filter((w) => w.state === 'ready');
  return Promise.all(
    workers.map(async (w) => {
      const res = await fetch(`${w.url}/v1/models`);
      const body = (await res.json()) as { data: { id: string }[] };
      return body.data.map((m) => m.id).sort();
    }),
  );
}

const post = (path: string, body: object): Promise<Response> =>
  fetch(`${t.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

beforeAll(async () => {
  adapters = mkdtempSync(join(tmpdir(), 'flockserve-lora-'));
  t = await startGateway({ simArgs: '--enable-lora --allow-runtime-lora', minWorkers: 2, maxWorkers: 3 });
  openai = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(() => t?.close());

describe('run-time LoRA adapters through the gateway', () => {
  it('a load reaches every worker: every request naming the adapter is served, on any worker', async () => {
    const res = await post('/v1/load_lora_adapter', { lora_name: 'sql', lora_path: adapterDir('sql') });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("Success: LoRA adapter 'sql' added successfully.");
    expect(await listedByWorker()).toEqual([
      ['sim', 'sql'],
      ['sim', 'sql'],
    ]);
    // Forwarded to one worker, half of these would find vLLM's 404 on the other.
    const answers = await Promise.all(
      Array.from({ length: 8 }, () =>
        openai.chat.completions.create({ model: 'sql', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
      ),
    );
    for (const a of answers) expect(a.model).toBe('sql');
    expect(((await (await fetch(`${t.url}/`)).json()) as { lora_adapters: string[] }).lora_adapters).toEqual(['sql']);
  });

  it('a worker that joins later loads the adapters before it serves', async () => {
    const added = await t.gw.addWorker();
    await waitFor(() => t.gw.workers().find((w) => w.name === added.name)?.state === 'ready', 'the third worker ready');
    expect(await listedByWorker()).toEqual([
      ['sim', 'sql'],
      ['sim', 'sql'],
      ['sim', 'sql'],
    ]);
  });

  it("a load no engine can make is the engine's error, and no worker has it", async () => {
    const res = await post('/v1/load_lora_adapter', { lora_name: 'ghost', lora_path: join(adapters, 'nowhere') });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    const body = (await res.json()) as { error: { message: string } };
    expect(body.error.message).toContain('nowhere');
    for (const listed of await listedByWorker()) expect(listed).not.toContain('ghost');
  });

  it('an unload reaches every worker, after which the adapter is a 404 from any', async () => {
    const res = await post('/v1/unload_lora_adapter', { lora_name: 'sql' });
    expect(res.status).toBe(200);
    for (const listed of await listedByWorker()) expect(listed).toEqual(['sim']);
    expect(((await (await fetch(`${t.url}/`)).json()) as { lora_adapters: string[] }).lora_adapters).toEqual([]);
    const err = await openai.chat.completions
      .create({ model: 'sql', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
  });

  it('a load through gRPC Forward is made on every worker too', async () => {
    const client = new InferenceServiceClient(t.grpcAddress, credentials.createInsecure());
    try {
      const body = Buffer.from(JSON.stringify({ lora_name: 'chat', lora_path: adapterDir('chat') }));
      const req = ForwardRequest.fromPartial({
        method: 'POST',
        path: '/v1/load_lora_adapter',
        headers: { 'content-type': 'application/json' },
        body,
      });
      const { got, error } = await collect<ForwardResponse>(client.forward(req, bearer()));
      expect(error).toBeUndefined();
      const head = got.find((m) => m.part?.$case === 'head');
      expect(head?.part?.$case === 'head' ? head.part.value.status : 0).toBe(200);
      for (const listed of await listedByWorker()) expect(listed).toEqual(['chat', 'sim']);
    } finally {
      client.close();
    }
  });

  it('a change without lora_name is refused by the gateway in OpenAI shape', async () => {
    const res = await post('/v1/load_lora_adapter', { lora_path: '/x' });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('bad_request');
    expect(body.error.message).toContain('lora_name');
  });
});
