/**
 * Runs independent simulations, `jobs` at a time: each in its own worker thread when running
 * compiled (the simulation is CPU-bound and single-threaded), one after another in this thread
 * otherwise (from the TypeScript sources, as the tests run, a thread could not load them).
 * Results do not depend on how they were run: each simulation is seeded and on its own clock.
 */
import { Worker } from 'node:worker_threads';
import type { SimArgs } from '../cluster/args.js';
import { runSimulation } from '../cluster/cli.js';
import type { SimulationResult } from '../cluster/run.js';

export interface RunOutcome {
  readonly result: SimulationResult;
  /** Wall-clock seconds the simulation took. */
  readonly wallS: number;
}

/** What a thread is sent and answers (thread.ts). */
export interface ThreadRequest {
  readonly id: number;
  readonly args: SimArgs;
}
export type ThreadReply =
  { readonly id: number; readonly outcome: RunOutcome } | { readonly id: number; readonly error: string };

/**
 * A simulation allocates a little per request and keeps it for the request's life: a young
 * generation of 3 × 64 MiB semi-spaces (as the flockserve bin gives the main thread) makes
 * the one-hour trace about 15% cheaper than V8's default.
 */
const YOUNG_GENERATION_MB = 192;

/** The thread's script beside this file, when this file is compiled JavaScript. */
const THREAD_URL = import.meta.url.endsWith('.js') ? new URL('./thread.js', import.meta.url) : undefined;

/** Runs every simulation; `onDone` hears each as it finishes (in completion order). Rejects with the first failure. */
export async function runAll(
  all: readonly SimArgs[],
  jobs: number,
  onDone?: (index: number, outcome: RunOutcome) => void,
): Promise<RunOutcome[]> {
  const out: RunOutcome[] = new Array<RunOutcome>(all.length);
  if (jobs <= 1 || all.length <= 1 || THREAD_URL === undefined) {
    for (let i = 0; i < all.length; i++) {
      out[i] = await runHere(all[i]!);
      onDone?.(i, out[i]!);
    }
    return out;
  }
  let next = 0;
  const threads = Array.from(
    { length: Math.min(jobs, all.length) },
    () => new Worker(THREAD_URL, { resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB } }),
  );
  try {
    await Promise.all(
      threads.map(async (thread) => {
        for (let i = next++; i < all.length; i = next++) {
          out[i] = await ask(thread, { id: i, args: all[i]! });
          onDone?.(i, out[i]!);
        }
      }),
    );
  } finally {
    await Promise.all(threads.map((t) => t.terminate()));
  }
  return out;
}

/** One simulation in this thread. */
export async function runHere(args: SimArgs): Promise<RunOutcome> {
  const { result, description } = await runSimulation(args);
  return { result, wallS: description.wallS ?? 0 };
}

function ask(thread: Worker, req: ThreadRequest): Promise<RunOutcome> {
  return new Promise<RunOutcome>((resolve, reject) => {
    const done = (): void => {
      thread.off('message', onMessage);
      thread.off('error', onError);
    };
    const onMessage = (reply: ThreadReply): void => {
      if (reply.id !== req.id) return;
      done();
      if ('error' in reply) reject(new Error(reply.error));
      else resolve(reply.outcome);
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    thread.on('message', onMessage);
    thread.on('error', onError);
    thread.postMessage(req);
  });
}
