/**
 * Stalled streams: N streaming chat completions whose clients read the first chunk, then
 * nothing for --stall seconds, then everything; over HTTP (SSE) and over gRPC (ChatCompletion) in
 * two connection layouts, each on a fresh gateway process over fresh simulator workers, in one
 * run. Per transport:
 *
 *   - RSS growth per stalled stream: the gateway's RSS at the end of the stall less its RSS
 *     before the streams opened (after a forced GC), over N; beside it the live JavaScript heap
 *     and the buffers outside it (after a forced GC at the same moment);
 *   - every stream complete (OpenAI `[DONE]`, gRPC status OK) and exact (its text equals the
 *     text of the same request read without a stall);
 *   - the RSS --after seconds later, against the start, before and after a forced GC;
 *   - the kernel memory of the sockets around the gateway at the end of the stall (`ss -tnm`):
 *     what a stalled client leaves in socket queues is memory of the gateway's host too, outside
 *     its RSS (an HTTP answer the client does not read sits in the gateway's send queue and the
 *     client's receive queue; a gRPC one is held back by HTTP/2 flow control instead).
 *
 *   npm run build && node node_modules/.bin/vite-node bench/stalled-streams.ts \
 *     [--streams 1000] [--stall 30] [--after 60] [--tokens 3000] [--token-interval 5] [--workers 4] \
 *     [--transports http,grpc,grpc-conn-per-stream] [--grpc-streams-per-connection 1000]
 *     [--out bench/results/stalled-streams.md] [--section stalled-streams] [--heap-snapshots DIR] [--gateway-env K=V,...]
 *     [--read-timeout 300]
 *
 * A stalled HTTP client pauses its socket (HTTP/1.1, one connection per stream); a stalled gRPC
 * client pauses its HTTP/2 stream (test/helpers/raw-grpc.ts): both stop granting the gateway
 * window, as a wedged client does. `grpc` puts --grpc-streams-per-connection streams on each
 * HTTP/2 connection, as a grpc-js or grpc-go channel multiplexes its calls on one connection
 * (the default: one connection for up to the gateway's grpc_max_concurrent_streams);
 * `grpc-conn-per-stream` opens one connection per stream, as that many separate clients do. The gateway is `flockserve --provisioner static` as its bin runs it, plus
 * --expose-gc and bench/lib/memory-probe.mjs (heap and buffer figures over IPC).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import http2 from 'node:http2';
import { OPTIONS } from '../src/config/options.js';
import { ChatCompletionRequest, ChatCompletionResponse } from '../src/gen/flockserve/v1/inference.js';
import { rawGrpcCall } from '../test/helpers/raw-grpc.js';
import { startGateway, startSim, type GatewayMemory, type GatewayProcess } from './lib/fleet.mjs';
import { writeSection } from './lib/sections.mjs';
import { proxySocketMemory, type ProxySocketMemory } from './lib/socket-memory.mjs';

const ROOT = join(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '1000' },
    stall: { type: 'string', default: '30' },
    after: { type: 'string', default: '60' },
    tokens: { type: 'string', default: '3000' },
    'token-interval': { type: 'string', default: '5' },
    workers: { type: 'string', default: '4' },
    transports: { type: 'string', default: 'http,grpc,grpc-conn-per-stream' },
    'grpc-streams-per-connection': { type: 'string', default: String(OPTIONS.grpc_max_concurrent_streams.default) },
    out: { type: 'string', default: join(ROOT, 'bench/results/stalled-streams.md') },
    // Write the gateway's heap snapshots (start, stalled, after) to this folder.
    'heap-snapshots': { type: 'string' },
    // KEY=VALUE,... added to the gateway's environment (e.g. MALLOC_ARENA_MAX=2, to see what glibc keeps).
    'gateway-env': { type: 'string', default: '' },
    'read-timeout': { type: 'string', default: '300' },
    // The section of --out the table goes in: a run with other settings keeps its own beside the main one.
    section: { type: 'string', default: 'stalled-streams' },
  },
});
const snapshot = (transport: Transport, when: string): { snapshot?: string } =>
  values['heap-snapshots'] ? { snapshot: join(values['heap-snapshots'], `${transport}-${when}.heapsnapshot`) } : {};
const N = Number(values.streams);
const STALL_S = Number(values.stall);
const AFTER_S = Number(values.after);
const TOKENS = Number(values.tokens);
const WORKERS = Number(values.workers);
const READ_TIMEOUT_S = Number(values['read-timeout']);
const TRANSPORTS = ['http', 'grpc', 'grpc-conn-per-stream'] as const;
type Transport = (typeof TRANSPORTS)[number];
const transports = values.transports.split(',') as Transport[];
for (const t of transports)
  if (!TRANSPORTS.includes(t)) throw new Error(`--transports: ${t} is not one of ${TRANSPORTS.join(', ')}`);
const PER_CONNECTION = Number(values['grpc-streams-per-connection']);
// More calls on a connection than the gateway lets run at once would wait in the client, unstalled.
if (!(PER_CONNECTION >= 1 && PER_CONNECTION <= OPTIONS.grpc_max_concurrent_streams.default))
  throw new Error(
    `--grpc-streams-per-connection: 1 to ${OPTIONS.grpc_max_concurrent_streams.default} (the gateway's grpc_max_concurrent_streams)`,
  );
const LABELS: Record<Transport, string> = {
  http: 'HTTP (SSE)',
  grpc: `gRPC, ${Math.min(PER_CONNECTION, N)} streams per connection`,
  'grpc-conn-per-stream': 'gRPC, a connection per stream',
};

const log = (...a: unknown[]): void => console.log(new Date().toISOString().slice(11, 19), ...a);
const MiB = (bytes: number): number => bytes / 2 ** 20;

interface Outcome {
  text: string;
  complete: boolean;
  hung?: boolean;
  /** Why it did not complete, where the client was told. */
  failure?: string;
}

/** One stream as its client sees it. */
interface Stream {
  readonly first: Promise<void>;
  pause(): void;
  resume(): void;
  /**
   * At its end: its text and whether it ended cleanly ([DONE] / status OK), read when called
   * (after the drain: parsing while the streams drain would slow the client that reads them).
   */
  readonly done: Promise<() => Outcome>;
  /** What it has received so far: bytes (HTTP) or messages (gRPC). */
  received(): number;
}

const prompt = 'Tell me a long story.';

function httpStream(url: string): Stream {
  const body = JSON.stringify({
    model: 'sim',
    messages: [{ role: 'user', content: prompt }],
    max_tokens: TOKENS,
    stream: true,
  });
  let res: IncomingMessage | undefined;
  let bytes = 0;
  let gotFirst: () => void = () => {};
  const first = new Promise<void>((r) => (gotFirst = r));
  const done = new Promise<() => Outcome>((resolve) => {
    const req = httpRequest(
      `${url}/v1/chat/completions`,
      {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (r) => {
        res = r;
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => {
          chunks.push(c);
          bytes += c.length;
          gotFirst();
        });
        r.on('end', () => resolve(() => sseText(r.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))));
        r.on('error', (err) =>
          resolve(() => ({ text: '', complete: false, failure: `response error: ${err.message}` })),
        );
      },
    );
    req.on('error', () => {
      gotFirst();
      resolve(() => ({ text: '', complete: false }));
    });
    req.end(body);
  });
  return { first, done, pause: () => res?.pause(), resume: () => res?.resume(), received: () => bytes };
}

function sseText(status: number, raw: string): Outcome {
  let text = '';
  let complete = false;
  let error: string | undefined;
  for (const event of raw.split('\n\n')) {
    if (!event.startsWith('data: ')) continue;
    const data = event.slice(6);
    if (data === '[DONE]') {
      complete = true;
      continue;
    }
    const o = JSON.parse(data) as { error?: unknown; choices?: { delta?: { content?: string } }[] };
    if (o.error) error = JSON.stringify(o.error).slice(0, 200);
    text += o.choices?.[0]?.delta?.content ?? '';
  }
  const failure =
    status !== 200 ? `status ${status}` : error ? `error event ${error}` : complete ? undefined : 'no [DONE]';
  return { text, complete: failure === undefined, ...(failure ? { failure } : {}) };
}

function grpcStream(address: string, session?: http2.ClientHttp2Session): Stream {
  const req: ChatCompletionRequest = {
    model: 'sim',
    messages: [{ role: 'user', content: { $case: 'text', value: prompt } }],
    maxTokens: TOKENS,
    stream: true,
    stop: [],
  };
  const call = rawGrpcCall(
    address,
    '/flockserve.v1.InferenceService/ChatCompletion',
    ChatCompletionRequest.encode(req).finish(),
    // Decoded once the drain is over (done), as the HTTP streams are parsed.
    (b) => b,
    session,
  );
  return {
    first: call.first,
    pause: call.pause,
    resume: call.resume,
    received: call.received,
    done: call.done.then(({ messages, status, details }) => () => ({
      text: messages
        .map((b) => {
          const c = ChatCompletionResponse.decode(b).choices[0]?.delta?.content;
          return c?.$case === 'text' ? c.value : '';
        })
        .join(''),
      complete: status === 0,
      ...(status === 0 ? {} : { failure: `status ${status}: ${details}` }),
    })),
  };
}

interface PhaseResult {
  transport: Transport;
  rss0: number;
  heap0: GatewayMemory;
  rssPeak: number;
  rssStalled: number;
  /** Answers still running at the gateway at the end of the stall (its current_queue_length). */
  heldAtStall: number;
  heapStalled: GatewayMemory;
  /** Kernel memory of the sockets around the gateway, before the streams and at the end of the stall. */
  sockets0: ProxySocketMemory;
  socketsStalled: ProxySocketMemory;
  complete: number;
  exact: number;
  rssAfter: number;
  rssAfterGc: number;
  heapAfter: GatewayMemory;
  fds0: number;
  fdsAfter: number;
  stallSeconds: number;
  /** From the first stream's opening to the resume: how long the earliest streams went unread. */
  longestStallSeconds: number;
  /** Streams with no end READ_TIMEOUT_S after the resume. */
  hung: number;
  /** From the resume to the end of the last stream that ended, s. */
  drainSeconds: number;
}

async function phase(transport: Transport): Promise<PhaseResult> {
  log(`${transport}: starting ${WORKERS} workers and a gateway`);
  const seqs = Math.ceil(N / WORKERS) + 16;
  // A step's token budget holds a decode of every sequence (the simulator, as vLLM, refuses less).
  const budget = Math.max(2048, seqs);
  const sims = await Promise.all(
    Array.from({ length: WORKERS }, () =>
      startSim([
        ...['--token-interval', values['token-interval'], '--max-num-seqs', String(seqs)],
        ...['--max-num-batched-tokens', String(budget)],
      ]),
    ),
  );
  const gw: GatewayProcess = await startGateway({
    workers: sims,
    env: Object.fromEntries(
      values['gateway-env']
        .split(',')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    ),
    args: [
      '--min_workers',
      String(WORKERS),
      '--max_workers',
      String(WORKERS),
      '--worker_capacity',
      String(Math.ceil(N / WORKERS) + 16),
      '--max_queue_length',
      String(N * 2),
      // The held streams are what is measured, however long the stall: the gateway must not cut them.
      '--client_send_timeout',
      '0',
    ],
  });
  // The stalled streams' shared HTTP/2 connections (transport grpc), one per PER_CONNECTION streams.
  const sessions: http2.ClientHttp2Session[] = [];
  const sessionFor = (i: number): http2.ClientHttp2Session => {
    const k = Math.floor(i / PER_CONNECTION);
    if (!sessions[k]) {
      // The client's own buffers for its paused streams may exceed node's 10 MB default.
      sessions[k] = http2.connect(`http://${gw.grpcAddress}`, { maxSessionMemory: 4096 });
      sessions[k].on('error', () => {});
    }
    return sessions[k];
  };
  const open = (i?: number): Stream =>
    transport === 'http'
      ? httpStream(gw.url)
      : grpcStream(gw.grpcAddress, transport === 'grpc' && i !== undefined ? sessionFor(i) : undefined);
  try {
    // The reference: the same request read as it comes. It also warms the gateway up.
    const reference = (await open().done)();
    if (!reference.complete) throw new Error(`${transport}: the unstalled reference did not complete`);
    await Promise.all(Array.from({ length: 20 }, () => open().done));
    const heap0 = await gw.memory({ gc: true, ...snapshot(transport, 'start') });
    const rss0 = gw.rssMiB();
    const fds0 = gw.fds();
    const socketsAround = (): ProxySocketMemory =>
      proxySocketMemory(
        [new URL(gw.url).port, gw.grpcAddress.slice(gw.grpcAddress.lastIndexOf(':') + 1)].map(Number),
        sims.map((sim) => sim.port),
      );
    const sockets0 = socketsAround();
    log(
      `${transport}: start RSS ${rss0.toFixed(1)} MiB, heap ${MiB(heap0.heapUsed).toFixed(1)} MiB; opening ${N} streams`,
    );

    const streams: Stream[] = [];
    const firstOpened = performance.now();
    for (let i = 0; i < N; i += 100) {
      const batch = Array.from({ length: Math.min(100, N - i) }, (_, j) => open(i + j));
      streams.push(...batch);
      await Promise.all(batch.map((s) => s.first.then(() => s.pause())));
    }
    const stallStart = performance.now();
    log(`${transport}: ${N} streams open and stalled; holding ${STALL_S} s`);
    let rssPeak = gw.rssMiB();
    while (performance.now() - stallStart < STALL_S * 1000) {
      await sleep(1000);
      rssPeak = Math.max(rssPeak, gw.rssMiB());
    }
    const rssStalled = gw.rssMiB();
    const heldAtStall = (await gw.status()).current_queue_length;
    const socketsStalled = socketsAround();
    const heapStalled = await gw.memory({ gc: true, ...snapshot(transport, 'stalled') });
    const stallSeconds = (performance.now() - stallStart) / 1000;
    log(`${transport}: stalled RSS ${rssStalled.toFixed(1)} MiB (peak ${rssPeak.toFixed(1)}); resuming`);
    for (const s of streams) s.resume();
    // The first streams stalled longest: from their opening (the batches open one after another).
    const longestStallSeconds = (performance.now() - firstOpened) / 1000;
    // A stream that never ends is a finding, not a reason for the benchmark to hang: it is
    // counted as hung once READ_TIMEOUT_S has passed since the resume.
    const hung = (): Outcome => ({ text: '', complete: false, hung: true });
    const resumed = performance.now();
    let lastEnd = resumed;
    for (const s of streams) void s.done.then(() => (lastEnd = performance.now()));
    // Progress while they drain: how much the streams not yet ended have received (a stream
    // that gains nothing is stuck; one that gains slowly is starved).
    const progress = setInterval(() => {
      const open = streams.filter((_, i) => !ended[i]).map((s) => s.received());
      if (open.length === 0) return;
      open.sort((a, b) => a - b);
      log(
        `${transport}: ${open.length} streams open, received (${transport === 'http' ? 'bytes' : 'messages'}) min ${open[0]} median ${open[open.length >> 1]} max ${open[open.length - 1]}`,
      );
    }, 20_000);
    const ended = streams.map(() => false);
    streams.forEach((s, i) => void s.done.then(() => (ended[i] = true)));
    const deadline = sleep(READ_TIMEOUT_S * 1000, hung);
    const results = (await Promise.all(streams.map((s) => Promise.race([s.done, deadline])))).map((r) => r());
    clearInterval(progress);
    const drainSeconds = (lastEnd - resumed) / 1000;
    const failures = new Map<string, number>();
    for (const r of results) if (r.failure) failures.set(r.failure, (failures.get(r.failure) ?? 0) + 1);
    for (const [failure, count] of failures) log(`${transport}: ${count} streams failed: ${failure}`);
    // The shared connections close with their last call, as a channel's when its client is done.
    for (const s of sessions) s.close();
    const hungCount = results.filter((r) => r.hung).length;
    const complete = results.filter((r) => r.complete).length;
    const exact = results.filter((r) => r.complete && r.text === reference.text).length;
    log(
      `${transport}: ${complete}/${N} complete, ${exact}/${N} exact, ${hungCount} hung; watching the RSS for ${AFTER_S} s`,
    );
    await sleep(AFTER_S * 1000);
    const rssAfter = gw.rssMiB();
    const heapAfter = await gw.memory({ gc: true, ...snapshot(transport, 'after') });
    const rssAfterGc = gw.rssMiB();
    const fdsAfter = gw.fds();
    log(`${transport}: RSS ${rssAfter.toFixed(1)} MiB a minute after (${rssAfterGc.toFixed(1)} after a forced GC)`);
    return {
      transport,
      rss0,
      heap0,
      rssPeak,
      rssStalled,
      heldAtStall,
      heapStalled,
      sockets0,
      socketsStalled,
      complete,
      exact,
      rssAfter,
      rssAfterGc,
      heapAfter,
      fds0,
      fdsAfter,
      stallSeconds,
      longestStallSeconds,
      hung: hungCount,
      drainSeconds,
    };
  } finally {
    for (const s of sessions) s.destroy();
    await gw.stop();
    await Promise.all(sims.map((s) => s.stop()));
  }
}

function render(rows: PhaseResult[]): string {
  const f = (x: number, d = 1): string => x.toFixed(d);
  const perStream = (r: PhaseResult): number => ((r.rssStalled - r.rss0) * 1024) / N;
  const http = rows.find((r) => r.transport === 'http');
  const L = [
    'Command (after `npm run build`):',
    '',
    '```',
    `node node_modules/.bin/vite-node bench/stalled-streams.ts --streams ${N} --stall ${STALL_S} --after ${AFTER_S} --tokens ${TOKENS} --token-interval ${values['token-interval']} --workers ${WORKERS} --transports ${transports.join(',')}${transports.includes('grpc') ? ` --grpc-streams-per-connection ${PER_CONNECTION}` : ''}${values['gateway-env'] ? ` --gateway-env ${values['gateway-env']}` : ''}${values.section === 'stalled-streams' ? '' : ` --section ${values.section}`}`,
    '```',
    '',
    `Run ${new Date().toISOString()}, Node ${process.version}. ${N} streaming chat completions of ${TOKENS} tokens`,
    `(${values['token-interval']} ms apart) over ${WORKERS} simulator workers; each client reads the first chunk, then nothing`,
    `for ${STALL_S} s, then reads to the end. A fresh gateway process per transport. RSS from /proc; heap and`,
    "buffers from the gateway's process.memoryUsage() after two forced GCs (bench/lib/memory-probe.mjs).",
    '',
    `| | ${rows.map((r) => LABELS[r.transport]).join(' | ')} |`,
    `| --- |${rows.map(() => ' --: |').join('')}`,
  ];
  const cell = (fn: (r: PhaseResult) => string): string => rows.map(fn).join(' | ');
  const row = (name: string, fn: (r: PhaseResult) => string): void => {
    L.push(`| ${name} | ${cell(fn)} |`);
  };
  row('answers still at the gateway at the end of the stall', (r) => `${r.heldAtStall} of ${N}`);
  row('RSS before the streams (after GC), MiB', (r) => f(r.rss0));
  row('RSS at the end of the stall, MiB (peak)', (r) => `${f(r.rssStalled)} (${f(r.rssPeak)})`);
  row('**RSS growth per stalled stream, KiB**', (r) => `**${f(perStream(r))}**`);
  row('live heap per stalled stream (after GC), KiB', (r) => f((r.heapStalled.heapUsed - r.heap0.heapUsed) / 1024 / N));
  row('buffers outside the heap per stream (after GC), KiB', (r) =>
    f((r.heapStalled.external - r.heap0.external) / 1024 / N),
  );
  const sockets = (r: PhaseResult, side: keyof ProxySocketMemory): number =>
    (r.socketsStalled[side] - r.sockets0[side]) / 1024 / N;
  const gatewaySockets = (r: PhaseResult): number => sockets(r, 'proxyToClients') + sockets(r, 'proxyToUpstreams');
  row(
    "kernel memory of the gateway's sockets per stream, KiB: to clients + from workers",
    (r) => `${f(gatewaySockets(r))}: ${f(sockets(r, 'proxyToClients'))} + ${f(sockets(r, 'proxyToUpstreams'))}`,
  );
  row(
    "**on the gateway's host per stalled stream, KiB: RSS growth + its sockets**",
    (r) => `**${f(perStream(r) + gatewaySockets(r))}**`,
  );
  row(
    "kernel memory per stream elsewhere, KiB: the clients' sockets; the workers'",
    (r) => `${f(sockets(r, 'clients'))}; ${f(sockets(r, 'upstreams'))}`,
  );
  row('longest stall (the first streams opened), s', (r) => f(r.longestStallSeconds));
  row('complete / exact', (r) => `${r.complete} / ${r.exact} of ${N}`);
  row(`hung (no end ${READ_TIMEOUT_S} s after the resume)`, (r) => String(r.hung));
  row('last stream ended, s after the resume', (r) => f(r.drainSeconds));
  row(
    `RSS ${AFTER_S} s after, MiB (vs start)`,
    (r) => `${f(r.rssAfter)} (${f(((r.rssAfter - r.rss0) / r.rss0) * 100)} %)`,
  );
  row(
    '… after a forced GC, MiB (vs start)',
    (r) => `${f(r.rssAfterGc)} (${f(((r.rssAfterGc - r.rss0) / r.rss0) * 100)} %)`,
  );
  row(
    'heap used / total after, MiB (start)',
    (r) =>
      `${f(MiB(r.heapAfter.heapUsed))} / ${f(MiB(r.heapAfter.heapTotal))} (${f(MiB(r.heap0.heapUsed))} / ${f(MiB(r.heap0.heapTotal))})`,
  );
  row('anonymous memory after, MiB (start)', (r) => `${f(r.heapAfter.anonKiB / 1024)} (${f(r.heap0.anonKiB / 1024)})`);
  row('open fds before → after', (r) => `${r.fds0} → ${r.fdsAfter}`);
  if (http && http.heldAtStall < N) {
    L.push(
      '',
      `No ratio to HTTP: ${N - http.heldAtStall} of its ${N} answers had left the gateway whole before the stall ended (into the kernel's socket buffers), so the gateway held no stalled HTTP stream to compare with. Answers longer than those buffers hold both transports.`,
    );
  } else if (http) {
    const ratios = rows
      .filter((r) => r !== http)
      .map((r) => `${LABELS[r.transport]}: **${f(perStream(r) / perStream(http), 2)}**`);
    if (ratios.length > 0)
      L.push('', `Growth per stalled stream against HTTP's (target ≤ 1.20): ${ratios.join('; ')}.`);
    const hostRatios = rows
      .filter((r) => r !== http)
      .map(
        (r) =>
          `${LABELS[r.transport]}: ${f((perStream(r) + gatewaySockets(r)) / (perStream(http) + gatewaySockets(http)), 2)}`,
      );
    if (hostRatios.length > 0)
      L.push(
        '',
        `On the gateway's host (RSS growth and the kernel memory of its sockets), against HTTP's: ${hostRatios.join('; ')}.`,
      );
  }
  return L.join('\n') + '\n';
}

const rows: PhaseResult[] = [];
for (const t of transports) rows.push(await phase(t));
const md = render(rows);
// The run's table is its own section of the file: notes written around it stay.
if (!existsSync(values.out))
  writeFileSync(values.out, '# Stalled streams: memory per stream a client does not read, and what comes back\n');
writeSection(values.out, values.section, md);
console.log(md);
process.exit(0);
