#!/usr/bin/env node
import { credentials, Metadata, status, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { GetStatusResponse, ListWorkersResponse, WatchEventsResponse } from '../gen/flockserve/v1/node_control.js';
import { NodeControlServiceClient, WorkerState, type Worker } from '../gen/flockserve/v1/node_control.js';
import { VERSION } from '../version.js';
import {
  eventJson,
  eventLine,
  stateName,
  statusJson,
  statusText,
  workersJson,
  workersTable,
} from './flockctl-format.js';

/** Exit codes, one per failure a script may want to tell apart. */
export const EXIT = {
  ok: 0,
  other: 1,
  usage: 2,
  unreachable: 3,
  unauthenticated: 4,
  nodeControlDisabled: 5,
  unknownWorker: 6,
} as const;

const EXIT_HELP = `
Exit codes:
  0  success
  1  any other failure (e.g. the fleet is at max_workers, a --wait that timed out or failed)
  2  usage error (bad flags or values, or values the gateway refused as invalid)
  3  the gateway is unreachable at --address
  4  the key is missing or wrong (--key, FLOCKSERVE_NODE_CONTROL_KEY)
  5  node control is disabled on the gateway (start it with --node_control_key)
  6  no worker has that name

Environment:
  FLOCKSERVE_NODE_CONTROL_KEY   the key, when --key is not given`;

/** The gateway's gRPC port in the quick start (HTTP 8080, gRPC the HTTP port + 1). */
const DEFAULT_ADDRESS = 'localhost:8081';

interface GlobalOptions {
  address: string;
  key?: string;
  tls?: boolean;
  ca?: string;
  timeout: number;
}

export interface Io {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
  readonly env: NodeJS.ProcessEnv;
}

/** A failure with its exit code; `main` prints the message and returns the code. */
class Exit extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function wholeNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError('expected a whole number ≥ 0');
  return n;
}

function seconds(value: string): number {
  const n = Number(value);
  if (!(n > 0)) throw new InvalidArgumentError('expected a number of seconds > 0');
  return n;
}

/** A gRPC failure → the exit code and message for it. */
export function exitFor(err: ServiceError, g: GlobalOptions): Exit {
  const catalogue = err.metadata?.get('flockserve-error-code')[0];
  const details = err.details || err.message;
  if (catalogue === 'node_control_disabled') return new Exit(EXIT.nodeControlDisabled, details);
  if (err.code === status.UNAUTHENTICATED) {
    const hint = g.key ? 'the key was not accepted' : 'no key given: pass --key or set FLOCKSERVE_NODE_CONTROL_KEY';
    return new Exit(EXIT.unauthenticated, `${details} (${hint})`);
  }
  if (catalogue === 'unknown_worker' || err.code === status.NOT_FOUND) return new Exit(EXIT.unknownWorker, details);
  if (catalogue === undefined && err.code === status.UNAVAILABLE && /Protocol error/i.test(details))
    return new Exit(EXIT.unreachable, notGrpc(g.address));
  if (catalogue === undefined && (err.code === status.UNAVAILABLE || err.code === status.DEADLINE_EXCEEDED))
    return new Exit(EXIT.unreachable, `cannot reach the gateway at ${g.address}: ${details}`);
  if (err.code === status.INVALID_ARGUMENT) return new Exit(EXIT.usage, details);
  return new Exit(EXIT.other, details);
}

/**
 * Something answered at `address`, but not in HTTP/2: gRPC's bare "Protocol error". Most often it
 * is the gateway's HTTP port, whose gRPC port is the next one by default (grpc_port -1).
 */
export function notGrpc(address: string): string {
  const m = /^(.*):(\d+)$/.exec(address);
  const next = m && Number(m[2]) < 65535 ? `${m[1]}:${Number(m[2]) + 1}` : undefined;
  return (
    `${address} answered, but not in gRPC (HTTP/2): this looks like the gateway's HTTP port. ` +
    `flockctl talks to its gRPC port, which is the HTTP port + 1 unless --grpc_port says otherwise` +
    (next ? ` (try --address ${next})` : '')
  );
}

function isServiceError(e: unknown): e is ServiceError {
  return e instanceof Error && typeof (e as Partial<ServiceError>).code === 'number';
}

/** Client, metadata and call helpers for one invocation. */
class Connection {
  readonly client: NodeControlServiceClient;
  readonly #global: GlobalOptions;

  constructor(g: GlobalOptions) {
    this.#global = g;
    let creds: ChannelCredentials = credentials.createInsecure();
    if (g.tls || g.ca) {
      let ca: Buffer | undefined;
      if (g.ca) {
        try {
          ca = readFileSync(g.ca);
        } catch (err) {
          throw new Exit(EXIT.usage, `cannot read --ca ${g.ca}: ${(err as Error).message}`);
        }
      }
      creds = credentials.createSsl(ca);
    }
    this.client = new NodeControlServiceClient(g.address, creds);
  }

  metadata(): Metadata {
    const md = new Metadata();
    if (this.#global.key) md.set('authorization', `Bearer ${this.#global.key}`);
    return md;
  }

  /** One unary call with the key and a deadline; gRPC failures become Exits. */
  call<Res>(
    invoke: (md: Metadata, opts: { deadline: Date }, cb: (err: ServiceError | null, res: Res) => void) => unknown,
  ): Promise<Res> {
    const deadline = new Date(Date.now() + this.#global.timeout * 1000);
    return new Promise((resolve, reject) =>
      invoke(this.metadata(), { deadline }, (err, res) => (err ? reject(exitFor(err, this.#global)) : resolve(res))),
    );
  }

  listWorkers(): Promise<ListWorkersResponse> {
    return this.call((md, o, cb) => this.client.listWorkers({}, md, o, cb));
  }

  close(): void {
    this.client.close();
  }
}

/**
 * Polls ListWorkers until `name` is where `done` says (true: success, false: failure,
 * undefined: keep waiting), or `waitTimeout` seconds pass.
 */
export async function waitForWorker(
  conn: Pick<Connection, 'listWorkers'>,
  name: string,
  waitTimeout: number,
  done: (w: Worker | undefined, seen: boolean) => boolean | undefined,
  what: string,
): Promise<void> {
  const deadline = Date.now() + waitTimeout * 1000;
  let seen = false;
  for (;;) {
    const { workers } = await conn.listWorkers();
    const w = workers.find((x) => x.name === name);
    seen ||= w !== undefined;
    const verdict = done(w, seen);
    if (verdict === true) return;
    if (verdict === false) throw new Exit(EXIT.other, `${name} is ${w ? stateName(w.state) : 'gone'}, not ${what}`);
    if (Date.now() > deadline) throw new Exit(EXIT.other, `${name} did not become ${what} within ${waitTimeout} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const gone = (w: Worker | undefined): boolean | undefined => (w === undefined ? true : undefined);
export const ready = (w: Worker | undefined, seen: boolean): boolean | undefined => {
  // A follower lists a worker the leader just added with the leader's next fleet write, which
  // may come after the leader's answer: unlisted before it was ever listed is not yet, not gone.
  if (w === undefined) return seen ? false : undefined;
  if (w.state === WorkerState.WORKER_STATE_READY) return true;
  const leaving = [
    WorkerState.WORKER_STATE_FAILED,
    WorkerState.WORKER_STATE_DRAINING,
    WorkerState.WORKER_STATE_TERMINATING,
  ];
  return leaving.includes(w.state) ? false : undefined;
};

function buildProgram(io: Io, setCode: (code: number) => void): Command {
  const program = new Command()
    .name('flockctl')
    .description("See and steer a FlockServe gateway's workers over gRPC (NodeControl).")
    .option('-a, --address <host:port>', "the gateway's gRPC address", DEFAULT_ADDRESS)
    .option('-k, --key <key>', 'node control key (default: $FLOCKSERVE_NODE_CONTROL_KEY)')
    .option('--tls', 'connect with TLS (system trust roots)')
    .option('--ca <file>', 'connect with TLS, trusting this PEM certificate (e.g. a self-signed one)')
    .option('--timeout <seconds>', 'deadline of each call', seconds, 10)
    .version(VERSION, '--version', 'print the version')
    .addHelpText('after', EXIT_HELP)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });

  /** Runs a command body with a connection; the body returns the exit code. */
  const run =
    <A extends unknown[]>(body: (conn: Connection, g: GlobalOptions, ...args: A) => Promise<number>) =>
    async (...args: A): Promise<void> => {
      const g = program.opts<GlobalOptions>();
      g.key ??= io.env['FLOCKSERVE_NODE_CONTROL_KEY'] || undefined;
      const conn = new Connection(g);
      try {
        setCode(await body(conn, g, ...args));
      } finally {
        conn.close();
      }
    };

  const sub = (spec: string, description: string): Command =>
    program.command(spec).description(description).addHelpText('after', EXIT_HELP).exitOverride();

  sub('status', "the gateway's status: workers, bounds, queue, policies, and the replicas and their leader")
    .option('--json', 'print the status as JSON (every field)')
    .action(
      run(async (conn, _g, opts: { json?: boolean }) => {
        const s = await conn.call<GetStatusResponse>((md, o, cb) => conn.client.getStatus({}, md, o, cb));
        io.out((opts.json ? JSON.stringify(statusJson(s), null, 2) : statusText(s)) + '\n');
        return EXIT.ok;
      }),
    );

  sub('workers', 'list the workers: name, state, URL, in flight/capacity, age, last probe, provisioner detail')
    .option('--json', 'print the workers as JSON for scripts: every field, states as the table names them')
    .action(
      run(async (conn, _g, opts: { json?: boolean }) => {
        const res = await conn.listWorkers();
        io.out((opts.json ? JSON.stringify(workersJson(res), null, 2) : workersTable(res.workers, Date.now())) + '\n');
        return EXIT.ok;
      }),
    );

  sub('add [name]', 'launch one more worker, named <prefix>-<n> (or just <n>), else the next free name')
    .option('--wait', 'wait until it is ready (exit 1 if it fails)')
    .option('--wait-timeout <seconds>', 'give up waiting after this long', seconds, 600)
    .action(
      run(async (conn, _g, name: string | undefined, opts: { wait?: boolean; waitTimeout: number }) => {
        const { worker } = await conn.call<{ worker?: Worker | undefined }>((md, o, cb) =>
          conn.client.addWorker(name === undefined ? {} : { name }, md, o, cb),
        );
        const w = worker!;
        io.out(`${w.name}: ${stateName(w.state)}\n`);
        if (opts.wait) {
          await waitForWorker(conn, w.name, opts.waitTimeout, ready, 'ready');
          io.out(`${w.name}: ready\n`);
        }
        return EXIT.ok;
      }),
    );

  const leave =
    (rpc: 'removeWorker' | 'drainWorker') =>
    async (
      conn: Connection,
      _g: GlobalOptions,
      name: string | undefined,
      opts: { wait?: boolean; waitTimeout: number },
    ): Promise<number> => {
      const { worker } = await conn.call<{ worker?: Worker | undefined }>((md, o, cb) =>
        rpc === 'drainWorker'
          ? conn.client.drainWorker({ name: name ?? '' }, md, o, cb)
          : conn.client.removeWorker(name === undefined ? {} : { name }, md, o, cb),
      );
      const w = worker!;
      io.out(`${w.name}: ${stateName(w.state)} (${w.inFlight} in flight); terminated once they finish\n`);
      if (opts.wait) {
        await waitForWorker(conn, w.name, opts.waitTimeout, gone, 'gone');
        io.out(`${w.name}: gone\n`);
      }
      return EXIT.ok;
    };

  sub('remove [name]', 'drain then terminate a worker (default: the least-loaded ready one); the fleet shrinks by one')
    .option('--wait', 'wait until it is gone')
    .option('--wait-timeout <seconds>', 'give up waiting after this long', seconds, 600)
    .action(run(leave('removeWorker')));

  sub(
    'drain <name>',
    'stop sending requests to a worker, let in-flight ones finish, terminate it; a replacement is launched',
  )
    .option('--wait', 'wait until it is gone')
    .option('--wait-timeout <seconds>', 'give up waiting after this long', seconds, 600)
    .action(run(leave('drainWorker')));

  sub('scale', 'change min_workers and/or max_workers at runtime; the autoscaler applies them at once')
    .option('--min <n>', 'new min_workers', wholeNumber)
    .option('--max <n>', 'new max_workers', wholeNumber)
    .action(
      run(async (conn, _g, opts: { min?: number; max?: number }) => {
        if (opts.min === undefined && opts.max === undefined) throw new Exit(EXIT.usage, 'give --min, --max or both');
        const res = await conn.call<{ minWorkers: number; maxWorkers: number }>((md, o, cb) =>
          conn.client.setScaleBounds({ minWorkers: opts.min, maxWorkers: opts.max }, md, o, cb),
        );
        io.out(`scale bounds: min ${res.minWorkers}, max ${res.maxWorkers}\n`);
        return EXIT.ok;
      }),
    );

  sub('watch', 'print worker state changes and autoscaler decisions as they happen, one line each (Ctrl-C stops)')
    .option('--json', 'one JSON object per line')
    .action(
      run(
        (conn, g, opts: { json?: boolean }) =>
          new Promise<number>((resolve, reject) => {
            const call = conn.client.watchEvents({}, conn.metadata());
            let stopping = false;
            const stop = (): void => {
              stopping = true;
              call.cancel();
            };
            process.once('SIGINT', stop);
            process.once('SIGTERM', stop);
            const finish = (fn: () => void): void => {
              process.off('SIGINT', stop);
              process.off('SIGTERM', stop);
              fn();
            };
            call.on('metadata', () => io.err(`watching ${g.address} (Ctrl-C to stop)\n`));
            call.on('data', (e: WatchEventsResponse) =>
              io.out((opts.json ? JSON.stringify(eventJson(e)) : eventLine(e)) + '\n'),
            );
            call.on('error', (err: ServiceError) =>
              finish(() => (stopping && err.code === status.CANCELLED ? resolve(EXIT.ok) : reject(exitFor(err, g)))),
            );
            call.on('end', () => finish(() => resolve(EXIT.ok)));
          }),
      ),
    );

  return program;
}

/** Runs flockctl with `argv` (without node and the script); returns the exit code. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => (code = c));
  if (argv.length === 0) {
    program.outputHelp();
    return EXIT.usage;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version print and "fail" with exit code 0.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof Exit) {
      io.err(`flockctl: ${err.message}\n`);
      return err.code;
    }
    if (isServiceError(err)) {
      const e = exitFor(err, program.opts<GlobalOptions>());
      io.err(`flockctl: ${e.message}\n`);
      return e.code;
    }
    io.err(`flockctl: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return EXIT.other;
  }
}

const invokedDirectly =
  process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  main(process.argv.slice(2), {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    env: process.env,
  }).then((code) => {
    process.exitCode = code;
  });
}
