import { createFileRegistry, fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bufCurl, jsonMessages } from '../../helpers/buf-curl.js';
import { ROOT, startGateway, type TestGateway } from '../../helpers/gateway.js';
import { reflect } from '../../helpers/grpc.js';

// Server reflection as strict clients use it, with no proto at hand: `buf curl` (a client
// nobody here wrote) lists, describes and calls; @bufbuild/protobuf's registry links the
// served files by their names and dependency lists, as grpcurl and buf do, and fails on a
// missing import or a made-up file name.

const KEY = 'reflection-key';
let t: TestGateway;

beforeAll(async () => {
  t = await startGateway({ minWorkers: 1, maxWorkers: 1, nodeControlKey: KEY });
});
afterAll(() => t?.close());

/** Every .proto under proto/, by the name it is imported by. */
function protoFiles(dir = join(ROOT, 'proto')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? protoFiles(join(dir, e.name))
      : e.name.endsWith('.proto')
        ? [relative(join(ROOT, 'proto'), join(dir, e.name))]
        : [],
  );
}

/** The files reflection serves for `symbol`: the one that declares it, then its dependencies. */
async function filesFor(symbol: string): Promise<FileDescriptorProto[]> {
  const res = await reflect(t.grpcAddress, { file_containing_symbol: symbol });
  const protos = (res['file_descriptor_response'] as { file_descriptor_proto: Buffer[] } | undefined)
    ?.file_descriptor_proto;
  if (!protos) throw new Error(`no descriptors for ${symbol}: ${JSON.stringify(res['error_response'])}`);
  return protos.map((b) => fromBinary(FileDescriptorProtoSchema, b));
}

describe('reflection: the real file descriptors', () => {
  it('each service comes in its own file under its proto/ name, with its imports served too', async () => {
    // [symbol, the file that declares it, its imports (served with it)]
    const cases: [string, string, string[]][] = [
      [
        'flockserve.v1.InferenceService',
        'flockserve/v1/inference.proto',
        ['flockserve/v1/common.proto', 'google/protobuf/struct.proto'],
      ],
      ['flockserve.v1.NodeControlService', 'flockserve/v1/node_control.proto', []],
      ['grpc.health.v1.Health', 'grpc/health/v1/health.proto', []],
    ];
    const served = new Set<string>();
    for (const [symbol, file, deps] of cases) {
      const files = await filesFor(symbol);
      expect(files[0]?.name).toBe(file);
      expect(files.map((f) => f.name).sort()).toEqual([file, ...deps].sort());
      expect(files[0]?.dependency.slice().sort()).toEqual(deps);
      for (const f of files) served.add(f.name);
    }
    // Every file of proto/ is served under its own name, and the well-known type as itself.
    expect([...served].sort()).toEqual([...protoFiles(), 'google/protobuf/struct.proto'].sort());
  });

  it('describe: the served files link on their own into every method with its types and streaming', async () => {
    const files = [
      ...(await filesFor('flockserve.v1.InferenceService')),
      ...(await filesFor('flockserve.v1.NodeControlService')),
      ...(await filesFor('grpc.health.v1.Health')),
    ];
    const byName = new Map(files.map((f) => [f.name, f]));
    // createFileRegistry throws when an import is not among the served files, or a type does not resolve.
    const registry = createFileRegistry(
      ...['flockserve/v1/inference.proto', 'flockserve/v1/node_control.proto', 'grpc/health/v1/health.proto'].map(
        (name) => createFileRegistry(byName.get(name)!, (dep) => byName.get(dep)),
      ),
    );
    // [service, method, input, output, server streaming]
    const methods: [string, string, string, string, boolean][] = [
      [
        'flockserve.v1.InferenceService',
        'ChatCompletion',
        'flockserve.v1.ChatCompletionRequest',
        'flockserve.v1.ChatCompletionResponse',
        true,
      ],
      [
        'flockserve.v1.InferenceService',
        'Embeddings',
        'flockserve.v1.EmbeddingsRequest',
        'flockserve.v1.EmbeddingsResponse',
        false,
      ],
      [
        'flockserve.v1.NodeControlService',
        'ListWorkers',
        'flockserve.v1.ListWorkersRequest',
        'flockserve.v1.ListWorkersResponse',
        false,
      ],
      [
        'grpc.health.v1.Health',
        'Watch',
        'grpc.health.v1.HealthCheckRequest',
        'grpc.health.v1.HealthCheckResponse',
        true,
      ],
    ];
    for (const [service, name, input, output, serverStreaming] of methods) {
      const m = registry.getService(service)?.methods.find((x) => x.name === name);
      expect(m, `${service}/${name}`).toBeDefined();
      expect([m!.input.typeName, m!.output.typeName, m!.methodKind === 'server_streaming']).toEqual([
        input,
        output,
        serverStreaming,
      ]);
    }
    // The Struct that carries unnamed parameters is the well-known type itself.
    const extra = registry.getMessage('flockserve.v1.ChatCompletionRequest')?.fields.find((f) => f.name === 'extra');
    expect(extra?.message?.typeName).toBe('google.protobuf.Struct');
    expect(extra?.message?.file.name).toBe('google/protobuf/struct');
  });
});

describe('buf curl, schema from reflection only', () => {
  it('lists the services', async () => {
    const r = await bufCurl(t.grpcAddress, ['--list-services']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n').sort()).toEqual([
      'flockserve.v1.InferenceService',
      'flockserve.v1.NodeControlService',
      'grpc.health.v1.Health',
    ]);
  });

  it('lists the methods of every service', async () => {
    const r = await bufCurl(t.grpcAddress, ['--list-methods']);
    expect(r.code).toBe(0);
    const listed = r.stdout.trim().split('\n');
    for (const m of [
      'flockserve.v1.InferenceService/ChatCompletion',
      'flockserve.v1.InferenceService/Completion',
      'flockserve.v1.InferenceService/Generate',
      'flockserve.v1.InferenceService/Embeddings',
      'flockserve.v1.InferenceService/Forward',
      'flockserve.v1.NodeControlService/ListWorkers',
      'flockserve.v1.NodeControlService/WatchEvents',
      'grpc.health.v1.Health/Check',
    ])
      expect(listed).toContain(m);
  });

  it('calls grpc.health.v1.Health/Check', async () => {
    const r = await bufCurl(t.grpcAddress, ['-d', '{}'], '/grpc.health.v1.Health/Check');
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(jsonMessages(r.stdout)).toEqual([{ status: 'SERVING' }]);
  });

  it('streams ChatCompletion: one message per token, text deltas, the finish reason last', async () => {
    const body = { model: 'sim', messages: [{ role: 'user', text: 'hi' }], max_tokens: 4, stream: true };
    const r = await bufCurl(
      t.grpcAddress,
      ['-d', JSON.stringify(body)],
      '/flockserve.v1.InferenceService/ChatCompletion',
    );
    expect([r.code, r.stderr]).toEqual([0, '']);
    const chunks = jsonMessages(r.stdout) as {
      choices: { delta?: { role?: string; text?: string }; finishReason?: string }[];
    }[];
    const deltas = chunks.map((c) => c.choices[0]?.delta ?? {});
    // vLLM's first chunk carries the role and empty content; the tokens follow without a role.
    expect(deltas[0]).toEqual({ role: 'assistant', text: '' });
    const tokens = deltas.slice(1);
    expect(tokens).toHaveLength(4);
    for (const d of tokens) {
      expect(d.role).toBeUndefined();
      expect(d.text).toMatch(/\S/);
    }
    expect(chunks.at(-1)?.choices[0]?.finishReason).toBe('length');
  });

  it('calls node control with the key as a header', async () => {
    const r = await bufCurl(
      t.grpcAddress,
      ['-H', `authorization: Bearer ${KEY}`, '-d', '{}'],
      '/flockserve.v1.NodeControlService/ListWorkers',
    );
    expect([r.code, r.stderr]).toEqual([0, '']);
    const [res] = jsonMessages(r.stdout) as { workers: { name: string; state: string }[] }[];
    expect(res?.workers.map((w) => [w.name, w.state])).toEqual([['skypilot-worker-1', 'WORKER_STATE_READY']]);
  });
});
