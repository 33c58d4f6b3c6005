import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cancellation } from '../../../src/core/cancellation.js';
import { GatewayError } from '../../../src/core/errors.js';
import { PRIORITY_HEADER, REQUEST_ID_HEADER, STREAM_HEADER } from '../../../src/routes/table.js';
import { startEngineSimulator, type EngineSimulator } from '../../../src/sim/server.js';
import { forwardableHeaders, forwardableRawHeaders, unsendable, UpstreamClient } from '../../../src/upstream/client.js';

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
      expect(headers).toEqual({ 'x-ok': 'yes', 'accept-encoding': 'identity' });
      const res = await up.send(sim.url, { ...models, headers });
      expect(res.status).toBe(200);
      res.body.discard();
    }
    await up.close();
  });
});

describe("forwardableHeaders: a worker's request", () => {
  it("keeps the end-to-end headers, drops the gateway's own switches, and asks for the answer uncompressed", () => {
    expect(
      forwardableHeaders({
        Authorization: 'Bearer k',
        [STREAM_HEADER]: '1',
        [PRIORITY_HEADER]: '3',
        [REQUEST_ID_HEADER]: 'r1',
        'accept-encoding': 'gzip, br',
        connection: 'keep-alive',
        'x-multi': ['a', 'b'],
      }),
    ).toEqual({
      authorization: 'Bearer k',
      [REQUEST_ID_HEADER]: 'r1',
      'x-multi': 'a, b',
      'accept-encoding': 'identity',
    });
  });
});

describe("forwardableRawHeaders: an answer's raw headers as the client gets them", () => {
  const raw = (...pairs: string[]): Buffer[] => pairs.map((p) => Buffer.from(p, 'latin1'));
  it.each([
    [
      'names lower-cased',
      raw('Content-Type', 'application/json', 'X-Request-Id', 'r1'),
      { 'content-type': 'application/json', 'x-request-id': 'r1' },
    ],
    [
      'hop-by-hop left out',
      raw(
        'Connection',
        'keep-alive',
        'Keep-Alive',
        'timeout=5',
        'Transfer-Encoding',
        'chunked',
        'Content-Length',
        '2',
        'x-a',
        '1',
      ),
      { 'x-a': '1' },
    ],
    [
      'a repeated header joined',
      raw('Set-Cookie', 'a=1', 'x-b', '2', 'set-cookie', 'b=2'),
      { 'set-cookie': 'a=1, b=2', 'x-b': '2' },
    ],
    ['obs-text kept byte for byte', raw('x-a', 'caf\u00e9'), { 'x-a': 'caf\u00e9' }],
    [
      'a name like an Object member is an ordinary header',
      raw('constructor', 'c', 'toString', 't'),
      { constructor: 'c', tostring: 't' },
    ],
    ['__proto__ changes nothing', raw('__proto__', 'x', 'x-a', '1'), { 'x-a': '1' }],
  ])('%s', (_what, headers, want) => {
    const got = forwardableRawHeaders(headers);
    expect({ ...got }).toEqual(want);
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
  });

  it('as UpstreamClient.send reads them from a worker, with a body its reader pauses and resumes', async () => {
    const server: Server = createServer((_req, res) => {
      res.setHeader('Set-Cookie', ['a=1', 'b=2']);
      res.setHeader('X-Engine', 'light');
      res.writeHead(200, { 'content-type': 'application/json' });
      // More than the body's high-water mark, so its feeder is paused and resumed on the way.
      res.end(JSON.stringify({ pad: 'x'.repeat(64 * 1024) }));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const up = new UpstreamClient({ connections: 1 });
    try {
      const res = await up.send(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, {
        ...models,
        headers: {},
      });
      expect(res.headers).toMatchObject({
        'set-cookie': 'a=1, b=2',
        'x-engine': 'light',
        'content-type': 'application/json',
      });
      expect(res.headers).not.toHaveProperty('connection');
      // The reader pauses at each chunk and goes on a turn of the event loop later: the socket
      // is paused (onData answers false) and resumed each time, and the body arrives whole.
      const chunks: Buffer[] = [];
      let pauses = 0;
      await new Promise<void>((resolve, reject) =>
        res.body
          .read({
            data: (c) => {
              chunks.push(c);
              pauses++;
              res.body.pause();
              setImmediate(() => res.body.resume());
            },
            end: resolve,
            error: reject,
          })
          .resume(),
      );
      expect(pauses).toBeGreaterThan(1);
      expect((JSON.parse(Buffer.concat(chunks).toString()) as { pad: string }).pad.length).toBe(64 * 1024);
    } finally {
      await up.close();
      server.close();
    }
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
