import { connectivityState, credentials, Metadata } from '@grpc/grpc-js';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthClient } from '../../../src/gen/grpc/health/v1/health.js';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { unary } from '../../helpers/grpc.js';
import { waitFor } from '../../helpers/wait.js';
import { parsePrometheusText, type Exposition } from '../../helpers/prometheus-text.js';

// The client limits on the real listeners, with small values: every assertion waits for an
// event (an answer, a socket's close, a channel's state change), never for time to pass. A
// limit's lower bound is asserted too (nothing is cut before its time); its upper bound is the
// test's timeout.

const LIMITS = {
  clientHeaderTimeout: 0.3,
  clientBodyTimeout: 0.2,
  clientRequestTimeout: 1.2,
  keepaliveTimeout: 0.3,
  maxConnections: 6,
};

let t: TestGateway;
let port: number;
let grpcPort: number;

/** One gateway for the tests of a describe block, with one simulator worker. */
function gatewayWith(options: Parameters<typeof startGateway>[0]): void {
  beforeAll(async () => {
    t = await startGateway({ minWorkers: 1, maxWorkers: 1, ...options });
    port = Number(new URL(t.url).port);
    grpcPort = Number(t.grpcAddress.split(':')[1]);
  });
  afterAll(() => t?.close());
}

/** A raw TCP client: what it received, and a promise of its close with the time it came. */
interface Raw {
  readonly socket: Socket;
  received(): string;
  readonly closed: Promise<number>;
}

async function raw(to = port): Promise<Raw> {
  const socket = connect(to, '127.0.0.1');
  let data = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (data += d));
  socket.on('error', () => {});
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
  await new Promise((resolve) => socket.once('connect', resolve));
  return { socket, received: () => data, closed };
}

const HEAD = 'POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n';
const BODY = JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 });

/** Status line and parsed JSON body of the one HTTP answer in `text`. */
function answerOf(text: string): { status: number; body: { error?: { message: string; code: string } } } {
  const [head, body] = text.split('\r\n\r\n', 2);
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head ?? '')?.[1]), body: JSON.parse(body ?? 'null') };
}

/** The gateway's metrics, asked for on a connection of their own that closes after the answer. */
async function metrics(): Promise<Exposition> {
  return parsePrometheusText(await getOn(await raw(), '/metrics'));
}

/** GET `path` on a raw connection (which then closes): the body of the answer, chunked or not. */
async function getOn(c: Raw, path: string): Promise<string> {
  c.socket.write(`GET ${path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`);
  await c.closed;
  const text = c.received();
  const split = text.indexOf('\r\n\r\n');
  const head = text.slice(0, split);
  let body = text.slice(split + 4);
  if (/transfer-encoding: chunked/i.test(head)) {
    let out = '';
    for (;;) {
      const eol = body.indexOf('\r\n');
      const size = parseInt(body.slice(0, eol), 16);
      if (!size) break;
      out += body.slice(eol + 2, eol + 2 + size);
      body = body.slice(eol + 2 + size + 2);
    }
    body = out;
  }
  return body;
}

describe('HTTP: a client that sends too slowly is answered 408 and its connection closed', () => {
  gatewayWith(LIMITS);

  it.each([
    {
      what: 'a head that stops half way',
      send: [`${HEAD}Content-Len`],
      notBeforeMs: LIMITS.clientHeaderTimeout * 1000,
      names: 'client_header_timeout',
      late: 'headers',
    },
    {
      what: 'a body that stops after 10 bytes',
      send: [`${HEAD}Content-Length: ${BODY.length}\r\n\r\n${BODY.slice(0, 10)}`],
      notBeforeMs: LIMITS.clientBodyTimeout * 1000,
      names: 'client_body_timeout',
      late: 'body',
    },
    {
      what: 'a body sent one byte every 50 ms (never silent for long, too slow in all)',
      send: [`${HEAD}Content-Length: ${BODY.length}\r\n\r\n`, ...BODY.split('')],
      notBeforeMs: LIMITS.clientRequestTimeout * 1000,
      names: 'client_request_timeout',
      late: 'request',
    },
  ])('$what: 408 naming $names, then the connection closes', async ({ send, notBeforeMs, names, late }) => {
    const before = (await metrics()).value('flockserve_client_timeouts_total', { late }) ?? 0;
    const c = await raw();
    const start = performance.now();
    let stop = false;
    void c.closed.then(() => (stop = true));
    for (const piece of send) {
      if (stop) break;
      c.socket.write(piece);
      if (send.length > 1) await new Promise((r) => setTimeout(r, 50));
    }
    const closedAt = await c.closed;
    expect(closedAt - start).toBeGreaterThanOrEqual(notBeforeMs);
    const { status, body } = answerOf(c.received());
    expect(status).toBe(408);
    expect(body.error?.code).toBe('client_timeout');
    expect(body.error?.message).toContain(names);
    expect((await metrics()).value('flockserve_client_timeouts_total', { late })).toBe(before + 1);
  });

  it('a body sent in pieces 50 ms apart, each well within the body timeout, is served', async () => {
    const c = await raw();
    c.socket.write(`${HEAD}Content-Length: ${BODY.length}\r\nConnection: close\r\n\r\n`);
    for (const piece of [BODY.slice(0, 20), BODY.slice(20, 40), BODY.slice(40)]) {
      await new Promise((r) => setTimeout(r, 50));
      c.socket.write(piece);
    }
    await c.closed;
    expect(c.received()).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('a request on a forwarded route (fastify reads its body) is cut the same way', async () => {
    const c = await raw();
    c.socket.write(
      'POST /tokenize HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"a"',
    );
    await c.closed;
    const { status, body } = answerOf(c.received());
    expect(status).toBe(408);
    expect(body.error?.message).toContain('client_body_timeout');
  });
});

describe('HTTP: a client that closes its side mid-request', () => {
  gatewayWith(LIMITS);

  it.each([
    { what: 'half a head, then the end of its stream', send: `${HEAD}Content-Len`, end: true, answer: '' },
    {
      what: 'a head and half a body, then the end of its stream',
      send: `${HEAD}Content-Length: ${BODY.length}\r\n\r\n${BODY.slice(0, 10)}`,
      end: true,
      answer: '',
    },
    {
      what: 'bytes that are not HTTP, the stream left open',
      send: 'NOT HTTP AT ALL\r\n\r\n',
      end: false,
      answer: '400',
    },
  ])('$what: answered "$answer", then the connection closes', async ({ send, end, answer }) => {
    const c = await raw();
    if (end) c.socket.end(send);
    else c.socket.write(send);
    await c.closed;
    expect(c.received() === '' ? '' : String(answerOf(c.received()).status)).toBe(answer);
  });
});

describe('idle connections', () => {
  gatewayWith(LIMITS);

  it('HTTP: a keep-alive connection left idle after its answer is closed after keepalive_timeout', async () => {
    const c = await raw();
    c.socket.write(`${HEAD}Content-Length: ${BODY.length}\r\n\r\n${BODY}`);
    // The answer is complete once its JSON body closes (content-length framing).
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (/\r\n\r\n\{.*\}$/s.test(c.received())) {
          c.socket.off('data', check);
          resolve();
        }
      };
      c.socket.on('data', check);
    });
    const answeredAt = performance.now();
    const closedAt = await c.closed;
    expect(c.received()).toMatch(/^HTTP\/1\.1 200 /);
    expect(closedAt - answeredAt).toBeGreaterThanOrEqual(LIMITS.keepaliveTimeout * 1000 - 20);
  });

  it('gRPC: a channel left idle after a call gets a GOAWAY after keepalive_timeout (READY → IDLE)', async () => {
    const client = new HealthClient(t.grpcAddress, credentials.createInsecure());
    await unary(client.check.bind(client), { service: '' }, new Metadata());
    const channel = client.getChannel();
    expect(channel.getConnectivityState(false)).toBe(connectivityState.READY);
    const readyAt = performance.now();
    await new Promise<void>((resolve, reject) =>
      channel.watchConnectivityState(connectivityState.READY, Date.now() + 10_000, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    expect(channel.getConnectivityState(false)).toBe(connectivityState.IDLE);
    expect(performance.now() - readyAt).toBeGreaterThanOrEqual(LIMITS.keepaliveTimeout * 1000 - 50);
    client.close();
  });
});

describe('the connection cap (max_connections 6, default timeouts)', () => {
  const MAX = 6;
  gatewayWith({ maxConnections: MAX });

  it('HTTP: a 7th connection is closed at once and counted; the 6 open ones still serve', async () => {
    const refusedBefore = (await metrics()).value('flockserve_client_connections_refused_total', { transport: 'http' });
    await waitForOpen('http', 0);
    const held = await Promise.all(Array.from({ length: MAX }, () => raw()));
    const extra = await raw();
    await extra.closed;
    expect(extra.received()).toBe('');
    // The metrics, asked for on one of the 6.
    const m = parsePrometheusText(await getOn(held[0]!, '/metrics'));
    expect(m.value('flockserve_client_connections_refused_total', { transport: 'http' })).toBe(
      (refusedBefore ?? 0) + 1,
    );
    expect(m.value('flockserve_client_connections', { transport: 'http' })).toBe(MAX);
    for (const h of held) h.socket.destroy();
    await Promise.all(held.map((h) => h.closed));
  });

  it('gRPC: a 7th connection is closed at once and counted; once some close, calls go through', async () => {
    const before = (await metrics()).value('flockserve_client_connections_refused_total', { transport: 'grpc' }) ?? 0;
    await waitForOpen('grpc', 0);
    const held = await Promise.all(Array.from({ length: MAX }, () => raw(grpcPort)));
    const extra = await raw(grpcPort);
    await extra.closed;
    const after = await metrics();
    expect(after.value('flockserve_client_connections_refused_total', { transport: 'grpc' })).toBe(before + 1);
    expect(after.value('flockserve_client_connections', { transport: 'grpc' })).toBe(MAX);
    for (const h of held) h.socket.destroy();
    await Promise.all(held.map((h) => h.closed));
    const client = new HealthClient(t.grpcAddress, credentials.createInsecure());
    expect(await unary(client.check.bind(client), { service: '' }, new Metadata())).toMatchObject({ status: 1 });
    client.close();
  });
});

/**
 * Waits until the listener counts `n` open connections besides the one asking: the server side
 * of a connection the client saw close may close a moment later (the kernel's to deliver).
 */
async function waitForOpen(transport: 'http' | 'grpc', n: number): Promise<void> {
  const extra = transport === 'http' ? 1 : 0;
  await waitFor(
    async () => (await metrics()).value('flockserve_client_connections', { transport }) === n + extra,
    `${n} open ${transport} connections`,
  );
}
