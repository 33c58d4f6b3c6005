#!/usr/bin/env -S node --max-semi-space-size=64 --min-semi-space-size=64
// Semi-spaces of 64 MiB for the young generation (V8's default is 16): a request's objects live
// as long as its answer takes, and with 16 MiB the scavenger copies hundreds of in-flight
// requests' objects at every scavenge; at 256 concurrent 160 ms requests that shows in the p99
// (bench/results/datapath-profile.md measures both sizes). The size is fixed, not only capped:
// V8 otherwise doubles and halves the young generation between 1 and 64 MiB semi-spaces as the
// traffic changes, and the RSS steps up and down by tens of MiB with it (the soak in
// bench/results/reliability.md shows both). V8 sizes it only at startup, so it is set here, in
// the bin, which every launch goes through: `npm start`, an installed `flockserve`, the
// benchmarks.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/options.js';
import { ConfigError, helpText, resolveArgs } from '../config/resolve.js';
import type { FlockServe, StartPlan } from '../index.js';
import type { OtlpSettings } from '../telemetry/otel-env.js';
import { VERSION } from '../version.js';

const SUMMARY =
  'FlockServe: launches copies of a SkyPilot task as workers, load-balances OpenAI and TGI requests\n' +
  'across them over HTTP and gRPC, and autoscales the worker count to hold a p99 queue-wait SLO (--autoscaler slo,\n' +
  'the default; running-mean and flockserve-classic scale on the running mean of the queue length).\n' +
  'Subcommands: flockserve simulate --trace FILE [options] runs the autoscaler on a trace in virtual time (see simulate --help);\n' +
  'flockserve plan --trace FILE [options] sweeps fixed fleets, the clairvoyant bound and the policies over it (see plan --help).\n' +
  '  --check    validate the flags and the task, print what would run, and exit (0 valid, 2 invalid)\n' +
  '  --version  print the version\n' +
  'Exit codes: 0 stopped cleanly (or --check passed), 1 any other failure, 2 a usage or configuration error.';

/** Exit codes: a usage or configuration error is 2, any other failure 1. */
const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** What the gateway would start, for `--check`; `otlp`: where telemetry would export (otlpSettings). */
export function planText(config: Config, plan: StartPlan, otlp: OtlpSettings): string {
  const exported =
    config.metricsId < 0
      ? 'OTLP export off (metrics_id < 0)'
      : otlp.disabled
        ? 'OTLP export off (OTEL_SDK_DISABLED)'
        : `OTLP to ${otlp.metricsEndpoint} every ${otlp.exportInterval} s`;
  const run = (plan.task.run ?? '').trim().split('\n');
  const grpc = plan.grpcPort === 0 ? 'a free port' : String(plan.grpcPort);
  const rows: [string, string][] = [
    ['task', `${plan.task.path}${plan.task.name ? ` (${plan.task.name})` : ''}`],
    ['run', run.join('\n' + ' '.repeat(16))],
    [
      'provisioner',
      config.provisioner === 'static'
        ? `static: ${config.minWorkers} to ${config.maxWorkers} workers of ${config.workers.join(', ')}, ${config.workerCapacity} requests each`
        : `${config.provisioner}: ${config.minWorkers} to ${config.maxWorkers} workers, ${config.workerCapacity} requests each`,
    ],
    [
      'listen',
      `${plan.tls ? 'HTTPS' : 'HTTP'} ${config.host}:${plan.httpPort === 0 ? 'a free port' : plan.httpPort}, gRPC ${config.host}:${grpc}${plan.tls ? ' (TLS)' : ''}`,
    ],
    ['policies', `autoscaler ${config.autoscaler}, load balancer ${config.loadBalancer}`],
    ['node control', config.nodeControlKey ? 'on (bearer key set)' : 'off (no --node_control_key)'],
    [
      'api keys',
      config.apiKey.length > 0
        ? `${config.apiKey.length} (every inference and engine route needs one)`
        : 'none: inference and engine routes are open (no --api_key)',
    ],
    ['metrics', `GET /metrics; ${exported}`],
  ];
  if (plan.task.run === undefined) rows.splice(1, 1);
  return ['flockserve: configuration OK; nothing was started', ...rows.map(([k, v]) => `  ${k.padEnd(14)}${v}`)].join(
    '\n',
  );
}

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
    return EXIT.ok;
  }
  if (argv.includes('--version')) {
    process.stdout.write(VERSION + '\n');
    return EXIT.ok;
  }
  const checkOnly = argv.includes('--check');
  const fail = (err: unknown): number => {
    process.stderr.write(`flockserve: ${(err as Error).message}\n`);
    return err instanceof ConfigError ? EXIT.usage : EXIT.failure;
  };
  // The gateway's modules (HTTP, gRPC, telemetry) load only to run it: simulate and plan start without them.
  const { FlockServe: Gateway } = await import('../index.js');
  let gateway: FlockServe;
  try {
    gateway = new Gateway(resolveArgs(checkOnly ? argv.filter((a) => a !== '--check') : argv, process.env));
    if (checkOnly) {
      const plan = await gateway.check();
      // Loaded here, with the gateway: OpenTelemetry's resource detectors cost simulate and plan a start-up they never use.
      const { otlpSettings } = await import('../telemetry/otel-env.js');
      process.stdout.write(planText(gateway.config, plan, otlpSettings(gateway.config, process.env)) + '\n');
      return EXIT.ok;
    }
  } catch (err) {
    if (err instanceof ConfigError) return fail(err);
    throw err;
  }
  try {
    const { httpUrl, grpcAddress } = await gateway.run();
    process.stdout.write(`FlockServe listening on ${httpUrl} (HTTP) and ${grpcAddress} (gRPC)\n`);
  } catch (err) {
    const code = fail(err);
    await gateway.close().catch(() => undefined);
    return code;
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
        () => resolve(EXIT.ok),
        (err: unknown) => {
          process.stderr.write(`flockserve: shutdown failed: ${(err as Error).message}\n`);
          resolve(EXIT.failure);
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
