import { credentials, type ServiceError } from '@grpc/grpc-js';
import http2 from 'node:http2';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/core/clock.js';
import { GatewayError } from '../../../src/core/errors.js';
import { NodeControlServiceClient, type WatchEventsResponse } from '../../../src/gen/flockserve/v1/node_control.js';
import type { EventListener } from '../../../src/service/events.js';
import { EventHub } from '../../../src/service/events.js';
import { createHealthHandlers, HealthStatus } from '../../../src/service/grpc-health.js';
import { createNodeControlHandlers } from '../../../src/service/grpc-node-control.js';
import { startGrpcServer, type GrpcListener } from '../../../src/service/grpc-server.js';
import type { ControlPlane } from '../../../src/service/status.js';
import { bearer } from '../../helpers/grpc.js';
import { waitFor } from '../../helpers/wait.js';

// WatchEvents over a real gRPC server, with a control plane whose only live part is its
// event hub. A watcher that stops reading must not make the server hold events for it
// without bound: once HTTP/2 flow control stops its stream and `limit` more events wait,
// it is unsubscribed (its stream is ended with RESOURCE_EXHAUSTED, which the client sees
// when it reads again). A watcher that keeps reading gets every event meanwhile.

const LIMIT = 64;
const hub = new EventHub(new VirtualClock(0));
const refuse = (): never => {
  throw new GatewayError('bad_request', { message: 'not in this test' });
};
const plane: ControlPlane = {
  nodeControlKey: 'k',
  status: refuse,
  workers: () => [],
  addWorker: refuse,
  removeWorker: refuse,
  drainWorker: refuse,
  setScaleBounds: refuse,
  watch: (l: EventListener) => hub.subscribe(l),
};
const decision = { policy: 'p', currentWorkers: 1, desiredWorkers: 1, queueLengthRunningMean: 0, reason: 'no change' };

let server: GrpcListener;
let address: string;

beforeAll(async () => {
  server = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    inference: {} as never, // not called here
    nodeControl: createNodeControlHandlers(plane, new VirtualClock(0), { watchBufferLimit: LIMIT }),
    health: createHealthHandlers(new HealthStatus([])),
    maxMessageBytes: 1 << 20,
  });
  address = `127.0.0.1:${server.port}`;
});
afterAll(() => server?.close(100));

/**
 * A WatchEvents call made over plain HTTP/2 whose reader then stops: it grants the server no
 * more flow-control window, as a wedged client does. (A paused grpc-js client stream is no
 * such client: grpc-js keeps reading into its own unbounded buffer.)
 */
async function stalledWatcher(): Promise<{ close(): void }> {
  const session = http2.connect(`http://${address}`);
  session.on('error', () => {});
  const stream = session.request({
    ':method': 'POST',
    ':path': '/flockserve.v1.NodeControlService/WatchEvents',
    'content-type': 'application/grpc',
    te: 'trailers',
    authorization: 'Bearer k',
  });
  stream.on('error', () => {});
  stream.end(Buffer.from([0, 0, 0, 0, 0])); // one gRPC frame: uncompressed, empty WatchEventsRequest
  await new Promise((r) => stream.once('response', r));
  stream.pause();
  return { close: () => session.destroy() };
}

it('a stalled watcher is dropped after LIMIT queued events; a reading one gets every event', async () => {
  const stalled = await stalledWatcher();
  const readingClient = new NodeControlServiceClient(address, credentials.createInsecure());
  const reading = readingClient.watchEvents({}, bearer('k'));
  let received = 0;
  let readingError: ServiceError | undefined;
  reading.on('data', (_e: WatchEventsResponse) => received++);
  reading.on('error', (e: ServiceError) => (readingError = e));
  await new Promise((r) => reading.once('metadata', r));
  expect(hub.subscribers).toBe(2);

  // Batches of 20, each once the reading watcher has read everything before it: that one
  // keeps up by construction; the stalled one falls further behind with every batch.
  let published = 0;
  while (hub.subscribers === 2 && published < 50_000) {
    for (let i = 0; i < 20; i++) hub.decision(decision);
    published += 20;
    await waitFor(() => received === published || readingError !== undefined, `${published} events read`);
  }
  expect(hub.subscribers).toBe(1);
  // More than LIMIT (the transport holds some first: grpc-js's buffer and the 64 KB HTTP/2
  // window), and bounded: it did not take anywhere near the cap of the loop.
  expect(published).toBeGreaterThan(LIMIT);
  expect(published).toBeLessThan(5_000);
  expect(readingError).toBeUndefined();
  expect(received).toBe(published);

  // Cancelling unsubscribes too.
  reading.cancel();
  await waitFor(() => hub.subscribers === 0, 'the reading watcher unsubscribed');
  stalled.close();
  readingClient.close();
});
