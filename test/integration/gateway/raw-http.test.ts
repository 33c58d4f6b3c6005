import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { waitFor } from '../../helpers/wait.js';

// HTTP as clients and proxies write it on the wire, past what fetch sends: requests pipelined on
// one connection, the second of them not HTTP (garbage, or a head over the limit), which node's
// parser fails on while the first, read whole, is still being answered; absolute-form targets;
// methods fastify does not route.

let t: TestGateway;

beforeAll(async () => {
  t = await startGateway({ minWorkers: 1, maxWorkers: 1, maxHeaderSize: 1024 });
});
afterAll(() => t?.close());

/** Writes `bytes` at once on a new connection and reads until the gateway closes it. */
function exchange(bytes: string): Promise<string> {
  const { port } = new URL(t.url);
  return new Promise((resolve, reject) => {
    let got = '';
    const s = connect(Number(port), '127.0.0.1', () => s.write(bytes));
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('close', () => resolve(got));
    s.on('error', reject);
  });
}

const chat = (stream: boolean): string => {
  const body = JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, stream });
  return `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
};

describe('a request that is not HTTP, pipelined after a valid one', () => {
  it.each([
    ['a streamed chat, then garbage', chat(true), 'X\r\n\r\n', 400, 'data: [DONE]'],
    ['a whole chat, then garbage', chat(false), 'X\r\n\r\n', 400, '"chat.completion"'],
    [
      'a streamed chat, then a head over the limit',
      chat(true),
      `GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(2000)}\r\n\r\n`,
      431,
      'data: [DONE]',
    ],
  ])(
    '%s: the first gets its answer, the second its error after it, no slot is kept',
    async (_, first, second, status, answered) => {
      const got = await exchange(first + second);
      const statuses = [...got.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
      expect(statuses).toEqual([200, status]);
      expect(got.indexOf(answered)).toBeGreaterThan(0);
      expect(got.indexOf(answered)).toBeLessThan(got.lastIndexOf('HTTP/1.1 '));
      await waitFor(() => t.gw.workers().every((w) => w.inFlight === 0), 'every worker slot given back');
    },
  );
});

describe('request targets and methods', () => {
  it('an absolute-form target (as a proxy sends it) is served as its path', async () => {
    const got = await exchange(
      chat(false).replace('POST /v1/', `POST ${t.url}/v1/`).replace('Host: x', 'Host: x\r\nConnection: close'),
    );
    expect(got).toMatch(/^HTTP\/1\.1 200 /);
    expect(got).toContain('"chat.completion"');
  });

  it.each(['PROPFIND', 'PURGE', 'LOCK'])('%s on an inference route is a 405 that allows POST', async (method) => {
    const got = await exchange(`${method} /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(got).toMatch(/^HTTP\/1\.1 405 /);
    expect(got.toLowerCase()).toContain('allow: post');
    expect(got).toContain('"method_not_allowed"');
  });
});

describe('Expect: 100-continue', () => {
  it('a body declared past the limit is refused before the client sends it; one within is invited', async () => {
    const big = await exchange(
      'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 999999999\r\nConnection: close\r\n\r\n',
    );
    expect(big).not.toContain('100 Continue');
    expect(big).toMatch(/^HTTP\/1\.1 413 /);
    const small = await exchange(
      chat(false).replace('Host: x', 'Host: x\r\nExpect: 100-continue\r\nConnection: close'),
    );
    expect(small).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
  });
});
