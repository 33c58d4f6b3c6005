import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/resolve.js';
import { checkTask, loadTask, localUnsupportedKeys, parseTask, taskPort } from '../../../src/provisioners/task.js';

const P = '/tasks/serve.yaml';

describe('parseTask', () => {
  it('reads the keys FlockServe uses and keeps the rest in raw', () => {
    const t = parseTask(
      [
        'name: vllm',
        'workdir: ../app',
        'setup: pip install vllm',
        'run: |',
        '  python -m vllm.entrypoints.openai.api_server --port 8000',
        'envs:',
        '  MODEL: mistral',
        '  MAX_LEN: 4096',
        '  DEBUG: false',
        'resources:',
        '  accelerators: A10G:1',
        '  ports: 8000',
        'service: {readiness_probe: /health}',
      ].join('\n'),
      P,
    );
    expect(t).toMatchObject({
      path: P,
      name: 'vllm',
      workdir: '/app',
      setup: 'pip install vllm',
      run: 'python -m vllm.entrypoints.openai.api_server --port 8000\n',
      envs: { MODEL: 'mistral', MAX_LEN: '4096', DEBUG: 'false' },
      ports: [8000],
    });
    expect(t.raw['service']).toEqual({ readiness_probe: '/health' });
  });

  it.each([
    ['8080', [8080]],
    ['"8080"', [8080]],
    ['"8000-8002"', [8000, 8001, 8002]],
    ['[8080, "9000-9001"]', [8080, 9000, 9001]],
    ['null', []],
  ])('resources.ports: %s → %j', (ports, want) => {
    expect(parseTask(`run: x\nresources:\n  ports: ${ports}\n`, P).ports).toEqual(want);
  });

  it('has no ports and no workdir when the task names none', () => {
    const t = parseTask('run: x', P);
    expect(t.ports).toEqual([]);
    expect(t.workdir).toBeUndefined();
    expect(t.envs).toEqual({});
  });

  it.each([
    ['run: [1, 2]', /run must be a string, got a list/],
    ['setup: 3', /setup must be a string, got number 3/],
    ['envs: [A]', /envs must be a mapping/],
    ['envs:\n  HF_TOKEN:\n', /envs\.HF_TOKEN has no value/],
    ['envs:\n  A: {b: 1}', /envs\.A must be a scalar/],
    ['resources: 4', /resources must be a mapping/],
    ['resources:\n  ports: "80-70"', /resources\.ports must be/],
    ['resources:\n  ports: 70000', /resources\.ports must be/],
    ['resources:\n  ports: "http"', /resources\.ports must be/],
    ['resources:\n  ports: 80.5', /resources\.ports must be/],
    ['- a\n- b', /top level must be a mapping, got a list/],
    ['', /is empty/],
    ['run: x\nrun: y', /invalid YAML at line 2/],
    ['name: a\nrun: "unterminated\n', /invalid YAML at line \d/],
  ])('%j fails: %s', (text, want) => {
    expect(() => parseTask(text, P)).toThrow(want);
    expect(() => parseTask(text, P)).toThrow(P);
    // A configuration error: the CLI exits 2 on it.
    expect(() => parseTask(text, P)).toThrow(ConfigError);
  });
});

describe('checkTask: what the provisioner needs, before the gateway listens', () => {
  const here = mkdtempSync(join(tmpdir(), 'fs-check-'));
  const at = (text: string) => parseTask(text, join(here, 'task.yaml'));
  // [task, provisioner, error or undefined]
  const cases: [string, string, RegExp | undefined][] = [
    ['run: serve', 'skypilot', undefined],
    ['run: serve', 'local', undefined],
    ['setup: pip install x', 'skypilot', /no run command/],
    ['setup: pip install x', 'local', /no run command/],
    ['run: "  "', 'local', /no run command/],
    ['setup: x', 'static', undefined],
    ['run: serve\nworkdir: ./nowhere', 'local', /workdir .*nowhere is not a directory/],
    ['run: serve\nworkdir: ./nowhere', 'skypilot', undefined],
    ['run: serve\nworkdir: .', 'local', undefined],
  ];
  it.each(cases)('%j with %s → %s', (text, provisioner, error) => {
    const check = () => checkTask(at(text), provisioner);
    if (error === undefined) expect(check).not.toThrow();
    else {
      expect(check).toThrow(error);
      expect(check).toThrow(ConfigError);
    }
  });
});

describe('loadTask', () => {
  it('resolves workdir against the YAML folder and names a missing file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fs-task-'));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 't.yaml'), 'run: echo hi\nworkdir: ..\n');
    const t = await loadTask(join(dir, 'sub', 't.yaml'));
    expect(t.workdir).toBe(resolve(dir));
    expect(t.path).toBe(join(dir, 'sub', 't.yaml'));
    await expect(loadTask(join(dir, 'nope.yaml'))).rejects.toThrow(`task ${join(dir, 'nope.yaml')}: no such file`);
    await expect(loadTask(dir)).rejects.toThrow(/is a directory/);
  });

  it('loads the local simulator example, whose workdir is the project root', async () => {
    const t = await loadTask('examples/serving_sim_local.yaml');
    expect(t.workdir).toBe(resolve('.'));
    expect(t.ports).toEqual([8000]);
    expect(t.run).toContain('dist/cli/flockserve-sim.js');
    expect(localUnsupportedKeys(t)).toEqual([]);
  });
});

describe('taskPort', () => {
  const withPorts = parseTask('run: x\nresources: {ports: [9000, 9001]}', P);
  const without = parseTask('run: x', P);
  it.each([
    ['--port wins', withPorts, 8080, 8080],
    ['--port 0 is a port', withPorts, 0, 0],
    ['first task port', withPorts, -1, 9000],
  ])('%s', (_label, task, cli, want) => {
    expect(taskPort(task, cli)).toBe(want);
  });
  it('fails when neither names a port', () => {
    expect(() => taskPort(without, -1)).toThrow(`no port: pass --port or set resources.ports in ${P}`);
    expect(() => taskPort(without, -1)).toThrow(ConfigError);
  });
});

describe('localUnsupportedKeys', () => {
  it.each([
    ['run: x', []],
    ['run: x\nnum_nodes: 1', []],
    ['run: x\nnum_nodes: 2', ['num_nodes']],
    [
      'run: x\nresources: {accelerators: "A100:8", cloud: aws, region: us-east-1, use_spot: true, ports: 80}',
      ['resources.accelerators', 'resources.cloud', 'resources.region', 'resources.use_spot'],
    ],
    ['run: x\nfile_mounts: {/data: s3://b}', ['file_mounts']],
  ])('%j → %j', (text, want) => {
    expect(localUnsupportedKeys(parseTask(text, P))).toEqual(want);
  });
});
