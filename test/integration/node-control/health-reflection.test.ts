import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthClient,
  type HealthCheckResponse,
} from '../../../src/gen/grpc/health/v1/health.js';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { bearer, reflect, unary, unaryError } from '../../helpers/grpc.js';
import { waitFor } from '../../helpers/wait.js';

// grpc.health.v1 and server reflection, as grpcurl and load balancers use them: no
// FlockServe proto on the client side, only the standard ones.

let t: TestGateway;
let health: HealthClient;

beforeAll(async () => {
  t = await startGateway({ minWorkers: 1, maxWorkers: 1 });
  health = new HealthClient(t.grpcAddress, credentials.createInsecure());
});
afterAll(async () => {
  health?.close();
  await t?.close();
});

describe('grpc.health.v1', () => {
  // [service, status]
  const served: [string, ServingStatus][] = [
    ['', ServingStatus.SERVING],
    ['flockserve.v1.InferenceService', ServingStatus.SERVING],
    ['flockserve.v1.NodeControlService', ServingStatus.SERVING],
  ];
  it.each(served)('Check(%j) → SERVING', async (service, want) => {
    const res = await unary(health.check.bind(health), { service }, bearer());
    expect(res.status).toBe(want);
  });

  it('Check of an unknown service → NOT_FOUND', async () => {
    const err = await unaryError(health.check.bind(health), { service: 'nope.v1.Nope' }, bearer());
    expect(err.code).toBe(status.NOT_FOUND);
  });

  it('reflection lists every service and describes them', async () => {
    const list = await reflect(t.grpcAddress, { list_services: '*' });
    const names = (list['list_services_response'] as { service: { name: string }[] }).service.map((s) => s.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'flockserve.v1.InferenceService',
        'flockserve.v1.NodeControlService',
        'grpc.health.v1.Health',
      ]),
    );
    const file = await reflect(t.grpcAddress, { file_containing_symbol: 'flockserve.v1.NodeControlService' });
    const protos = (file['file_descriptor_response'] as { file_descriptor_proto: Buffer[] }).file_descriptor_proto;
    const text = Buffer.concat(protos).toString('latin1');
    for (const rpc of ['AddWorker', 'RemoveWorker', 'DrainWorker', 'SetScaleBounds', 'WatchEvents'])
      expect(text).toContain(rpc);
  });

  it('Watch reports NOT_SERVING once shutdown begins (runs last: closes the gateway)', async () => {
    const seen: ServingStatus[] = [];
    const call = health.watch({ service: '' });
    call.on('data', (r: HealthCheckResponse) => seen.push(r.status));
    call.on('error', (_e: ServiceError) => {});
    await waitFor(() => seen.length === 1, 'the first status');
    const closing = t.close();
    await waitFor(() => seen.includes(ServingStatus.NOT_SERVING), 'NOT_SERVING');
    call.cancel();
    await closing;
    expect(seen.slice(0, 2)).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
  });
});
