import { credentials, Metadata } from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NodeControlServiceClient, type ListWorkersResponse } from '../../src/gen/flockserve/v1/node_control.js';
import { ROOT, simTask } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('flockserve CLI, SIGTERM', () => {
  it('run as the bin: lets in-flight requests finish, then every worker process it started is gone', async () => {
    // The bin itself, as an installed `flockserve` runs: its shebang is what starts node.
    const gw = spawn(
      join(ROOT, 'dist/cli/flockserve.js'),
      [
        '--skypilot_task',
        simTask('--token-interval 10'),
        '--provisioner',
        'local',
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--grpc_port',
        '0',
        '--min_workers',
        '2',
        '--worker_probe_interval',
        '0.05',
        '--node_control_key',
        'k',
        '--verbosity',
        '0',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    gw.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(() => /listening on http:\/\/[^:]+:(\d+) \(HTTP\) and [^:]+:(\d+)/.test(out), 'the listening line');
      const [, httpPort, grpcPort] = /listening on http:\/\/[^:]+:(\d+) \(HTTP\) and [^:]+:(\d+)/.exec(out)!;
      const url = `http://127.0.0.1:${httpPort}`;
      // env exec'd node in its place, with the bin's young generation (the data path's GC setting).
      const argv = readFileSync(`/proc/${gw.pid}/cmdline`, 'utf8').split('\0');
      expect(argv[0]).toMatch(/node$/);
      expect(argv).toContain('--max-semi-space-size=64');
      expect(argv).toContain('--min-semi-space-size=64');
      await waitFor(
        async () => ((await (await fetch(url)).json()) as { ready_worker_count: number }).ready_worker_count === 2,
        'two ready workers',
      );

      const client = new NodeControlServiceClient(`127.0.0.1:${grpcPort}`, credentials.createInsecure());
      const md = new Metadata();
      md.set('authorization', 'Bearer k');
      const list = await new Promise<ListWorkersResponse>((res, rej) =>
        client.listWorkers({}, md, (err, r) => (err ? rej(err) : res(r!))),
      );
      client.close();
      const pids = list.workers.map((w) => Number(w.provisionerDetail['pid']));
      expect(pids).toHaveLength(2);
      expect(pids.every(alive)).toBe(true);

      // Two streams of 100 tokens at 10 ms: about a second each, still running when SIGTERM lands.
      const streams = [1, 2].map(() =>
        fetch(`${url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], max_tokens: 100, stream: true }),
        }).then(async (r) => ({ status: r.status, body: await r.text() })),
      );
      await waitFor(
        async () => ((await (await fetch(url)).json()) as { current_queue_length: number }).current_queue_length === 2,
        'both streams in flight',
      );
      const exited = once(gw, 'exit') as Promise<[number | null]>;
      gw.kill('SIGTERM');
      const done = await Promise.all(streams);
      for (const s of done) {
        expect(s.status).toBe(200);
        expect(s.body.trim().endsWith('data: [DONE]')).toBe(true);
        expect(s.body.match(/"content":"[^"]+"/g)).toHaveLength(100);
      }
      const [code] = await exited;
      expect(code).toBe(0);
      expect(pids.filter(alive)).toEqual([]);
    } finally {
      // A failed assertion must not leave the gateway (and the workers it started) running.
      if (gw.exitCode === null && gw.signalCode === null) gw.kill('SIGTERM');
    }
  });
});
