/**
 * Kernel memory of established TCP sockets on this host, from `ss -tnm` (iproute2): per socket
 * the memory the kernel has charged for its receive and send queues (skmem r and w, the bytes
 * queued with their buffer overhead). A stalled client leaves bytes in
 * these queues instead of in a process's RSS, so a benchmark of stalled streams reads both.
 */
import { execFileSync } from 'node:child_process';

/** Every established TCP socket: local and peer port, and the memory charged to its queues. */
export function tcpSockets() {
  const text = execFileSync('ss', ['-tnmH', 'state', 'established'], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const lines = text.split('\n');
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    const head = lines[i].trim().split(/\s+/);
    if (head.length < 4 || !/^\d+$/.test(head[0])) continue;
    const mem = /skmem:\(r(\d+),rb\d+,t\d+,tb\d+,f\d+,w(\d+)/.exec(lines[i + 1] ?? '');
    out.push({
      localPort: port(head[2]),
      peerPort: port(head[3]),
      rmem: mem ? Number(mem[1]) : 0,
      wmem: mem ? Number(mem[2]) : 0,
    });
  }
  return out;
}

const port = (address) => Number(address.slice(address.lastIndexOf(':') + 1));

/**
 * The kernel memory a proxy's traffic holds, split by side: its sockets to clients (`listen`
 * ports, local side), the clients' sockets to it, its sockets to upstreams (`upstream` ports,
 * peer side) and the upstreams' sockets to it. Each side: charged memory (receive + send) in bytes.
 */
export function proxySocketMemory(listen, upstream) {
  const all = tcpSockets();
  const charged = (ss) => ss.reduce((n, s) => n + s.rmem + s.wmem, 0);
  return {
    proxyToClients: charged(all.filter((s) => listen.includes(s.localPort))),
    clients: charged(all.filter((s) => listen.includes(s.peerPort))),
    proxyToUpstreams: charged(all.filter((s) => upstream.includes(s.peerPort))),
    upstreams: charged(all.filter((s) => upstream.includes(s.localPort))),
  };
}
