import type { FastifyInstance, FastifyRequest } from 'fastify';
import { checkNodeControlKey } from '../service/auth.js';
import type { ControlPlane } from '../service/status.js';

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * FlockServe's node control routes, kept for existing scripts: GET /add_new_node and
 * GET /remove_existing_node with the key in the `node_control_key` header (or
 * `authorization: Bearer <key>`) and an optional `worker_name`. Same semantics as the
 * NodeControl RPCs they call, with honest status codes: 401 wrong key, 403 node control
 * off, 404 unknown worker, 409 at max_workers (the original answered 200 "Incorrect key").
 */
export function registerLegacyRoutes(app: FastifyInstance, plane: ControlPlane): void {
  const authorize = (req: FastifyRequest): void =>
    checkNodeControlKey(plane.nodeControlKey, header(req, 'node_control_key') ?? header(req, 'authorization'));

  app.get('/add_new_node', async (req) => {
    authorize(req);
    const w = await plane.addWorker(header(req, 'worker_name'));
    return { message: `New node added: ${w.name} is ${w.state}.`, worker_name: w.name, state: w.state };
  });

  app.get('/remove_existing_node', async (req) => {
    authorize(req);
    const w = await plane.removeWorker(header(req, 'worker_name'));
    return {
      message: `Removing the node: ${w.name} is ${w.state}; it is terminated once its requests finish.`,
      worker_name: w.name,
      state: w.state,
    };
  });
}
