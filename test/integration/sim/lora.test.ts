import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main, parseSimArgs } from '../../../src/cli/flockserve-sim.js';
import type { CliIo } from '../../../src/cli/flockserve-sim.js';
import { LORA_NOT_ENABLED, parseLoraModule } from '../../../src/sim/lora-adapters.js';
import type { SimStats } from '../../../src/sim/server.js';
import { simulatorsClosedAfterEach } from '../../helpers/simulators.js';

const start = simulatorsClosedAfterEach();

// Adapters in PEFT's layout (a directory holding adapter_config.json), and paths that are not.
const ROOT = mkdtempSync(join(tmpdir(), 'flockserve-sim-lora-'));
afterAll(() => rmSync(ROOT, { recursive: true, force: true }));
function adapterDir(name: string): string {
  const dir = join(ROOT, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'adapter_config.json'), '{"r": 8, "lora_alpha": 16, "target_modules": ["q_proj"]}');
  return dir;
}
const SQL = adapterDir('sql-lora');
const CHAT = adapterDir('chat-lora');
const EMPTY = join(ROOT, 'empty');
mkdirSync(EMPTY, { recursive: true });
const A_FILE = join(ROOT, 'a-file');
writeFileSync(A_FILE, 'not a directory');

async function post(url: string, body: unknown) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, contentType: res.headers.get('content-type'), text: await res.text() };
}

function vllmError(status: number, message: string, type: string, param: string | null = null) {
  return { object: 'error', message, type, param, code: status };
}

interface Card {
  id: string;
  object: string;
  owned_by: string;
  root: string;
  parent: string | null;
  max_model_len: number | null;
  permission: { id: string; object: string }[];
}

async function models(url: string): Promise<Card[]> {
  return ((await (await fetch(`${url}/v1/models`)).json()) as { data: Card[] }).data;
}

const runtime = { modelName: 'base', enableLora: true, allowRuntimeLora: true };

describe('engine simulator: vLLM’s runtime LoRA API', () => {
  it('loads an adapter: 200, vLLM’s success line as a bare body (no content-type); /v1/models lists it', async () => {
    const sim = await start(runtime);
    const res = await post(`${sim.url}/v1/load_lora_adapter`, { lora_name: 'sql', lora_path: SQL });
    expect(res).toEqual({ status: 200, contentType: null, text: "Success: LoRA adapter 'sql' added successfully." });
    const cards = await models(sim.url);
    expect(cards.map((c) => c.id)).toEqual(['base', 'sql']);
    expect(cards[1]).toMatchObject({
      id: 'sql',
      object: 'model',
      owned_by: 'vllm',
      root: SQL,
      parent: 'base',
      max_model_len: null,
    });
    expect(cards[1]?.permission).toHaveLength(1);
    expect(cards[1]?.permission[0]).toMatchObject({ object: 'model_permission' });
    expect(cards[1]?.permission[0]?.id).toMatch(/^modelperm-[0-9a-f]{32}$/);
    expect(cards[0]).toMatchObject({ parent: null, max_model_len: 131072 });
  });

  it.each([
    {
      name: 'a name loaded already (without load_inplace)',
      first: { lora_name: 'sql', lora_path: SQL },
      body: { lora_name: 'sql', lora_path: CHAT },
      status: 400,
      error: vllmError(
        400,
        "The lora adapter 'sql' has already been loaded. If you want to load the adapter in place, set 'load_inplace' to True.",
        'InvalidUserInput',
      ),
    },
    {
      name: 'an empty lora_path',
      body: { lora_name: 'sql', lora_path: '' },
      status: 400,
      error: vllmError(400, "Both 'lora_name' and 'lora_path' must be provided.", 'InvalidUserInput'),
    },
    {
      name: 'a directory without adapter_config.json',
      body: { lora_name: 'nope', lora_path: EMPTY },
      status: 404,
      error: vllmError(404, `Loading lora nope failed: No adapter found for ${EMPTY}`, 'NotFoundError'),
    },
    {
      name: 'a path that does not exist',
      body: { lora_name: 'gone', lora_path: join(ROOT, 'missing') },
      status: 404,
      error: vllmError(404, `Loading lora gone failed: No adapter found for ${join(ROOT, 'missing')}`, 'NotFoundError'),
    },
    {
      name: 'a file, not a directory',
      body: { lora_name: 'file', lora_path: A_FILE },
      status: 500,
      error: vllmError(
        500,
        `Call to add_lora method failed: [Errno 20] Not a directory: '${join(A_FILE, 'adapter_config.json')}'`,
        'InternalServerError',
      ),
    },
  ])('refuses $name: $status with vLLM’s message', async ({ first, body, status, error }) => {
    const sim = await start(runtime);
    if (first) expect((await post(`${sim.url}/v1/load_lora_adapter`, first)).status).toBe(200);
    const res = await post(`${sim.url}/v1/load_lora_adapter`, body);
    expect(res.status).toBe(status);
    expect(res.contentType).toBe('application/json');
    expect(JSON.parse(res.text)).toEqual(error);
    // A refused load leaves the list as it was.
    expect((await models(sim.url)).map((c) => c.id)).toEqual(first ? ['base', 'sql'] : ['base']);
  });

  it('a missing field fails the request model (400 naming the field)', async () => {
    const sim = await start(runtime);
    const res = await post(`${sim.url}/v1/load_lora_adapter`, { lora_name: 'sql' });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toEqual(
      vllmError(
        400,
        "[{'type': 'missing', 'loc': ('body', 'lora_path'), 'msg': 'Field required', 'input': {'lora_name': 'sql'}}]",
        'BadRequestError',
      ),
    );
  });

  it('load_inplace reloads a loaded name from a new path', async () => {
    const sim = await start(runtime);
    await post(`${sim.url}/v1/load_lora_adapter`, { lora_name: 'sql', lora_path: SQL });
    const res = await post(`${sim.url}/v1/load_lora_adapter`, {
      lora_name: 'sql',
      lora_path: CHAT,
      load_inplace: true,
    });
    expect(res).toMatchObject({ status: 200, text: "Success: LoRA adapter 'sql' added successfully." });
    expect((await models(sim.url)).map((c) => [c.id, c.root])).toEqual([
      ['base', 'base'],
      ['sql', CHAT],
    ]);
  });

  it('unloads: 200 with vLLM’s line, then the name is unknown (404), and requests naming it are refused', async () => {
    const sim = await start(runtime);
    await post(`${sim.url}/v1/load_lora_adapter`, { lora_name: 'sql', lora_path: SQL });
    const res = await post(`${sim.url}/v1/unload_lora_adapter`, { lora_name: 'sql', lora_int_id: 1 });
    expect(res).toEqual({ status: 200, contentType: null, text: "Success: LoRA adapter 'sql' removed successfully." });
    expect((await models(sim.url)).map((c) => c.id)).toEqual(['base']);
    const again = await post(`${sim.url}/v1/unload_lora_adapter`, { lora_name: 'sql' });
    expect(again.status).toBe(404);
    expect(JSON.parse(again.text)).toEqual(vllmError(404, "The lora adapter 'sql' cannot be found.", 'NotFoundError'));
    const chat = await post(`${sim.url}/v1/chat/completions`, {
      model: 'sql',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(chat.status).toBe(404);
  });

  it('an empty lora_name to unload is vLLM’s 400', async () => {
    const sim = await start(runtime);
    const res = await post(`${sim.url}/v1/unload_lora_adapter`, { lora_name: '' });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toEqual(
      vllmError(400, "'lora_name' needs to be provided to unload a LoRA adapter.", 'InvalidUserInput'),
    );
  });

  it('without runtime updating the routes are unknown: FastAPI’s 404', async () => {
    const sim = await start({ modelName: 'base', enableLora: true });
    for (const path of ['/v1/load_lora_adapter', '/v1/unload_lora_adapter']) {
      const res = await post(`${sim.url}${path}`, { lora_name: 'sql', lora_path: SQL });
      expect(res.status, path).toBe(404);
      expect(JSON.parse(res.text)).toEqual({ detail: 'Not Found' });
    }
    // With it, the same path asked with GET is a known route: 405.
    const on = await start(runtime);
    expect((await fetch(`${on.url}/v1/load_lora_adapter`)).status).toBe(405);
  });

  it('runtime updating without --enable-lora: the engine refuses the load (500)', async () => {
    const sim = await start({ allowRuntimeLora: true });
    const res = await post(`${sim.url}/v1/load_lora_adapter`, { lora_name: 'sql', lora_path: SQL });
    expect(res.status).toBe(500);
    expect(JSON.parse(res.text)).toEqual(vllmError(500, LORA_NOT_ENABLED, 'InternalServerError'));
  });

  it('adapter loads count neither as received requests nor in the error-rate draw', async () => {
    const sim = await start({ ...runtime, errorRate: 1 });
    const res = await post(`${sim.url}/v1/load_lora_adapter`, { lora_name: 'sql', lora_path: SQL });
    expect(res.status).toBe(200);
    const stats = (await (await fetch(`${sim.url}/sim/stats`)).json()) as SimStats;
    expect(stats.received).toBe(0);
  });
});

describe('engine simulator: the model a request names, with --enable-lora', () => {
  const notFound = (model: string) =>
    vllmError(404, `The model \`${model}\` does not exist.`, 'NotFoundError', 'model');
  const bodies: Record<string, (model: string) => Record<string, unknown>> = {
    '/v1/chat/completions': (model) => ({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
    '/v1/completions': (model) => ({ model, prompt: 'hi', max_tokens: 2 }),
    '/v1/responses': (model) => ({ model, input: 'hi', max_output_tokens: 2 }),
    '/v1/embeddings': (model) => ({ model, input: 'hi' }),
  };

  it.each(Object.keys(bodies))(
    '%s: an unknown name is vLLM’s 404; the served name and an adapter are served',
    async (path) => {
      const make = bodies[path]!;
      const sim = await start({ modelName: 'base', enableLora: true, loraModules: [{ name: 'sql', path: SQL }] });
      const unknown = await post(`${sim.url}${path}`, make('other'));
      expect(unknown.status).toBe(404);
      expect(JSON.parse(unknown.text)).toEqual(notFound('other'));
      for (const model of ['base', 'sql']) {
        const ok = await post(`${sim.url}${path}`, make(model));
        expect(ok.status, `${path} ${model}: ${ok.text}`).toBe(200);
        // The answer names the adapter when one is asked for.
        expect((JSON.parse(ok.text) as { model: string }).model).toBe(model);
      }
      const stats = (await (await fetch(`${sim.url}/sim/stats`)).json()) as SimStats;
      expect(stats.errors).toBe(1);
    },
  );

  it('an absent model is the served one', async () => {
    const sim = await start({ modelName: 'base', enableLora: true });
    const res = await post(`${sim.url}/v1/completions`, { prompt: 'hi', max_tokens: 1 });
    expect(res.status).toBe(200);
    expect((JSON.parse(res.text) as { model: string }).model).toBe('base');
  });

  it('without --enable-lora any name is served and echoed (the simulator’s leniency)', async () => {
    const sim = await start({ modelName: 'base' });
    const res = await post(`${sim.url}/v1/completions`, { model: 'anything', prompt: 'hi', max_tokens: 1 });
    expect(res.status).toBe(200);
    expect((JSON.parse(res.text) as { model: string }).model).toBe('anything');
  });
});

describe('engine simulator: adapters at start (--lora-modules)', () => {
  it('lists them in order, with the JSON form’s base_model_name as parent when it is the served model', async () => {
    const sim = await start({
      modelName: 'base',
      enableLora: true,
      loraModules: [
        { name: 'sql', path: SQL },
        { name: 'chat', path: CHAT, baseModelName: 'base' },
      ],
    });
    expect((await models(sim.url)).map((c) => [c.id, c.root, c.parent])).toEqual([
      ['base', 'base', null],
      ['sql', SQL, 'base'],
      ['chat', CHAT, 'base'],
    ]);
  });

  it('a module without an adapter stops the start with vLLM’s message', async () => {
    await expect(
      start({ modelName: 'base', enableLora: true, loraModules: [{ name: 'x', path: EMPTY }] }),
    ).rejects.toThrow(`Loading lora x failed: No adapter found for ${EMPTY}`);
    await expect(start({ modelName: 'base', loraModules: [{ name: 'x', path: SQL }] })).rejects.toThrow(
      LORA_NOT_ENABLED,
    );
  });
});

describe('flockserve-sim CLI: LoRA flags', () => {
  it('reads vLLM’s forms: --enable-lora, --lora-modules with several values and JSON', () => {
    const json = JSON.stringify({ name: 'chat', path: CHAT, base_model_name: 'base' });
    const o = parseSimArgs(['--enable-lora', '--lora-modules', `sql=${SQL}`, json, '--port', '0'], {});
    expect(o).toMatchObject({
      enableLora: true,
      port: 0,
      allowRuntimeLora: false,
      loraModules: [
        { name: 'sql', path: SQL },
        { name: 'chat', path: CHAT, baseModelName: 'base' },
      ],
    });
  });

  it.each([
    [{ VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'True' }, [], true],
    [{ VLLM_ALLOW_RUNTIME_LORA_UPDATING: ' 1 ' }, [], true],
    [{ VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'yes' }, [], false],
    [{ VLLM_ALLOW_RUNTIME_LORA_UPDATING: '0' }, ['--allow-runtime-lora'], true],
    [{}, [], false],
  ])('runtime updating from env %j and flags %j: %s', (env, flags, want) => {
    expect(parseSimArgs(flags, env)).toMatchObject({ allowRuntimeLora: want });
  });

  it.each([
    [['--lora-modules', `sql=${SQL}`], /--lora-modules needs --enable-lora/],
    [['--enable-lora', '--lora-modules'], /expected at least one argument/],
    [['--enable-lora', '--lora-modules', '{"name": "x"'], /Invalid JSON format for --lora-modules/],
    [['--enable-lora', '--lora-modules', '{"name": "x", "pth": "y"}'], /unexpected keyword argument 'pth'/],
  ])('refuses %j', async (argv, message) => {
    const err: string[] = [];
    const exits: number[] = [];
    const io: CliIo = {
      env: {},
      out: () => {},
      err: (l) => err.push(l),
      exit: (c) => exits.push(c),
      handleSignals: false,
    };
    expect(await main(argv, io)).toBeUndefined();
    expect(exits).toEqual([2]);
    expect(err.join('\n')).toMatch(message);
  });

  it('parses one module value as vLLM does', () => {
    expect(parseLoraModule('a=b=c')).toMatch(/too many values to unpack/);
    expect(parseLoraModule('{"path": "p"}')).toMatch(/missing 1 required positional argument: 'name'/);
  });
});
