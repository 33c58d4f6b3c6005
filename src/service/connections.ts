import type { Server, Socket } from 'node:net';

export type Transport = 'http' | 'grpc';

/**
 * Why a client's request was cut: its head, a silent body, or the whole request was too slow
 * (a 408), or it took none of its answer for client_send_timeout (the answer cut).
 */
export type ClientTimeout = 'headers' | 'body' | 'request' | 'answer';

/**
 * The client side of both listeners, as counters the metrics read at collection time: open
 * connections, connections refused at the cap, requests cut for arriving too slowly.
 */
export class ClientConnectionStats {
  readonly open: Record<Transport, number> = { http: 0, grpc: 0 };
  readonly refused: Record<Transport, number> = { http: 0, grpc: 0 };
  readonly timeouts: Record<ClientTimeout, number> = { headers: 0, body: 0, request: 0, answer: 0 };
}

/**
 * Counts a listener's client connections and caps them at `max` (0: no cap). The cap is node's
 * net.Server.maxConnections: a connection beyond it is closed as soon as it is accepted, before
 * any byte of it is read or any object is made for it, and node tells of it with 'drop'.
 * Connections held by slow or idle clients are what the client timeouts free.
 */
export function limitConnections(
  server: Server,
  transport: Transport,
  max: number,
  stats: ClientConnectionStats,
): void {
  if (max > 0) server.maxConnections = max;
  server.on('drop', () => stats.refused[transport]++);
  server.on('connection', (socket: Socket) => {
    stats.open[transport]++;
    socket.once('close', () => stats.open[transport]--);
  });
}
