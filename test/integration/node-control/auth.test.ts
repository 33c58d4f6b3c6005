import { credentials, status, type Metadata, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeControlServiceClient } from '../../../src/gen/flockserve/v1/node_control.js';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { bearer, unaryError } from '../../helpers/grpc.js';

// Every NodeControl RPC, called with each kind of credential against a gateway with a key and
// one without. None of these calls may change the fleet.

type Call = (c: NodeControlServiceClient, md: Metadata) => Promise<{ code: number; details: string }>;

/** WatchEvents fails with the stream's error status before any event. */
const watchError = (c: NodeControlServiceClient, md: Metadata): Promise<{ code: number; details: string }> =>
  new Promise((resolve, reject) => {
    const call = c.watchEvents({}, md);
    call.on('data', () => reject(new Error('an event arrived without authorization')));
    call.on('error', (e: ServiceError) => resolve({ code: e.code, details: e.details }));
  });

const RPCS: [string, Call][] = [
  ['GetStatus', (c, md) => unaryError(c.getStatus.bind(c), {}, md)],
  ['ListWorkers', (c, md) => unaryError(c.listWorkers.bind(c), {}, md)],
  ['AddWorker', (c, md) => unaryError(c.addWorker.bind(c), {}, md)],
  ['RemoveWorker', (c, md) => unaryError(c.removeWorker.bind(c), {}, md)],
  ['DrainWorker', (c, md) => unaryError(c.drainWorker.bind(c), { name: 'skypilot-worker-1' }, md)],
  ['SetScaleBounds', (c, md) => unaryError(c.setScaleBounds.bind(c), { minWorkers: 0, maxWorkers: 5 }, md)],
  ['WatchEvents', watchError],
];

let keyed: TestGateway;
let open: TestGateway;
let keyedClient: NodeControlServiceClient;
let openClient: NodeControlServiceClient;

beforeAll(async () => {
  [keyed, open] = await Promise.all([
    startGateway({ nodeControlKey: 'sekret', minWorkers: 1, maxWorkers: 3 }),
    startGateway({ minWorkers: 1, maxWorkers: 3 }),
  ]);
  keyedClient = new NodeControlServiceClient(keyed.grpcAddress, credentials.createInsecure());
  openClient = new NodeControlServiceClient(open.grpcAddress, credentials.createInsecure());
});
afterAll(async () => {
  keyedClient?.close();
  openClient?.close();
  await Promise.all([keyed?.close(), open?.close()]);
});

describe('NodeControl authentication', () => {
  // [credential, gateway, wanted status, words the message must contain]
  const cases: [string, () => [NodeControlServiceClient, Metadata], status, RegExp][] = [
    ['no key sent', () => [keyedClient, bearer()], status.UNAUTHENTICATED, /bearer key/i],
    ['wrong key', () => [keyedClient, bearer('sekreT')], status.UNAUTHENTICATED, /bearer key/i],
    ['key prefix only', () => [keyedClient, bearer('sek')], status.UNAUTHENTICATED, /bearer key/i],
    ['node control off', () => [openClient, bearer('anything')], status.FAILED_PRECONDITION, /--node_control_key/],
  ];

  for (const [rpc, invoke] of RPCS) {
    it.each(cases)(`${rpc}: %s → %s`, async (_label, pick, want, words) => {
      const [client, md] = pick();
      const err = await invoke(client, md);
      expect(err.code).toBe(want);
      expect(err.details).toMatch(words);
      // Refused before it acted: the fleets and bounds are as they were.
      for (const t of [keyed, open]) {
        expect(t.gw.workers().map((w) => [w.name, w.state])).toEqual([['skypilot-worker-1', 'ready']]);
        expect(t.gw.status()).toMatchObject({ minWorkers: 1, maxWorkers: 3 });
      }
    });
  }

  it('the right key is accepted (the refusals above can fail)', async () => {
    const err = await unaryError(keyedClient.removeWorker.bind(keyedClient), { name: 'nope' }, bearer('sekret'));
    // Past authentication: the worker name is what is wrong now.
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.errorCode).toBe('unknown_worker');
  });
});
