#!/usr/bin/env -S node --max-semi-space-size=64
// Semi-spaces of 64 MiB for the young generation (V8's default is 16): a request's objects live
// as long as its answer takes, and with 16 MiB the scavenger copies hundreds of in-flight
// requests' objects at every scavenge. At 256 concurrent 160 ms requests the p99 went from 1.24
// to 1.10–1.14 × nginx's (bench/results/datapath-profile.md, eighth round). V8 sizes it only at
// startup, so it is set here, in the bin, which every launch goes through: `npm start`, an
// installed `flockserve`, the benchmarks.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, helpText, resolveArgs } from '../config/resolve.js';
import type { FlockServe } from '../index.js';

const SUMMARY =
  'FlockServe: launches copies of a SkyPilot task as workers, load-balances OpenAI and TGI requests\n' +
  'across them over HTTP and gRPC, and autoscales the worker count from the running mean of the queue length.\n' +
  'Subcommands: flockserve simulate --trace FILE [options] runs the autoscaler on a trace in virtual time (see simulate --help);\n' +
  'flockserve plan --trace FILE [options] sweeps fixed fleets, the clairvoyant bound and the policies over it (see plan --help).';

/** Runs the gateway until SIGTERM/SIGINT; a second signal exits at once. Returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const io = { out: (text: string) => process.stdout.write(text), err: (text: string) => process.stderr.write(text) };
  if (argv[0] === 'simulate') {
    const { simulateMain } = await import('../sim/cluster/cli.js');
    return simulateMain(argv.slice(1), io);
  }
  if (argv[0] === 'plan') {
    const { planMain } = await import('../sim/plan/cli.js');
    return planMain(argv.slice(1), io);
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText('flockserve', SUMMARY) + '\n');
    return 0;
  }
  // The gateway's modules (HTTP, gRPC, telemetry) load only to run it: simulate and plan start without them.
  const { FlockServe: Gateway } = await import('../index.js');
  let gateway: FlockServe;
  try {
    gateway = new Gateway(resolveArgs(argv, process.env));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`flockserve: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  try {
    const { httpUrl, grpcAddress } = await gateway.run();
    process.stdout.write(`FlockServe listening on ${httpUrl} (HTTP) and ${grpcAddress} (gRPC)\n`);
  } catch (err) {
    process.stderr.write(`flockserve: ${(err as Error).message}\n`);
    await gateway.close().catch(() => undefined);
    return 1;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        process.stderr.write(`flockserve: ${signal} again, exiting now\n`);
        process.exit(130);
      }
      stopping = true;
      const then = gateway.config.keepWorkersOnExit
        ? 'leaving the workers running (keep_workers_on_exit)'
        : 'tearing the workers down';
      process.stderr.write(`flockserve: ${signal}: draining, then ${then} (${signal} again to exit now)\n`);
      gateway.close().then(
        () => resolve(0),
        (err: unknown) => {
          process.stderr.write(`flockserve: shutdown failed: ${(err as Error).message}\n`);
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

const invokedDirectly =
  process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`flockserve: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
