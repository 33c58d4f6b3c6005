import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { SseWriter } from '../../../src/sim/sse-writer.js';

describe('SseWriter backpressure', () => {
  it('stops writing to a socket that is not draining, then delivers everything in order after drain', async () => {
    const EVENTS = 2000;
    const payload = 'x'.repeat(1024);
    let writableAtBlock = -1;
    let writableAfterMore = -1;
    let blockedSeen = false;
    const server = createServer((_req, res) => {
      const sse = new SseWriter(res);
      for (let i = 0; i < EVENTS; i++) {
        sse.event({ i, payload });
        if (sse.blocked && !blockedSeen) {
          blockedSeen = true;
          writableAtBlock = res.writableLength;
        }
      }
      writableAfterMore = res.writableLength;
      sse.event('[DONE]');
      sse.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    try {
      const text = await new Promise<string>((resolve, reject) => {
        const req = request({ port, host: '127.0.0.1', method: 'GET' }, (res) => {
          res.pause();
          setTimeout(() => {
            let all = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (all += c));
            res.on('end', () => resolve(all));
            res.resume();
          }, 100);
        });
        req.on('error', reject);
        req.end();
      });
      // ~2 MB of events written in one go: the socket must have pushed back...
      expect(blockedSeen).toBe(true);
      // ...and nothing more went into the socket's buffer after that point.
      expect(writableAfterMore).toBe(writableAtBlock);
      const data = text
        .split('\n\n')
        .filter((e) => e.startsWith('data: '))
        .map((e) => e.slice(6));
      expect(data.at(-1)).toBe('[DONE]');
      expect(data.slice(0, -1).map((d) => (JSON.parse(d) as { i: number }).i)).toEqual(
        Array.from({ length: EVENTS }, (_, i) => i),
      );
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
