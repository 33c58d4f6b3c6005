/**
 * Lists the gateway's workers through NodeControl (needs the node control key).
 *
 *   npm run build && npx tsc -p clients/typescript && \
 *     FLOCKSERVE_NODE_CONTROL_KEY=... node clients/typescript/dist/examples/list-workers.js [address]
 *
 * address defaults to $FLOCKSERVE_GRPC_ADDRESS, else localhost:8081 (the quick start's gateway).
 */
import {
  NodeControlServiceClient,
  bearer,
  credentials,
  workerStateToJSON,
  type ListWorkersResponse,
  type ServiceError,
} from 'flockserve/client';

const address = process.argv[2] ?? process.env['FLOCKSERVE_GRPC_ADDRESS'] ?? 'localhost:8081';
const client = new NodeControlServiceClient(address, credentials.createInsecure());

client.listWorkers(
  {},
  bearer(process.env['FLOCKSERVE_NODE_CONTROL_KEY']),
  (err: ServiceError | null, res?: ListWorkersResponse) => {
    client.close();
    if (err || !res) {
      console.error(`ListWorkers failed: ${err?.details ?? 'no answer'}`);
      process.exitCode = 1;
      return;
    }
    for (const w of res.workers) {
      const state = workerStateToJSON(w.state).replace('WORKER_STATE_', '').toLowerCase();
      console.log(`${w.name}\t${state}\t${w.url || '-'}\t${w.inFlight}/${w.capacity} in flight`);
    }
    console.log(`${res.workers.length} workers`);
  },
);
