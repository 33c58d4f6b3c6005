/**
 * Property-based fuzzing of the gRPC methods (fast-check), as http-adapters.test.ts fuzzes the
 * HTTP routes: raw payloads sent to every method of InferenceService, NodeControlService and
 * Health over a real gRPC connection. Client garbage must end each call with a proper status
 * that names the client's fault (never INTERNAL, UNKNOWN, UNIMPLEMENTED, UNAVAILABLE, DATA_LOSS,
 * the 5xx of gRPC), within the call's deadline (never a hang), and the gateway keeps serving.
 */
import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChatCompletionRequest,
  CompletionRequest,
  EmbeddingsRequest,
  ForwardRequest,
  GenerateRequest,
} from '../../src/gen/flockserve/v1/inference.js';
import { runRequests, startScenario, type ScenarioEnv } from '../faults/harness.js';
import { FUZZ_GATEWAY } from './properties.js';

/** Cases per property; the suite runs this many of each. */
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 40);
/** A call still open after this is a hang. */
const PATIENCE_MS = 10_000;

/** gRPC's server-fault statuses: client garbage must never get one. */
const SERVER_FAULT = new Set<number>([
  status.UNKNOWN,
  status.INTERNAL,
  status.UNIMPLEMENTED,
  status.UNAVAILABLE,
  status.DATA_LOSS,
  status.DEADLINE_EXCEEDED,
]);

type Kind = 'unary' | 'stream';
const METHODS: readonly (readonly [string, Kind])[] = [
  ['/flockserve.v1.InferenceService/ChatCompletion', 'stream'],
  ['/flockserve.v1.InferenceService/Completion', 'stream'],
  ['/flockserve.v1.InferenceService/Generate', 'stream'],
  ['/flockserve.v1.InferenceService/Embeddings', 'unary'],
  ['/flockserve.v1.InferenceService/Forward', 'stream'],
  ['/flockserve.v1.NodeControlService/GetStatus', 'unary'],
  ['/flockserve.v1.NodeControlService/AddWorker', 'unary'],
  ['/flockserve.v1.NodeControlService/DrainWorker', 'unary'],
  ['/flockserve.v1.NodeControlService/SetScaleBounds', 'unary'],
  ['/flockserve.v1.NodeControlService/WatchEvents', 'stream'],
  ['/grpc.health.v1.Health/Check', 'unary'],
];
const INFERENCE = METHODS.slice(0, 5);

let env: ScenarioEnv;
let client: Client;
beforeAll(async () => {
  env = await startScenario({
    name: 'grpc fuzz',
    workers: ['--token-interval 1'],
    gateway: FUZZ_GATEWAY,
    shot: { stream: false, maxTokens: 1 },
    concurrency: 1,
  });
  client = new Client(env.grpcAddress, credentials.createInsecure());
});
afterAll(async () => {
  client?.close();
  await env?.close();
});

const identity = (b: Buffer): Buffer => b;

/** Sends `payload` as the request message of `method`; resolves with the status the call ended with. */
function call(method: string, kind: Kind, payload: Buffer): Promise<{ code: number; details: string }> {
  const options = { deadline: Date.now() + PATIENCE_MS };
  return new Promise((resolve) => {
    if (kind === 'unary') {
      client.makeUnaryRequest(
        method,
        identity,
        identity,
        payload,
        new Metadata(),
        options,
        (err: ServiceError | null) =>
          resolve(err ? { code: err.code, details: err.details } : { code: status.OK, details: '' }),
      );
      return;
    }
    const c = client.makeServerStreamRequest(method, identity, identity, payload, new Metadata(), options);
    c.on('data', () => {});
    c.on('error', (err: ServiceError) => resolve({ code: err.code, details: err.details }));
    c.on('end', () => resolve({ code: status.OK, details: '' }));
  });
}

/** Throws unless the call ended with a status that is not a server fault. */
function expectClientFaultOrOk(method: string, a: { code: number; details: string }): void {
  if (SERVER_FAULT.has(a.code)) {
    const inFlight = env?.gw.status().currentQueueLength;
    throw new Error(`${method} ended with ${status[a.code]}: ${a.details} (requests in flight: ${inFlight})`);
  }
}

// ---- payloads ------------------------------------------------------------------------

const varint = (n: number): number[] => {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
};
const tag = (field: number, wire: number): number[] => varint((field << 3) | wire);
const lengthDelimited = (field: number, bytes: number[] | Buffer): number[] => [
  ...tag(field, 2),
  ...varint(bytes.length),
  ...bytes,
];

/** A valid message of each inference method, to be broken. */
const VALID: readonly Buffer[] = [
  Buffer.from(
    ChatCompletionRequest.encode(
      ChatCompletionRequest.fromPartial({
        model: 'sim',
        messages: [{ role: 'user', content: { $case: 'text', value: 'hi' } }],
        maxTokens: 1,
        extra: { top_k: 3, nested: { a: [1, 'b', null] } },
      }),
    ).finish(),
  ),
  Buffer.from(CompletionRequest.encode(CompletionRequest.fromPartial({ prompt: 'hi', maxTokens: 1 })).finish()),
  Buffer.from(
    GenerateRequest.encode(GenerateRequest.fromPartial({ inputs: 'hi', parameters: { maxNewTokens: 1 } })).finish(),
  ),
  Buffer.from(EmbeddingsRequest.encode(EmbeddingsRequest.fromPartial({ input: 'hi' })).finish()),
  Buffer.from(ForwardRequest.encode(ForwardRequest.fromPartial({ method: 'GET', path: '/v1/models' })).finish()),
];

/**
 * A google.protobuf.Struct nested `depth` levels ({"a": {"a": ...}}) as the `extra` field (15)
 * of a message. Every level only prefixes the one inside it (Struct.fields → the map entry's key
 * "a" and value → Value.struct_value), so the prefixes are computed from the inside out and
 * joined once: linear in the depth.
 */
function deepExtra(depth: number): Buffer {
  const prefixes: Buffer[] = [];
  let inner = 0; // bytes of the Struct inside
  for (let i = 0; i < depth; i++) {
    const value = [...tag(5, 2), ...varint(inner)]; // Value.struct_value
    const valueLength = value.length + inner;
    const entry = [...lengthDelimited(1, Buffer.from('a')), ...tag(2, 2), ...varint(valueLength)];
    const entryLength = entry.length + valueLength;
    const struct = [...tag(1, 2), ...varint(entryLength)]; // Struct.fields
    prefixes.push(Buffer.from([...struct, ...entry, ...value]));
    inner = struct.length + entryLength;
  }
  return Buffer.concat([Buffer.from([...tag(15, 2), ...varint(inner)]), ...prefixes.reverse()]);
}

const method = fc.constantFrom(...METHODS);
const inferenceMethod = fc.constantFrom(...INFERENCE.map((m, i) => [m[0], m[1], i] as const));

interface Property {
  readonly name: string;
  readonly arbitrary: fc.Arbitrary<readonly [string, Kind, Buffer]>;
}

const PROPERTIES: readonly Property[] = [
  {
    name: 'raw garbage to every method',
    arbitrary: fc
      .tuple(method, fc.uint8Array({ maxLength: 2048 }))
      .map(([[m, k], b]) => [m, k, Buffer.from(b)] as const),
  },
  {
    name: 'truncated messages',
    arbitrary: fc
      .tuple(inferenceMethod, fc.nat())
      .map(([[m, k, i], at]) => [m, k, VALID[i]!.subarray(0, at % VALID[i]!.length)] as const),
  },
  {
    name: 'byte-flipped messages',
    arbitrary: fc
      .tuple(
        inferenceMethod,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 8 }),
      )
      .map(([[m, k, i], flips]) => {
        const b = Buffer.from(VALID[i]!);
        for (const [at, x] of flips) b[at % b.length]! ^= x;
        return [m, k, b] as const;
      }),
  },
  {
    name: 'wrong wire types and unknown fields',
    arbitrary: fc
      .tuple(
        method,
        fc.array(
          fc.tuple(fc.integer({ min: 1, max: 30 }), fc.constantFrom(0, 1, 2, 5), fc.uint8Array({ maxLength: 40 })),
          { maxLength: 12 },
        ),
      )
      .map(([[m, k], fields]) => {
        const bytes: number[] = [];
        for (const [f, wire, data] of fields) {
          if (wire === 0) bytes.push(...tag(f, 0), ...varint(data.length * 997));
          else if (wire === 1) bytes.push(...tag(f, 1), ...[...data, 0, 0, 0, 0, 0, 0, 0, 0].slice(0, 8));
          else if (wire === 5) bytes.push(...tag(f, 5), ...[...data, 0, 0, 0, 0].slice(0, 4));
          else bytes.push(...lengthDelimited(f, Buffer.from(data)));
        }
        return [m, k, Buffer.from(bytes)] as const;
      }),
  },
  {
    name: 'huge repeated fields',
    arbitrary: fc
      .tuple(fc.integer({ min: 1_000, max: 40_000 }), fc.constantFrom('messages', 'stop', 'empty messages'))
      .map(([n, what]) => {
        const message = { role: 'user', content: { $case: 'text' as const, value: 'x' } };
        const req = ChatCompletionRequest.create({
          maxTokens: 1,
          messages: what === 'stop' ? [message] : Array(n).fill(what === 'messages' ? message : {}),
          stop: what === 'stop' ? Array(n).fill('s') : [],
        });
        const bytes = Buffer.from(ChatCompletionRequest.encode(req).finish());
        return ['/flockserve.v1.InferenceService/ChatCompletion', 'stream' as Kind, bytes] as const;
      }),
  },
  {
    name: 'deep Structs in extra',
    arbitrary: fc
      .tuple(inferenceMethod, fc.integer({ min: 1, max: 8_000 }))
      .map(([[m, k, i], depth]) => [m, k, Buffer.concat([VALID[i]!, deepExtra(depth)])] as const),
  },
  {
    name: 'well-typed messages with arbitrary values',
    arbitrary: fc
      .record({
        model: fc.string(),
        role: fc.string(),
        text: fc.string({ maxLength: 200 }),
        maxTokens: fc.option(fc.nat(), { nil: undefined }),
        temperature: fc.option(fc.double(), { nil: undefined }),
        stream: fc.boolean(),
        user: fc.option(fc.string(), { nil: undefined }),
        extra: fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }),
      })
      .map(({ role, text, extra, ...rest }) => {
        const req = ChatCompletionRequest.fromPartial({
          ...rest,
          messages: [{ role, content: { $case: 'text', value: text } }],
          extra: extra as Record<string, unknown>,
        });
        return [
          '/flockserve.v1.InferenceService/ChatCompletion',
          'stream' as Kind,
          Buffer.from(ChatCompletionRequest.encode(req).finish()),
        ] as const;
      }),
  },
  {
    name: 'Forward with arbitrary methods, paths and headers',
    arbitrary: fc
      .record({
        method: fc.oneof(fc.constantFrom('GET', 'POST', 'CONNECT', 'TRACE', 'get', 'BAD METHOD', ''), fc.string()),
        path: fc.oneof(fc.constantFrom('/v1/models', '/nope', '/v1/chat/completions', '//x', '/a b'), fc.string()),
        headers: fc.dictionary(
          fc.oneof(
            fc.constantFrom('expect', 'content-length', 'host', 'upgrade', 'transfer-encoding', 'x ok'),
            fc.string({ maxLength: 12 }),
          ),
          fc.string({ maxLength: 20 }),
          { maxKeys: 3 },
        ),
        body: fc.uint8Array({ maxLength: 200 }),
      })
      .map(
        ({ body, ...r }) =>
          [
            '/flockserve.v1.InferenceService/Forward',
            'stream' as Kind,
            Buffer.from(ForwardRequest.encode(ForwardRequest.fromPartial({ ...r, body: Buffer.from(body) })).finish()),
          ] as const,
      ),
  },
];

describe('fuzzing the gRPC methods', () => {
  it.each(PROPERTIES.map((p) => [p.name, p] as const))('%s', async (_name, p) => {
    await fc.assert(
      fc.asyncProperty(p.arbitrary, async ([m, k, payload]) => expectClientFaultOrOk(m, await call(m, k, payload))),
      { numRuns: RUNS },
    );
  });

  it('the check can fail: a worker that is gone is a server fault', async () => {
    const ok = await call(INFERENCE[0]![0], 'stream', VALID[0]!);
    expect(ok.code).toBe(status.OK);
    expect(() => expectClientFaultOrOk('x', { code: status.UNAVAILABLE, details: 'gone' })).toThrow(/UNAVAILABLE/);
  });

  it('the gateway still serves after the fuzzing, with nothing left in flight', async () => {
    const after = await runRequests(env.url, { stream: true, maxTokens: 3 }, 4, 2);
    expect(after.ok).toBe(4);
    expect(env.gw.status().currentQueueLength).toBe(0);
    expect(env.gw.gateway?.service.inFlight).toBe(0);
  });
});
