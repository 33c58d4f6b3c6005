import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { FlockServeOptions } from '../../src/index.js';
import { startGateway, type TestGateway } from './gateway.js';

/** A whole chat completion, as a worker answers one. */
export const CHAT_ANSWER = JSON.stringify({
  id: 'c1',
  object: 'chat.completion',
  created: 0,
  model: 'sim',
  choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
});

export interface HttpWorker {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * A worker a test writes itself: node:http on loopback, for a gateway with `provisioner:
 * 'static'` in front of it. `handler` gets each request once its whole body is read. close()
 * cuts its connections and waits for the server.
 */
export async function startHttpWorker(
  handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void,
): Promise<HttpWorker> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, res, Buffer.concat(chunks)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A gateway whose one worker is `worker` (the static provisioner), with `options` besides. */
export function gatewayOver(worker: HttpWorker, options: Partial<FlockServeOptions> = {}): Promise<TestGateway> {
  return startGateway({ provisioner: 'static', workers: [worker.url], minWorkers: 1, maxWorkers: 1, ...options });
}
