import { describe, expect, it } from 'vitest';
import { Cancellation } from '../../../src/core/cancellation.js';
import { VirtualClock } from '../../../src/core/clock.js';
import { GatewayError } from '../../../src/core/errors.js';
import { WorkerPool } from '../../../src/core/pool.js';
import type { Prober } from '../../../src/core/types.js';
import type { FleetCommand } from '../../../src/core/coordination.js';
import {
  ADAPTER_SYNC_TIMEOUT_MS,
  AdapterSync,
  MAX_SHARED_ADAPTER_BYTES,
  type AdapterSyncOptions,
} from '../../../src/service/adapters.js';
import { InferenceService } from '../../../src/service/inference.js';
import { BodyStream } from '../../../src/upstream/body-stream.js';
import type { Upstream } from '../../../src/upstream/types.js';
import { testAdmission } from '../../helpers/balancer.js';

const SILENT = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * An engine as vLLM's run-time LoRA API answers: GET /v1/models lists the base model and each
 * adapter; a load of a name it has is a 400, of a path it cannot read a 400; an unload of a name
 * it lacks a 404. `up` false: nothing answers (the connection is refused).
 */
class Engine {
  readonly adapters = new Map<string, string>();
  readonly calls: string[] = [];
  /** The headers of each change sent to it. */
  readonly changeHeaders: Record<string, string>[] = [];
  up = true;
  /** Answers this many more changes with a 503, as an engine busy for a moment. */
  busy = 0;
  /** Its GET /v1/models never answers (the request waits until it is cancelled). */
  hangModels = false;
  /** The key its API asks for on every /v1 path, as vLLM's --api-key. */
  key: string | undefined;
  /** Paths this engine cannot read (its disk lacks them). */
  readonly unreadable = new Set<string>(['/nowhere']);

  answer(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
  ): { status: number; text: string } {
    if (!this.up) throw new Error('ECONNREFUSED');
    this.calls.push(`${method} ${path}`);
    if (this.key !== undefined && headers['authorization'] !== `Bearer ${this.key}`)
      return { status: 401, text: 'no key' };
    if (method === 'POST') this.changeHeaders.push(headers);
    if (method === 'POST' && this.busy > 0) {
      this.busy--;
      return { status: 503, text: 'busy' };
    }
    const req = body
      ? (JSON.parse(body.toString('utf8')) as { lora_name: string; lora_path?: string; load_inplace?: boolean })
      : undefined;
    if (path === '/v1/models') {
      const cards = [{ id: 'base', root: 'base' }, ...[...this.adapters].map(([id, root]) => ({ id, root }))];
      return { status: 200, text: JSON.stringify({ object: 'list', data: cards }) };
    }
    if (path === '/v1/load_lora_adapter') {
      if (this.adapters.has(req!.lora_name) && req!.load_inplace !== true)
        return { status: 400, text: `'${req!.lora_name}' has already been loaded` };
      if (this.unreadable.has(req!.lora_path ?? '')) return { status: 400, text: `no adapter at ${req!.lora_path}` };
      this.adapters.set(req!.lora_name, req!.lora_path ?? '');
      return { status: 200, text: `Success: LoRA adapter '${req!.lora_name}' added successfully.` };
    }
    if (path === '/v1/unload_lora_adapter') {
      if (!this.adapters.delete(req!.lora_name)) return { status: 404, text: `'${req!.lora_name}' cannot be found` };
      return { status: 200, text: `Success: LoRA adapter '${req!.lora_name}' removed successfully.` };
    }
    return { status: 200, text: '{}' };
  }
}

function setup(
  names = ['w-1', 'w-2', 'w-3'],
  replica: Partial<Pick<AdapterSyncOptions, 'leading' | 'submit' | 'onChange'>> = {},
) {
  const clock = new VirtualClock();
  const pool = new WorkerPool(clock);
  const engines = new Map<string, Engine>();
  const warnings: string[] = [];
  const join = (name: string, ready = true): Engine => {
    pool.add(name, 4, 'provisioning').url = `http://${name}`;
    pool.setState(name, 'starting', 'test');
    if (ready) pool.setState(name, 'ready', 'test');
    const engine = new Engine();
    engines.set(`http://${name}`, engine);
    return engine;
  };
  for (const n of names) join(n);
  const upstream: Upstream = {
    send: (url, req) => {
      const engine = engines.get(url);
      if (engine?.hangModels && req.path === '/v1/models')
        return new Promise((_, reject) =>
          req.signal?.addEventListener('abort', () => reject(req.signal!.reason as Error)),
        );
      try {
        const { status, text } = engine!.answer(req.method, req.path, req.headers, req.body);
        const contentType = status === 200 && req.path !== '/v1/models' ? 'text/plain' : 'application/json';
        return Promise.resolve({
          status,
          headers: { 'content-type': contentType },
          body: BodyStream.whole(Buffer.from(text)),
        });
      } catch (err) {
        return Promise.reject(err as Error);
      }
    },
    forget: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  const adapters = new AdapterSync({
    upstream,
    serving: () => pool.serving(),
    log: { ...SILENT, warn: (_f, msg) => warnings.push(msg) },
    clock,
    ...replica,
  });
  const service = new InferenceService({
    admission: testAdmission(pool, clock),
    upstream,
    queueTimeoutMs: 1000,
    maxRetries: 0,
    clock,
    adapters,
  });
  const engine = (name: string): Engine => engines.get(`http://${name}`)!;
  /** A change through the service, its answer read whole. */
  const change = async (kind: 'load' | 'unload', body: object | string) => {
    const reply = await service.dispatch({
      method: 'POST',
      path: `/v1/${kind}_lora_adapter`,
      headers: { authorization: 'Bearer engine-key', 'x-request-id': 'r-1' },
      body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
      signal: new Cancellation(),
    });
    const chunks: Buffer[] = [];
    for await (const c of reply.body) chunks.push(c);
    return { status: reply.status, text: Buffer.concat(chunks).toString('utf8'), worker: reply.worker };
  };
  const upProber: Prober = { probe: (url) => Promise.resolve(engines.get(url)?.up ?? false) };
  const prober = adapters.prober(upProber);
  const probe = (name: string): Promise<boolean> => prober.probe(`http://${name}`, new AbortController().signal);
  return { clock, pool, adapters, service, change, engine, join, probe, warnings };
}

describe('AdapterSync: run-time LoRA adapters alike on every worker', () => {
  it('a load reaches every worker serving, and the client gets an engine answer', async () => {
    const s = setup();
    const answer = await s.change('load', { lora_name: 'sql', lora_path: '/adapters/sql' });
    expect(answer.status).toBe(200);
    expect(answer.text).toBe("Success: LoRA adapter 'sql' added successfully.");
    for (const w of ['w-1', 'w-2', 'w-3']) expect([...s.engine(w).adapters]).toEqual([['sql', '/adapters/sql']]);
    expect(s.adapters.loaded()).toEqual(['sql']);
    // Workers that took it are known to match: their probes send the engine nothing more.
    expect(await s.probe('w-2')).toBe(true);
    expect(s.engine('w-2').calls).toEqual(['POST /v1/load_lora_adapter']);
  });

  it('a worker that joins later is brought to the adapters before its probe passes, with the client headers that matter', async () => {
    const s = setup(['w-1']);
    await s.change('load', { lora_name: 'sql', lora_path: '/adapters/sql' });
    await s.change('load', { lora_name: 'chat', lora_path: '/adapters/chat' });
    const late = s.join('w-2', false);
    expect(await s.probe('w-2')).toBe(true);
    expect(late.calls).toEqual(['GET /v1/models', 'POST /v1/load_lora_adapter', 'POST /v1/load_lora_adapter']);
    expect([...late.adapters.keys()]).toEqual(['sql', 'chat']);
    // The engine's key goes with the replay; the first client's request id does not.
    expect(late.changeHeaders[0]).toEqual({ 'content-type': 'application/json', authorization: 'Bearer engine-key' });
  });

  it('a joining worker whose engine cannot load an adapter fails its probe, and says why', async () => {
    const s = setup(['w-1']);
    await s.change('load', { lora_name: 'sql', lora_path: '/adapters/sql' });
    const late = s.join('w-2', false);
    late.unreadable.add('/adapters/sql');
    expect(await s.probe('w-2')).toBe(false);
    expect(s.warnings.join('\n')).toMatch(/cannot be brought to the fleet's LoRA adapters \(sql\)/);
    // Its disk is mended: the next probe loads it and passes.
    late.unreadable.delete('/adapters/sql');
    expect(await s.probe('w-2')).toBe(true);
    expect([...late.adapters.keys()]).toEqual(['sql']);
  });

  it('an engine that kept its adapters through a failed probe is asked what it has, and nothing is loaded twice', async () => {
    const s = setup(['w-1']);
    await s.change('load', { lora_name: 'sql', lora_path: '/adapters/sql' });
    const e = s.engine('w-1');
    e.up = false;
    expect(await s.probe('w-1')).toBe(false);
    e.up = true;
    e.calls.length = 0;
    expect(await s.probe('w-1')).toBe(true);
    expect(e.calls).toEqual(['GET /v1/models']);
  });

  it('an engine that restarted without its adapters gets them back at its next probe', async () => {
    const s = setup(['w-1']);
    await s.change('load', { lora_name: 'sql', lora_path: '/adapters/sql' });
    const e = s.engine('w-1');
    e.up = false;
    e.adapters.clear();
    expect(await s.probe('w-1')).toBe(false);
    e.up = true;
    expect(await s.probe('w-1')).toBe(true);
    expect([...e.adapters.keys()]).toEqual(['sql']);
  });

  it('a load every engine refuses is the engine answer, and is not kept', async () => {
    const s = setup();
    const answer = await s.change('load', { lora_name: 'sql', lora_path: '/nowhere' });
    expect(answer.status).toBe(400);
    expect(answer.text).toBe('no adapter at /nowhere');
    expect(s.adapters.loaded()).toEqual([]);
    const late = s.join('w-4', false);
    expect(await s.probe('w-4')).toBe(true);
    expect(late.calls).toEqual([]);
  });

  it("a load one engine refuses as the client's fault is undone where it was taken, and not kept", async () => {
    const s = setup();
    s.engine('w-2').unreadable.add('/adapters/sql');
    const answer = await s.change('load', { lora_name: 'sql', lora_path: '/adapters/sql' });
    expect([answer.status, answer.text, answer.worker]).toEqual([400, 'no adapter at /adapters/sql', 'w-2']);
    for (const w of ['w-1', 'w-2', 'w-3']) expect(s.engine(w).adapters.size).toBe(0);
    expect(s.adapters.loaded()).toEqual([]);
    expect(s.warnings[0]).toMatch(/load refused by 1 of 3 workers; not kept, and unloaded where it was taken/);
    // No worker is held out for it.
    for (const w of ['w-1', 'w-2', 'w-3']) expect(await s.probe(w)).toBe(true);
  });

  it('a refused in-place reload of a kept adapter leaves every worker with the adapter as the fleet keeps it', async () => {
    const s = setup(['w-1', 'w-2']);
    await s.change('load', { lora_name: 'sql', lora_path: '/adapters/sql-v1' });
    s.engine('w-2').unreadable.add('/adapters/sql-v2');
    const reload = { lora_name: 'sql', lora_path: '/adapters/sql-v2', load_inplace: true };
    expect((await s.change('load', reload)).status).toBe(400);
    expect(s.adapters.loaded()).toEqual(['sql']);
    // w-1 took the reload and had it undone: it holds the kept weights again, at once.
    for (const w of ['w-1', 'w-2']) expect(s.engine(w).adapters.get('sql')).toBe('/adapters/sql-v1');
    for (const w of ['w-1', 'w-2']) expect(await s.probe(w)).toBe(true);
  });

  it('a worker down at a load is brought to it at its next probe', async () => {
    const s = setup();
    s.engine('w-3').up = false;
    const answer = await s.change('load', { lora_name: 'sql', lora_path: '/adapters/sql' });
    expect(answer.status).toBe(200);
    expect(s.warnings[0]).toMatch(/load taken by 2 of 3 workers/);
    s.engine('w-3').up = true;
    expect(await s.probe('w-3')).toBe(true);
    expect([...s.engine('w-3').adapters.keys()]).toEqual(['sql']);
  });

  it('a change that runs twice (a new leader runs it again) is kept: the engines hold what it asks', async () => {
    const s = setup(['w-1', 'w-2']);
    for (const w of ['w-1', 'w-2']) s.engine(w).adapters.set('sql', '/adapters/sql');
    const answer = await s.change('load', { lora_name: 'sql', lora_path: '/adapters/sql' });
    // The engine's own answer ("already loaded"), and the fleet keeps the adapter for workers to come.
    expect(answer.status).toBe(400);
    expect(s.adapters.loaded()).toEqual(['sql']);
    const late = s.join('w-3', false);
    expect(await s.probe('w-3')).toBe(true);
    expect([...late.adapters]).toEqual([['sql', '/adapters/sql']]);
  });

  it('a worker that missed an in-place reload unloads the old weights and loads the new before it serves again', async () => {
    const s = setup(['w-1', 'w-2']);
    await s.change('load', { lora_name: 'sql', lora_path: '/adapters/sql-v1' });
    s.engine('w-2').busy = 2; // the reload and the immediate catch-up both meet a busy engine
    const reload = { lora_name: 'sql', lora_path: '/adapters/sql-v2', load_inplace: true };
    expect((await s.change('load', reload)).status).toBe(200);
    expect(s.engine('w-2').adapters.get('sql')).toBe('/adapters/sql-v1');
    expect(await s.probe('w-2')).toBe(true);
    expect(s.engine('w-2').adapters.get('sql')).toBe('/adapters/sql-v2');
    expect(s.engine('w-1').adapters.get('sql')).toBe('/adapters/sql-v2');
  });

  it("an engine behind an API key is read and loaded with the client's latest key", async () => {
    const s = setup(['w-1']);
    s.engine('w-1').key = 'engine-key';
    expect((await s.change('load', { lora_name: 'sql', lora_path: '/adapters/sql' })).status).toBe(200);
    const late = s.join('w-2', false);
    late.key = 'engine-key';
    expect(await s.probe('w-2')).toBe(true);
    expect([...late.adapters.keys()]).toEqual(['sql']);
  });

  it('a catch-up whose engine never lists its models ends at its deadline, failing the probe', async () => {
    const s = setup(['w-1']);
    await s.change('load', { lora_name: 'sql', lora_path: '/adapters/sql' });
    const late = s.join('w-2', false);
    late.hangModels = true;
    const probed = s.probe('w-2');
    await Promise.resolve();
    s.clock.advance(ADAPTER_SYNC_TIMEOUT_MS);
    expect(await probed).toBe(false);
    expect(s.warnings.join('\n')).toMatch(
      /it does not serve until it is: The LoRA adapter change was not done within 120 s/,
    );
  });

  it('a worker that answers a load with a passing failure has it before the client gets its answer', async () => {
    const s = setup(['w-1', 'w-2']);
    s.engine('w-2').busy = 1;
    expect((await s.change('load', { lora_name: 'sql', lora_path: '/adapters/sql' })).status).toBe(200);
    expect([...s.engine('w-2').adapters.keys()]).toEqual(['sql']);
    expect(s.engine('w-2').calls).toEqual([
      'POST /v1/load_lora_adapter',
      'GET /v1/models',
      'POST /v1/load_lora_adapter',
    ]);
  });

  it('an unload reaches every worker, and a joining worker that has the adapter from its task drops it', async () => {
    const s = setup(['w-1', 'w-2']);
    for (const w of ['w-1', 'w-2']) s.engine(w).adapters.set('task-adapter', '/task');
    const answer = await s.change('unload', { lora_name: 'task-adapter' });
    expect(answer.status).toBe(200);
    for (const w of ['w-1', 'w-2']) expect(s.engine(w).adapters.size).toBe(0);
    const late = s.join('w-3', false);
    late.adapters.set('task-adapter', '/task');
    expect(await s.probe('w-3')).toBe(true);
    expect(late.adapters.size).toBe(0);
  });

  it("an unload of an adapter no worker has is the engine's 404; a worker that joins is only read", async () => {
    const s = setup(['w-1']);
    const answer = await s.change('unload', { lora_name: 'ghost' });
    expect(answer.status).toBe(404);
    expect(s.adapters.loaded()).toEqual([]);
    const late = s.join('w-2', false);
    expect(await s.probe('w-2')).toBe(true);
    expect(late.calls).toEqual(['GET /v1/models']);
  });

  it('a load with no worker serving is no_workers; a body without lora_name is refused before any worker sees it', async () => {
    const s = setup([]);
    await expect(s.change('load', { lora_name: 'sql', lora_path: '/a' })).rejects.toMatchObject({ code: 'no_workers' });
    const t = setup(['w-1']);
    await expect(t.change('load', { lora_path: '/a' })).rejects.toMatchObject({ code: 'bad_request' });
    await expect(t.change('load', '{"lora_name":')).rejects.toBeInstanceOf(GatewayError);
    await expect(t.change('load', '{"lora_name":')).rejects.toMatchObject({ code: 'invalid_json' });
    expect(t.engine('w-1').calls).toEqual([]);
  });

  it('without any change the probe is the inner one alone', async () => {
    const s = setup(['w-1']);
    s.pool.setState('w-1', 'not_ready', 'test');
    expect(await s.probe('w-1')).toBe(true);
    expect(s.engine('w-1').calls).toEqual([]);
  });

  it('a follower passes a change to the leader, answers with what the leader carried back, and brings no worker to anything', async () => {
    const submitted: FleetCommand[] = [];
    const s = setup(['w-1'], {
      leading: () => false,
      submit: (cmd) => {
        submitted.push(cmd);
        return Promise.resolve({ ok: true, answer: { worker: 'w-9', status: 200, headers: {}, body: 'Success' } });
      },
    });
    const answer = await s.change('load', { lora_name: 'sql', lora_path: '/adapters/sql' });
    expect(answer).toEqual({ status: 200, text: 'Success', worker: 'w-9' });
    expect(submitted).toEqual([
      {
        op: 'adapter',
        kind: 'load',
        name: 'sql',
        body: JSON.stringify({ lora_name: 'sql', lora_path: '/adapters/sql' }),
        headers: { authorization: 'Bearer engine-key' },
      },
    ]);
    expect(s.engine('w-1').calls).toEqual([]);
    expect(s.adapters.shared()).toBeUndefined();
    const refused = setup(['w-1'], {
      leading: () => false,
      submit: () => Promise.resolve({ ok: false, code: 'no_leader', message: 'none leads' }),
    });
    await expect(refused.change('load', { lora_name: 'sql', lora_path: '/a' })).rejects.toMatchObject({
      code: 'no_leader',
    });
  });

  it("the leader makes a follower's change, shares it, and a new leader takes it", async () => {
    let changes = 0;
    const s = setup(['w-1'], { onChange: () => changes++ });
    const body = JSON.stringify({ lora_name: 'sql', lora_path: '/adapters/sql' });
    const r = await s.adapters.commanded({ op: 'adapter', kind: 'load', name: 'sql', body, headers: {} });
    expect(r).toEqual({
      ok: true,
      answer: {
        worker: 'w-1',
        status: 200,
        headers: { 'content-type': 'text/plain' },
        body: expect.stringContaining('added'),
      },
    });
    expect(changes).toBe(1);
    const shared = s.adapters.shared()!;
    expect(shared).toEqual([{ name: 'sql', loaded: true, body, path: '/adapters/sql', headers: {} }]);
    // An engine's refusal is an answer to carry back; a failure of the gateway's is the catalogue's error.
    const nowhere = JSON.stringify({ lora_name: 'x', lora_path: '/nowhere' });
    const refused = await s.adapters.commanded({ op: 'adapter', kind: 'load', name: 'x', body: nowhere, headers: {} });
    expect(refused).toMatchObject({ ok: true, answer: { status: 400, body: 'no adapter at /nowhere' } });
    const empty = await setup([]).adapters.commanded({
      op: 'adapter',
      kind: 'load',
      name: 'x',
      body: nowhere,
      headers: {},
    });
    expect(empty).toMatchObject({ ok: false, code: 'no_workers' });
    // Another replica comes to lead with what this one shared: its workers are brought to it.
    const next = setup(['w-2']);
    next.adapters.restore(shared);
    expect(await next.probe('w-2')).toBe(true);
    expect([...next.engine('w-2').adapters.keys()]).toEqual(['sql']);
  });

  it('a load the ledger has no room for is refused before any worker sees it', async () => {
    const s = setup(['w-1']);
    const path = '/adapters/' + 'p'.repeat(8000);
    let loaded = 0;
    for (; loaded < 100; loaded++) {
      const r = await s.change('load', { lora_name: `a-${loaded}`, lora_path: path }).catch((e: unknown) => e);
      if (r instanceof GatewayError) {
        expect(r.code).toBe('bad_request');
        expect(r.message).toMatch(/would take their record past 512 KiB\. Unload some first\./);
        break;
      }
    }
    expect(loaded).toBeGreaterThan(20);
    expect(loaded).toBeLessThan(100);
    expect(s.engine('w-1').adapters.size).toBe(loaded);
    expect(JSON.stringify(s.adapters.shared()).length).toBeLessThanOrEqual(MAX_SHARED_ADAPTER_BYTES);
  });
});
