/**
 * Lists the gateway's workers through NodeControl. Node control is off unless the gateway was
 * started with --node_control_key (the quick start: npm start -- --node_control_key KEY); pass the
 * same key in FLOCKSERVE_NODE_CONTROL_KEY.
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
  status,
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
      const refused = err?.code === status.FAILED_PRECONDITION || err?.code === status.UNAUTHENTICATED;
      const hint = refused
        ? ' Start the gateway with --node_control_key KEY and set FLOCKSERVE_NODE_CONTROL_KEY=KEY here.'
        : '';
      console.error(`ListWorkers failed: ${err?.details ?? 'no answer'}${hint}`);
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
