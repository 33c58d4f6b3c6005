import { FlockServe } from './dist/index.js';
import { credentials, Metadata } from '@grpc/grpc-js';
import { InferenceServiceClient } from './dist/gen/flockserve/v1/inference.js';
import { startEngineSimulator } from './dist/sim/server.js';
import pino from 'pino';
const sim = await startEngineSimulator({});
const gw = new FlockServe({ skypilotTask: 'examples/serving_sim_local.yaml', provisioner: 'static', workers: [sim.url], host: '127.0.0.1', port: 0, grpcPort: 0, minWorkers: 1, maxWorkers: 1, statusLogInterval: 0, metricsId: -1, workerProbeInterval: 0.05 }, { logger: pino({ level: 'silent' }) });
const l = await gw.run();
await new Promise((r) => setTimeout(r, 500));
const c = new InferenceServiceClient(`127.0.0.1:${l.grpcPort}`, credentials.createInsecure());
for (const m of process.argv.slice(2)) {
  const req = { method: m, path: '/nope', headers: {}, body: Buffer.from([0xfc]) };
  const t0 = Date.now();
  const call = c.forward(req, new Metadata(), { deadline: Date.now() + 2000 });
  call.on('data', (d) => {});
  const s = await new Promise((r) => call.on('status', r));
  await new Promise((r) => setTimeout(r, 200));
  console.log(m, 'status', s.code, s.details.slice(0, 80), Date.now() - t0, 'q', gw.status().currentQueueLength, 'inflight', gw.gateway.service.inFlight);
}
c.close(); await gw.close(); await sim.close();
