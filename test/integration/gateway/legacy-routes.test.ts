import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { waitFor } from '../../helpers/wait.js';

// FlockServe's GET /add_new_node and /remove_existing_node, as existing scripts call them:
// the key in the node_control_key header, an optional worker_name; a refusal answers its own status
// code (401, 403, 404, 409), where the original answered 200.

let t: TestGateway;
let off: TestGateway;

beforeAll(async () => {
  [t, off] = await Promise.all([
    startGateway({ nodeControlKey: 'sekret', minWorkers: 1, maxWorkers: 2, autoscaleInterval: 3600 }),
    startGateway({ minWorkers: 0, maxWorkers: 1 }),
  ]);
});
afterAll(() => Promise.all([t?.close(), off?.close()]));

async function get(
  base: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}${path}`, { headers });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const names = (): string[] => t.gw.workers().map((w) => w.name);

describe('legacy node control routes', () => {
  // [route, headers, gateway, status, error code]
  const refusals: [string, Record<string, string>, 'keyed' | 'off', number, string][] = [
    ['/add_new_node', {}, 'keyed', 401, 'unauthorized'],
    ['/add_new_node', { node_control_key: 'wrong' }, 'keyed', 401, 'unauthorized'],
    ['/remove_existing_node', { node_control_key: 'wrong' }, 'keyed', 401, 'unauthorized'],
    ['/add_new_node', { node_control_key: 'sekret' }, 'off', 403, 'node_control_disabled'],
    ['/remove_existing_node', { node_control_key: 'x' }, 'off', 403, 'node_control_disabled'],
    ['/remove_existing_node', { node_control_key: 'sekret', worker_name: 'nope' }, 'keyed', 404, 'unknown_worker'],
    ['/add_new_node', { node_control_key: 'sekret', worker_name: 'gpu-1' }, 'keyed', 400, 'bad_request'],
    ['/add_new_node', { node_control_key: 'sekret', worker_name: '1' }, 'keyed', 409, 'worker_exists'],
  ];
  it.each(refusals)('%s %j (%s) → %i %s', async (route, headers, which, status, code) => {
    const res = await get(which === 'keyed' ? t.url : off.url, route, headers);
    expect(res.status).toBe(status);
    expect((res.body['error'] as { code: string }).code).toBe(code);
    expect(names()).toEqual(['skypilot-worker-1']);
  });

  it('a session: add_new_node 5, refused at max_workers; remove_existing_node 5 (bearer header), then without a name', async () => {
    // add_new_node with worker_name 5 launches skypilot-worker-5; a second add is refused at max_workers.
    const res = await get(t.url, '/add_new_node', { node_control_key: 'sekret', worker_name: '5' });
    expect(res).toEqual({
      status: 200,
      body: {
        message: 'New node added: skypilot-worker-5 is provisioning.',
        worker_name: 'skypilot-worker-5',
        state: 'provisioning',
      },
    });
    const full = await get(t.url, '/add_new_node', { node_control_key: 'sekret' });
    expect(full.status).toBe(409);
    expect((full.body['error'] as { code: string }).code).toBe('at_max_workers');
    await waitFor(() => t.gw.status().readyWorkerCount === 2, 'two ready workers');

    // remove_existing_node with worker_name drains it; the bearer header works too.
    const removed = await get(t.url, '/remove_existing_node', {
      authorization: 'Bearer sekret',
      worker_name: 'skypilot-worker-5',
    });
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ worker_name: 'skypilot-worker-5', state: 'draining' });
    await waitFor(() => !names().includes('skypilot-worker-5'), 'skypilot-worker-5 gone');
    expect(names()).toEqual(['skypilot-worker-1']);

    // remove_existing_node without a name takes the least-loaded ready worker.
    const unnamed = await get(t.url, '/remove_existing_node', { node_control_key: 'sekret' });
    expect(unnamed.status).toBe(200);
    expect(unnamed.body['worker_name']).toBe('skypilot-worker-1');
    await waitFor(() => names().length === 0, 'no workers');
  });
});
