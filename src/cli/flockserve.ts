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
import { FlockServe } from '../index.js';

const SUMMARY =
  'FlockServe: launches copies of a SkyPilot task as workers, load-balances OpenAI and TGI requests\n' +
  'across them over HTTP and gRPC, and autoscales the worker count from the running mean of the queue length.\n' +
  'Subcommand: flockserve simulate --trace FILE [options] runs the autoscaler on a trace in virtual time (see simulate --help).';

/** Runs the gateway until SIGTERM/SIGINT; a second signal exits at once. Returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === 'simulate') {
    const { simulateMain } = await import('../sim/cluster/cli.js');
    return simulateMain(argv.slice(1), {
      out: (text) => process.stdout.write(text),
      err: (text) => process.stderr.write(text),
    });
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText('flockserve', SUMMARY) + '\n');
    return 0;
  }
  let gateway: FlockServe;
  try {
    gateway = new FlockServe(resolveArgs(argv, process.env));
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
      const alone = gateway.config.keepWorkersOnExit
        ? 'leaving the workers running (keep_workers_on_exit)'
        : 'tearing the workers down';
      // With etcd the fleet goes to a replica that stays; only the last one out tears it down.
      const then =
        gateway.config.etcdEndpoints.length > 0
          ? `handing the fleet to a replica that stays (the last one out: ${alone})`
          : alone;
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
