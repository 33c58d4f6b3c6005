/** A plan thread: runs the simulations it is sent, one at a time (runner.ts). */
import { parentPort } from 'node:worker_threads';
import { TraceError } from '../cluster/trace.js';
import { runHere, type ThreadReply, type ThreadRequest } from './runner.js';

const port = parentPort;
if (!port) throw new Error('plan/thread.js runs as a worker thread of flockserve plan');
port.on('message', (req: ThreadRequest) => {
  runHere(req.args).then(
    (outcome) => port.postMessage({ id: req.id, outcome } satisfies ThreadReply),
    (err: unknown) =>
      port.postMessage({
        id: req.id,
        error: err instanceof TraceError ? err.message : ((err as Error).stack ?? String(err)),
      } satisfies ThreadReply),
  );
});
