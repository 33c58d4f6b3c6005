import type { IncomingHttpHeaders } from 'node:http';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TestGateway } from '../../helpers/gateway.js';
import { CHAT_ANSWER, gatewayOver, startHttpWorker, type HttpWorker } from '../../helpers/http-worker.js';

// Compressed request bodies (and a byte order mark) on the real listener: an inference route's body is decoded (within
// max_body_size, counted decoded) and reaches the worker plain, without the Content-Encoding it
// came with; a coding the gateway cannot decode is refused before any worker sees it. The worker
// records what it received, and compresses its answer when asked to, as a server may.

const MAX_BODY = 64 * 1024;

const received: { headers: IncomingHttpHeaders; body: Buffer }[] = [];
let worker: HttpWorker;
let t: TestGateway;

beforeAll(async () => {
  worker = await startHttpWorker((req, res, body) => {
    if (req.method !== 'POST') return void res.end('ok');
    received.push({ headers: req.headers, body });
    // As a server that compresses whatever its client accepts (an engine behind nginx's gzip).
    if (/\bgzip\b/.test(req.headers['accept-encoding'] ?? ''))
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipSync(CHAT_ANSWER));
    else res.writeHead(200, { 'content-type': 'application/json' }).end(CHAT_ANSWER);
  });
  t = await gatewayOver(worker, { maxBodySize: MAX_BODY });
});

afterAll(async () => {
  await t?.close();
  await worker?.close();
});

beforeEach(() => {
  received.length = 0;
});

const chat = Buffer.from(JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'hello '.repeat(100) }] }));

const post = (path: string, body: Buffer, encoding: string, accept = 'identity'): Promise<Response> =>
  fetch(`${t.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-encoding': encoding, 'accept-encoding': accept },
    body,
  });

const errorOf = async (res: Response): Promise<{ code: string; message: string }> =>
  ((await res.json()) as { error: { code: string; message: string } }).error;

describe('compressed request bodies', () => {
  it.each([
    ['gzip', gzipSync(chat)],
    ['br', brotliCompressSync(chat)],
    ['gzip, br', brotliCompressSync(gzipSync(chat))],
  ])('%s: the worker gets the plain body, its length, and no Content-Encoding', async (encoding, body) => {
    const res = await post('/v1/chat/completions', body, encoding);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(CHAT_ANSWER);
    expect(received).toHaveLength(1);
    expect(received[0]!.body.equals(chat)).toBe(true);
    expect(received[0]!.headers['content-encoding']).toBeUndefined();
    expect(received[0]!.headers['content-length']).toBe(String(chat.length));
  });

  it('a coding the gateway cannot decode is a 415, and no worker sees the request', async () => {
    const res = await post('/v1/chat/completions', chat, 'zstd');
    expect(res.status).toBe(415);
    expect(await errorOf(res)).toMatchObject({ code: 'unsupported_encoding' });
    expect(received).toHaveLength(0);
  });

  it('a body that is not the gzip it says is a 400', async () => {
    const res = await post('/v1/chat/completions', chat, 'gzip');
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({
      code: 'bad_request',
      message: 'The request body is not valid gzip, as its Content-Encoding says.',
    });
    expect(received).toHaveLength(0);
  });

  it('max_body_size holds the decoded size: a 2 KiB body that inflates to 2 MiB is a 413, and the gateway serves on', async () => {
    const huge = JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: ' '.repeat(2 << 20) }] });
    const bomb = gzipSync(huge);
    expect(bomb.length).toBeLessThan(MAX_BODY);
    const res = await post('/v1/chat/completions', bomb, 'gzip');
    expect(res.status).toBe(413);
    expect(await errorOf(res)).toMatchObject({ code: 'body_too_large' });
    expect(received).toHaveLength(0);
    expect((await post('/v1/chat/completions', chat, 'identity')).status).toBe(200);
    expect(received).toHaveLength(1);
  });

  it('a UTF-8 byte order mark before the JSON is read past, and the worker gets the body without it', async () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    for (const [encoding, body] of [
      ['identity', Buffer.concat([bom, chat])],
      ['gzip', gzipSync(Buffer.concat([bom, chat]))],
    ] as const) {
      const res = await post('/v1/chat/completions', body, encoding);
      expect(res.status).toBe(200);
    }
    expect(received).toHaveLength(2);
    expect(received.every((r) => r.body.equals(chat))).toBe(true);
  });

  it('a client that accepts gzip (as the OpenAI SDKs do) gets the answer: the worker is asked for it uncompressed', async () => {
    for (const path of ['/v1/chat/completions', '/tokenize']) {
      const res = await post(path, chat, 'identity', 'gzip, deflate, br');
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(CHAT_ANSWER);
    }
    expect(received.map((r) => r.headers['accept-encoding'])).toEqual(['identity', 'identity']);
  });

  it("an engine's own route is forwarded as it came, compressed, for the engine to read", async () => {
    const body = gzipSync('{"prompt":"hi"}');
    const res = await post('/tokenize', body, 'gzip');
    expect(res.status).toBe(200);
    expect(received[0]!.body.equals(body)).toBe(true);
    expect(received[0]!.headers['content-encoding']).toBe('gzip');
  });
});

describe('the stream header, on a body whose numbers JSON.parse would change', () => {
  it('the worker gets the bytes as sent, with "stream":true put first', async () => {
    const sent =
      '{"model":"sim","seed":18446744073709551615,"temperature":1.0,"messages":[{"role":"user","content":"hi"}]}';
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', stream: '1' },
      body: sent,
    });
    await res.arrayBuffer();
    expect(received).toHaveLength(1);
    expect(received[0]!.body.toString()).toBe(`{"stream":true,${sent.slice(1)}`);
  });
});
