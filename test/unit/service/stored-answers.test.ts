import { describe, expect, it } from 'vitest';
import { Cancellation } from '../../../src/core/cancellation.js';
import { VirtualClock } from '../../../src/core/clock.js';
import { WorkerPool } from '../../../src/core/pool.js';
import { InferenceService } from '../../../src/service/inference.js';
import { BodyStream } from '../../../src/upstream/body-stream.js';
import type { Upstream } from '../../../src/upstream/types.js';
import { testAdmission } from '../../helpers/balancer.js';

const NO_CONTROL = { pause() {}, resume() {}, abort() {} };

/**
 * Two ready workers whose every answer to POST /v1/responses is a stored answer with a new id;
 * `send` says which worker each request reached, and what a request named.
 */
function setup() {
  const clock = new VirtualClock();
  const pool = new WorkerPool(clock);
  for (const name of ['w-1', 'w-2']) {
    pool.add(name, 4, 'provisioning');
    pool.setState(name, 'starting', 'test');
    pool.setState(name, 'ready', 'test');
  }
  const admission = testAdmission(pool, clock);
  const reached: string[] = [];
  let n = 0;
  const upstream: Upstream = {
    send: (_url, req) => {
      reached.push(req.worker ?? '');
      const body = new BodyStream(NO_CONTROL);
      const stores = req.method === 'POST' && req.path === '/v1/responses';
      setImmediate(() => {
        body.push(Buffer.from(JSON.stringify(stores ? { id: `resp_${++n}`, object: 'response' } : { ok: true })));
        body.finish();
      });
      return Promise.resolve({ status: 200, headers: { 'content-type': 'application/json' }, body });
    },
    forget: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  const gone: [string, string][] = [];
  const service = new InferenceService({
    admission,
    upstream,
    queueTimeoutMs: 1000,
    maxRetries: 0,
    clock,
    onHomeGone: (id, worker) => gone.push([id, worker]),
  });
  /** One request, its answer read to the end; the answer's JSON. */
  const ask = async (method: string, path: string, body?: object): Promise<{ id?: string }> => {
    const reply = await service.dispatch({
      method,
      path,
      headers: {},
      body: body === undefined ? undefined : Buffer.from(JSON.stringify(body)),
      signal: new Cancellation(),
    });
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve, reject) =>
      reply.body.read({ data: (c) => chunks.push(c), end: resolve, error: reject }).resume(),
    );
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: string };
  };
  return { pool, reached, gone, ask };
}

describe('InferenceService: requests that name a stored answer go to the worker that stored it', () => {
  it('later turns, retrievals and cancels reach the home; a home gone is said, and the request balanced', async () => {
    const { pool, reached, gone, ask } = setup();
    const first = await ask('POST', '/v1/responses', { input: 'hi' });
    const home = reached[0]!;
    let previous = first.id!;
    for (let turn = 0; turn < 8; turn++) {
      previous = (await ask('POST', '/v1/responses', { input: 'more', previous_response_id: previous })).id!;
    }
    await ask('GET', `/v1/responses/${previous}`);
    await ask('POST', `/v1/responses/${previous}/cancel`);
    // Without the pin, ten requests land at home by chance once in 1,024 runs (least-connection ties at random).
    expect(new Set(reached)).toEqual(new Set([home]));
    expect(gone).toEqual([]);

    pool.setState(home, 'draining', 'test');
    await ask('POST', '/v1/responses', { input: 'again', previous_response_id: previous });
    expect(reached.at(-1)).not.toBe(home);
    expect(gone).toEqual([[previous, home]]);
  });

  it('a request that names no stored answer is balanced, and tells nothing', async () => {
    const { reached, gone, ask } = setup();
    await ask('POST', '/v1/responses', { input: 'hi', previous_response_id: 'resp_unknown' });
    await ask('POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] });
    expect(reached).toHaveLength(2);
    expect(gone).toEqual([]);
  });
});
