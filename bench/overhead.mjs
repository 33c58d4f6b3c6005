#!/usr/bin/env node
// Gateway overhead: the same closed-loop load straight to one simulator worker, then
// through FlockServe (static provisioner over that same worker), in one run.
//   npm run build && node bench/overhead.mjs [--seconds 10] [--connections 64]
// Writes bench/results/overhead.md.
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { closedLoop, cpuSeconds } from './lib/load.mjs';
import { ROOT, startCli, stop, waitHttp } from './lib/procs.mjs';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '10' }, connections: { type: 'string', default: '64' } },
});
const durationMs = Number(values.seconds) * 1000;
const connections = Number(values.connections);

const SIM_PORT = 18400;
const GW_PORT = 18410;
const body = JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'hello' }], max_tokens: 8 });

// Two worker speeds: a near-instant engine shows the proxy's own cost; 20 ms/token is a
// fast real engine (8 tokens ≈ 160 ms), where the overhead should vanish in the noise.
const phases = [
  { name: 'instant engine (token interval 0 ms)', tokenInterval: '0' },
  { name: 'realistic engine (token interval 20 ms)', tokenInterval: '20' },
];

const rows = [];
for (const phase of phases) {
  const sim = await startCli(
    'flockserve-sim',
    ['--port', String(SIM_PORT), '--token-interval', phase.tokenInterval, '--max-num-seqs', '1024'],
    /listening on/,
  );
  const gw = await startCli(
    'flockserve',
    [
      '--skypilot_task',
      'examples/serving_sim_local.yaml',
      '--provisioner',
      'static',
      '--workers',
      `http://127.0.0.1:${SIM_PORT}`,
      '--min_workers',
      '1',
      '--max_workers',
      '1',
      '--worker_capacity',
      String(connections * 2),
      '--host',
      '127.0.0.1',
      '--port',
      String(GW_PORT),
      '--metrics_id',
      '-1',
      '--verbosity',
      '0',
    ],
    /listening on/,
  );
  await waitHttp(`http://127.0.0.1:${GW_PORT}/`, async (r) => (await r.json()).ready_worker_count === 1);

  const simCpu0 = cpuSeconds(sim.child.pid);
  const direct = await closedLoop({
    url: `http://127.0.0.1:${SIM_PORT}`,
    path: '/v1/chat/completions',
    body,
    connections,
    durationMs,
  });
  const gwCpu0 = cpuSeconds(gw.child.pid);
  const simCpu1 = cpuSeconds(sim.child.pid);
  const through = await closedLoop({
    url: `http://127.0.0.1:${GW_PORT}`,
    path: '/v1/chat/completions',
    body,
    connections,
    durationMs,
  });
  const gwCpu = cpuSeconds(gw.child.pid) - gwCpu0;
  rows.push({ phase: phase.name, direct, through, gwCpu, simCpuDirect: simCpu1 - simCpu0 });
  await stop(gw.child);
  await stop(sim.child);
}

const f = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
const lines = [
  '# Gateway overhead',
  '',
  `Command: \`npm run build && node bench/overhead.mjs --seconds ${values.seconds} --connections ${connections}\``,
  '',
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}. Load generator, gateway and`,
  'simulator share the machine, so read the ratios, not the absolute numbers.',
  '',
  `Load: closed loop, ${connections} connections, ${values.seconds} s per target after a 0.5 s warm-up,`,
  'non-streaming chat completions of 8 tokens; "direct" goes straight to one `flockserve-sim`,',
  '"gateway" goes through FlockServe (`--provisioner static`) to the same simulator.',
  '',
  '| phase | target | req/s | p50 ms | p99 ms | errors | gateway CPU s |',
  '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
];
for (const r of rows) {
  lines.push(
    `| ${r.phase} | direct | ${f(r.direct.rps)} | ${f(r.direct.p50, 2)} | ${f(r.direct.p99, 2)} | ${r.direct.errors} | – |`,
  );
  lines.push(
    `| ${r.phase} | gateway | ${f(r.through.rps)} | ${f(r.through.p50, 2)} | ${f(r.through.p99, 2)} | ${r.through.errors} | ${f(r.gwCpu, 2)} |`,
  );
  lines.push(
    `| ${r.phase} | **ratio gateway/direct** | **${f(r.through.rps / r.direct.rps, 2)}** | **${f(r.through.p50 / r.direct.p50, 2)}** | **${f(r.through.p99 / r.direct.p99, 2)}** | | |`,
  );
}
lines.push('');
writeFileSync(`${ROOT}/bench/results/overhead.md`, lines.join('\n'));
console.log(lines.join('\n'));
