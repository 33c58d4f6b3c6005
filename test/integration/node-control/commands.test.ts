import { credentials, status, type ClientReadableStream } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  NodeControlServiceClient,
  WorkerState,
  type WatchEventsResponse,
} from '../../../src/gen/flockserve/v1/node_control.js';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { bearer, unary, unaryError } from '../../helpers/grpc.js';
import { waitFor } from '../../helpers/wait.js';

// NodeControl against a real gateway: local provisioner, simulator workers. The autoscaler's
// interval and scale-down delay are long, so every change here comes from the RPCs (and from
// the one evaluation SetScaleBounds asks for). The reads and refusals see the fleet as it
// starts; the commands that change it run last, as one timeline.

let t: TestGateway;
let client: NodeControlServiceClient;
const md = () => bearer('sekret');

/** A WatchEvents subscription that keeps what arrives; resolves once the server has it registered. */
async function watch(): Promise<{ events: WatchEventsResponse[]; call: ClientReadableStream<WatchEventsResponse> }> {
  const events: WatchEventsResponse[] = [];
  const call = client.watchEvents({}, md());
  call.on('data', (e: WatchEventsResponse) => events.push(e));
  call.on('error', () => {}); // cancelled at the end of each test
  await new Promise((resolve) => call.once('metadata', resolve));
  return { events, call };
}

/** The states one worker went through, as WatchEvents told them. */
const statesOf = (events: WatchEventsResponse[], name: string): WorkerState[] =>
  events.flatMap((e) =>
    e.event?.$case === 'workerStateChanged' && e.event.value.worker?.name === name ? [e.event.value.worker.state] : [],
  );

const stateOf = (name: string): string | undefined => t.gw.workers().find((w) => w.name === name)?.state;

beforeAll(async () => {
  t = await startGateway({
    nodeControlKey: 'sekret',
    // The assertions below quote this policy's name and decisions.
    autoscaler: 'running-mean',
    minWorkers: 1,
    maxWorkers: 3,
    autoscaleInterval: 3600,
    downscaleDelay: 3600,
  });
  client = new NodeControlServiceClient(t.grpcAddress, credentials.createInsecure());
});
afterAll(async () => {
  client?.close();
  await t?.close();
});

describe('NodeControl commands', () => {
  it('GetStatus reports the counts, bounds and policy names', async () => {
    const s = await unary(client.getStatus.bind(client), {}, md());
    expect(s).toMatchObject({
      readyWorkerCount: 1,
      workerCount: 1,
      workerNames: ['skypilot-worker-1'],
      minWorkers: 1,
      maxWorkers: 3,
      autoscaler: 'running-mean',
      loadBalancer: 'least-connection',
      provisioner: 'local',
    });
    expect(s.uptimeSeconds).toBeGreaterThan(0);
  });

  it('ListWorkers describes each worker', async () => {
    const before = Date.now();
    const { workers } = await unary(client.listWorkers.bind(client), {}, md());
    expect(workers).toHaveLength(1);
    const w = workers[0]!;
    expect(w).toMatchObject({ name: 'skypilot-worker-1', state: WorkerState.WORKER_STATE_READY, inFlight: 0 });
    expect(w.capacity).toBe(t.gw.config.workerCapacity);
    expect(w.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(w.provisionerDetail['pid']).toMatch(/^\d+$/);
    expect(w.ageSeconds).toBeGreaterThan(0);
    // Probed every 50 ms: the last probe is recent wall time.
    expect(w.lastProbeUnixMs).toBeGreaterThan(before - 5000);
    expect(w.lastProbeUnixMs).toBeLessThanOrEqual(Date.now());
  });

  // [name asked for, gRPC status, catalogue code]
  const refusals: [string, status, string][] = [
    ['skypilot-worker-1', status.ALREADY_EXISTS, 'worker_exists'],
    ['1', status.ALREADY_EXISTS, 'worker_exists'],
    ['gpu-box', status.INVALID_ARGUMENT, 'bad_request'],
    ['skypilot-worker-x', status.INVALID_ARGUMENT, 'bad_request'],
  ];
  it.each(refusals)('AddWorker %j → %s (%s)', async (name, code, errorCode) => {
    const err = await unaryError(client.addWorker.bind(client), { name }, md());
    expect(err).toMatchObject({ code, errorCode });
  });

  it('RemoveWorker and DrainWorker of an unknown name → NOT_FOUND naming the workers', async () => {
    for (const m of [client.removeWorker.bind(client), client.drainWorker.bind(client)]) {
      const err = await unaryError(m, { name: 'skypilot-worker-99' }, md());
      expect(err).toMatchObject({ code: status.NOT_FOUND, errorCode: 'unknown_worker' });
      expect(err.details).toContain('skypilot-worker-1');
    }
    const err = await unaryError(client.drainWorker.bind(client), { name: '' }, md());
    expect(err.code).toBe(status.INVALID_ARGUMENT);
  });

  // [min, max, why it is refused]
  const badBounds: [number | undefined, number | undefined, string][] = [
    [4, 3, 'min above max'],
    [undefined, 0, 'max 0'],
    [5, undefined, 'min above the current max'],
  ];
  it.each(badBounds)('SetScaleBounds min %s max %s → INVALID_ARGUMENT (%s)', async (minWorkers, maxWorkers) => {
    const err = await unaryError(client.setScaleBounds.bind(client), { minWorkers, maxWorkers }, md());
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT, errorCode: 'bad_request' });
    expect(t.gw.status()).toMatchObject({ minWorkers: 1, maxWorkers: 3 });
  });

  it('a session of commands: add, add by number up to max_workers, drain, remove, new bounds', async () => {
    // AddWorker launches one more; WatchEvents shows it becoming ready.
    {
      const { events, call } = await watch();
      const { worker } = await unary(client.addWorker.bind(client), {}, md());
      expect(worker).toMatchObject({ name: 'skypilot-worker-2', state: WorkerState.WORKER_STATE_PROVISIONING });
      await waitFor(
        () => statesOf(events, 'skypilot-worker-2').includes(WorkerState.WORKER_STATE_READY),
        'ready event',
      );
      call.cancel();
      expect(statesOf(events, 'skypilot-worker-2')).toEqual([
        WorkerState.WORKER_STATE_PROVISIONING,
        WorkerState.WORKER_STATE_STARTING,
        WorkerState.WORKER_STATE_READY,
      ]);
      const ready = events.find(
        (e) =>
          e.event?.$case === 'workerStateChanged' && e.event.value.worker?.state === WorkerState.WORKER_STATE_READY,
      );
      expect(ready?.event?.$case === 'workerStateChanged' && ready.event.value).toMatchObject({
        previousState: WorkerState.WORKER_STATE_STARTING,
        reason: 'readiness probe passed',
      });
      expect(ready?.unixMs).toBeGreaterThan(Date.now() - 60_000);
    }

    // AddWorker with a number names the worker <prefix>-<n>, and stops at max_workers.
    {
      const { worker } = await unary(client.addWorker.bind(client), { name: '7' }, md());
      expect(worker?.name).toBe('skypilot-worker-7');
      const err = await unaryError(client.addWorker.bind(client), {}, md());
      expect(err).toMatchObject({ code: status.FAILED_PRECONDITION, errorCode: 'at_max_workers' });
      expect(err.details).toContain('max_workers is 3');
      await waitFor(() => stateOf('skypilot-worker-7') === 'ready', 'worker 7 ready');
    }

    // DrainWorker drains a worker and the fleet replaces it.
    {
      const { events, call } = await watch();
      const { worker } = await unary(client.drainWorker.bind(client), { name: 'skypilot-worker-7' }, md());
      expect(worker?.state).toBe(WorkerState.WORKER_STATE_DRAINING);
      await waitFor(() => stateOf('skypilot-worker-7') === undefined, 'worker 7 gone');
      await waitFor(() => t.gw.status().readyWorkerCount === 3, 'a replacement ready');
      call.cancel();
      expect(statesOf(events, 'skypilot-worker-7')).toEqual([
        WorkerState.WORKER_STATE_DRAINING,
        WorkerState.WORKER_STATE_TERMINATING,
        WorkerState.WORKER_STATE_GONE,
      ]);
    }

    // RemoveWorker without a name drains the least-loaded ready worker, then it is gone and not replaced.
    {
      const names = t.gw.workers().map((w) => w.name);
      // Load every worker but the newest, so the choice is not just "the first in the list".
      const busy = t.gw.workers().slice(0, -1);
      for (const w of busy) w.inFlight += 1;
      const { worker } = await unary(client.removeWorker.bind(client), {}, md());
      for (const w of busy) w.inFlight -= 1;
      expect(worker?.name).toBe(names.at(-1));
      expect(worker?.state).toBe(WorkerState.WORKER_STATE_DRAINING);
      await waitFor(() => stateOf(worker!.name) === undefined, 'removed worker gone');
      expect(t.gw.workers()).toHaveLength(2);
    }

    // SetScaleBounds applies at once: the autoscaler decides with the new bounds (and WatchEvents shows it).
    {
      const { events, call } = await watch();
      const res = await unary(client.setScaleBounds.bind(client), { minWorkers: 3 }, md());
      expect(res).toEqual({ minWorkers: 3, maxWorkers: 3 });
      const decision = events.find((e) => e.event?.$case === 'autoscalerDecision');
      expect(decision?.event?.$case === 'autoscalerDecision' && decision.event.value).toMatchObject({
        policy: 'running-mean',
        currentWorkers: 2,
        desiredWorkers: 3,
      });
      await waitFor(() => t.gw.status().readyWorkerCount === 3, 'three ready workers');
      call.cancel();
      expect(t.gw.status()).toMatchObject({ minWorkers: 3, maxWorkers: 3 });
    }
  });

  it('a drain owes a replacement: an add meanwhile is refused at max_workers, and a lower max takes the replacement back', async () => {
    // From the session above: 3 ready workers, bounds min 3, max 3.
    await waitFor(() => t.gw.status().readyWorkerCount === 3, 'three ready workers');
    const first = t.gw.workers()[0]!;
    first.inFlight += 1; // a request in flight keeps it draining
    try {
      const { worker } = await unary(client.drainWorker.bind(client), { name: first.name }, md());
      expect(worker?.state).toBe(WorkerState.WORKER_STATE_DRAINING);
      const err = await unaryError(client.addWorker.bind(client), {}, md());
      expect(err).toMatchObject({ code: status.FAILED_PRECONDITION, errorCode: 'at_max_workers' });
      await unary(client.setScaleBounds.bind(client), { minWorkers: 1, maxWorkers: 2 }, md());
      expect(t.gw.gateway!.fleet.target).toBe(2);
    } finally {
      first.inFlight -= 1;
      t.gw.gateway!.fleet.notifyRelease();
    }
    await waitFor(() => stateOf(first.name) === undefined, 'the drained worker gone');
    await waitFor(() => t.gw.status().readyWorkerCount === 2, 'two ready workers');
    expect(t.gw.workers().filter((w) => w.state !== 'gone')).toHaveLength(2);
  });
});
