import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpProber } from '../../../src/upstream/prober.js';

let server: Server;
let base: string;
const seen: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req.url ?? '');
    if (req.url === '/health') return void res.end('ok');
    if (req.url === '/sick') return void res.writeHead(503).end('loading');
    if (req.url === '/redirect') return void res.writeHead(302, { location: '/health' }).end();
    if (req.url === '/slow') return void setTimeout(() => res.end('late'), 2000);
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe('HttpProber', () => {
  it.each([
    ['/health', true],
    ['health', true],
    ['/sick', false],
    ['/redirect', false],
    ['/missing', false],
  ])('GET %s → %s', async (path, want) => {
    const p = new HttpProber({ path, timeoutMs: 1000 });
    expect(await p.probe(`${base}/`, new AbortController().signal)).toBe(want);
  });

  it('is false when nothing listens', async () => {
    const p = new HttpProber({ timeoutMs: 1000 });
    expect(await p.probe('http://127.0.0.1:1', new AbortController().signal)).toBe(false);
  });

  it('is false after its timeout, and at once when the caller aborts', async () => {
    const p = new HttpProber({ path: '/slow', timeoutMs: 100 });
    let t0 = performance.now();
    expect(await p.probe(base, new AbortController().signal)).toBe(false);
    expect(performance.now() - t0).toBeLessThan(1500);

    const slow = new HttpProber({ path: '/slow', timeoutMs: 10_000 });
    const ac = new AbortController();
    t0 = performance.now();
    const pending = slow.probe(base, ac.signal);
    setTimeout(() => ac.abort(), 50);
    expect(await pending).toBe(false);
    expect(performance.now() - t0).toBeLessThan(1500);
  });
});
