import { describe, expect, it } from 'vitest';
import { ready, waitForWorker } from '../../../src/cli/flockctl.js';
import { ListWorkersResponse, Worker, WorkerState } from '../../../src/gen/flockserve/v1/node_control.js';

/** A gateway whose ListWorkers answers each listing in turn (the last one from then on). */
function listing(...states: (WorkerState | undefined)[][]) {
  let n = 0;
  return {
    listWorkers: () => {
      const now = states[Math.min(n++, states.length - 1)]!;
      const workers = now.flatMap((s) => (s === undefined ? [] : [Worker.fromPartial({ name: 'w-3', state: s })]));
      return Promise.resolve(ListWorkersResponse.fromPartial({ workers }));
    },
  };
}

const { WORKER_STATE_PROVISIONING: PROVISIONING, WORKER_STATE_READY: READY } = WorkerState;

describe('flockctl add --wait', () => {
  it('waits through listings that do not name the worker yet (a follower learns of it with the next fleet write)', async () => {
    await expect(waitForWorker(listing([], [], [PROVISIONING], [READY]), 'w-3', 10, ready, 'ready')).resolves.toBe(
      undefined,
    );
  });

  it('fails once a worker it has seen is no longer listed', async () => {
    await expect(waitForWorker(listing([PROVISIONING], []), 'w-3', 10, ready, 'ready')).rejects.toThrow(
      'w-3 is gone, not ready',
    );
  });
});
