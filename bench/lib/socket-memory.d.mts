// Types of socket-memory.mjs, for the benches written in TypeScript.
export interface TcpSocket {
  localPort: number;
  peerPort: number;
  rmem: number;
  wmem: number;
}
export interface ProxySocketMemory {
  proxyToClients: number;
  clients: number;
  proxyToUpstreams: number;
  upstreams: number;
}
export function tcpSockets(): TcpSocket[];
export function proxySocketMemory(listen: readonly number[], upstream: readonly number[]): ProxySocketMemory;
