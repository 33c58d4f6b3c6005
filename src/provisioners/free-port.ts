import { createServer } from 'node:net';

/**
 * A port that was free a moment ago: bind port 0 on `host`, read the port the kernel
 * chose, close. Another process may take it before the worker binds it; the fleet's
 * readiness probe catches that worker and replaces it.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not find a free port'))));
    });
  });
}
