import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cancellation } from '../../../src/core/cancellation.js';
import { GatewayError } from '../../../src/core/errors.js';
import { startEngineSimulator, type EngineSimulator } from '../../../src/sim/server.js';
import { forwardableHeaders, unsendable, UpstreamClient } from '../../../src/upstream/client.js';

let sim: EngineSimulator;
let hanging: EngineSimulator;
beforeAll(async () => {
  sim = await startEngineSimulator({});
  hanging = await startEngineSimulator({ hang: 'all' });
});
afterAll(async () => {
  await sim.close();
  await hanging.close();
});

const models = { method: 'GET', path: '/v1/models', headers: {} };

describe('UpstreamClient', () => {
  it('a request aborted while undici still queues it ends at once, and never starts', async () => {
    const up = new UpstreamClient({ connections: 1 });
    const first = new Cancellation();
    const running = up.send(hanging.url, { ...models, signal: first }).catch((e: unknown) => e);
    const queued = new Cancellation();
    const waiting = up.send(hanging.url, { ...models, signal: queued }).catch((e: unknown) => e);
    const reason = new GatewayError('deadline_exceeded');
    queued.abort(reason); // the only connection is busy: undici has not started it
    expect(await waiting).toBe(reason);
    first.abort(new GatewayError('client_closed'));
    expect(await running).toMatchObject({ code: 'client_closed' });
    await up.close();
  });

  it('an Expect: 100-continue from a client is not sent on (undici refuses it, and its connection stays busy)', async () => {
    const up = new UpstreamClient({ connections: 2 });
    for (let i = 0; i < 5; i++) {
      const headers = forwardableHeaders({ expect: '100-continue', 'x-ok': 'yes' });
      expect(headers).toEqual({ 'x-ok': 'yes' });
      const res = await up.send(sim.url, { ...models, headers });
      expect(res.status).toBe(200);
      res.body.discard();
    }
    await up.close();
  });
});

describe('unsendable: what undici would refuse, caught before it does', () => {
  it.each([
    ['GET', '/v1/models', {}, undefined],
    ['M-SEARCH', '/x?a=é', { 'x-a': 'tab\tand obs-text é' }, undefined],
    ['BAD METHOD', '/x', {}, /not an HTTP method/],
    ['CONNECT', '/x', {}, /CONNECT/],
    ['GET', 'x', {}, /not a request path/],
    ['GET', '/a b', {}, /not a request path/],
    ['GET', '/x', { 'q[^KZ': 'v' }, /header name/],
    ['GET', '/x', { 'x-a': 'line\nbreak' }, /header x-a/],
    ['GET', '/x', { 'x-a': 'nul\u0000' }, /header x-a/],
  ])('%s %s %j → %s', (method, path, headers, why) => {
    const got = unsendable(method, path, headers as Record<string, string>);
    if (why === undefined) expect(got).toBeUndefined();
    else expect(got).toMatch(why);
  });
});
