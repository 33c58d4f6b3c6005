import type { IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TestGateway } from '../../helpers/gateway.js';
import { CHAT_ANSWER, gatewayOver, startHttpWorker, type HttpWorker } from '../../helpers/http-worker.js';

// Browsers' cross-origin calls on the real listener, with cors_allow_origins set and not. The
// worker plays vLLM's CORS layer (allow any origin): it answers a request that names an Origin
// with `access-control-allow-origin: *`, so a test can see whether the gateway's list is the one
// that holds. It records the headers of the POSTs it received.

const APP = 'https://app.example.com';
const EVENT = `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 0, model: 'sim', choices: [{ index: 0, delta: { content: 'ok' }, finish_reason: null }] })}\n\n`;

const received: IncomingHttpHeaders[] = [];
let worker: HttpWorker;
let t: TestGateway | undefined;

beforeAll(async () => {
  worker = await startHttpWorker((req, res, body) => {
    // The gateway's readiness probes (GET) are not what the tests look at.
    if (req.method === 'POST') received.push(req.headers);
    const cors: Record<string, string> = req.headers.origin ? { 'access-control-allow-origin': '*' } : {};
    if (req.method !== 'POST') return void res.writeHead(200, cors).end('{"data":[]}');
    if ((JSON.parse(body.toString()) as { stream?: boolean }).stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream', ...cors });
      res.end(`${EVENT}data: [DONE]\n\n`);
    } else res.writeHead(200, { 'content-type': 'application/json', ...cors }).end(CHAT_ANSWER);
  });
});

afterAll(async () => {
  await t?.close();
  await worker?.close();
});

beforeEach(() => {
  received.length = 0;
});

const gateway = async (corsAllowOrigins: string[]): Promise<TestGateway> => {
  await t?.close();
  t = await gatewayOver(worker, { corsAllowOrigins });
  return t;
};

const chat = (url: string, headers: Record<string, string>, stream = false): Promise<Response> =>
  fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'hi' }], stream }),
  });

const preflight = (url: string, origin: string, path = '/v1/chat/completions'): Promise<Response> =>
  fetch(`${url}${path}`, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization, content-type, x-stainless-os',
    },
  });

describe('cors_allow_origins set to one origin', () => {
  beforeAll(async () => {
    await gateway([APP]);
  });

  it("answers a listed origin's preflight itself, allowing what the page asks for", async () => {
    const res = await preflight(t!.url, APP);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(APP);
    expect(res.headers.get('access-control-allow-methods')).toBe('GET, POST, OPTIONS');
    expect(res.headers.get('access-control-allow-headers')).toBe('authorization, content-type, x-stainless-os');
    expect(res.headers.get('access-control-max-age')).toBe('600');
    expect(res.headers.get('vary')).toBe('Origin, Access-Control-Request-Headers');
    expect(received).toHaveLength(0);
  });

  it('refuses the preflight of an origin it does not list, with a 403 and no allowance', async () => {
    const res = await preflight(t!.url, 'https://evil.example');
    expect(res.status).toBe(403);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(((await res.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'origin_not_allowed',
      message: 'Origin https://evil.example may not call this gateway (cors_allow_origins).',
    });
  });

  it("marks a listed origin's answers, whole and streamed, and the worker's own CORS layer never sees the origin", async () => {
    for (const stream of [false, true]) {
      const res = await chat(t!.url, { origin: APP }, stream);
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe(APP);
      expect(res.headers.get('access-control-expose-headers')).toBe('x-request-id, retry-after');
      expect(res.headers.get('vary')).toBe('Origin');
      expect(await res.text()).toContain('ok');
    }
    expect(received).toHaveLength(2);
    expect(received.every((h) => h.origin === undefined)).toBe(true);
  });

  it("marks the gateway's own answers too: its errors and its routes", async () => {
    const bad = await fetch(`${t!.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { origin: APP, 'content-type': 'application/json' },
      body: '{',
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('access-control-allow-origin')).toBe(APP);
    const health = await fetch(`${t!.url}/health`, { headers: { origin: APP } });
    expect(health.status).toBe(200);
    expect(health.headers.get('access-control-allow-origin')).toBe(APP);
    const models = await fetch(`${t!.url}/v1/models`, { headers: { origin: APP } });
    expect(models.status).toBe(200);
    expect(models.headers.get('access-control-allow-origin')).toBe(APP);
  });

  it('serves an unlisted origin (a browser enforces CORS, not the server) without allowing it', async () => {
    const res = await chat(t!.url, { origin: 'https://evil.example' });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(received[0]!.origin).toBeUndefined();
  });
});

describe('cors_allow_origins *', () => {
  it('allows any origin with *, and the answers do not vary by origin', async () => {
    await gateway(['*']);
    const pre = await preflight(t!.url, 'https://any.example', '/v1/completions');
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    const res = await chat(t!.url, { origin: 'https://any.example' });
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('vary')).toBeNull();
  });
});

describe('cors_allow_origins empty (the default)', () => {
  it('answers no preflight and adds nothing: the request is forwarded as it came', async () => {
    await gateway([]);
    const pre = await preflight(t!.url, APP);
    expect(pre.status).toBe(405);
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    const res = await chat(t!.url, { origin: APP });
    expect(res.status).toBe(200);
    // The engine's own CORS layer answers, as without a gateway in front.
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(received[0]!.origin).toBe(APP);
  });
});
