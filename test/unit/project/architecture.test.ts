import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// docs/architecture.md holds the rule of which room may import which; this test reads the rule
// from that page and checks every import of every file in src/ against it, so the page and the
// code cannot drift apart.

const ROOT = join(import.meta.dirname, '../../..');
const SRC = join(ROOT, 'src');

interface Import {
  /** The importing file, relative to src/ (e.g. core/pool.ts). */
  readonly from: string;
  /** A file relative to src/ (e.g. core/types.ts), or a package or node: module name. */
  readonly to: string;
  /** `import type`, or named imports that are all types: nothing is loaded. */
  readonly typeOnly: boolean;
  /** `import('...')`: loaded only when it runs. */
  readonly dynamic: boolean;
}

/** Every import and re-export of one TypeScript source, as the compiler parses it. */
export function importsOf(from: string, text: string): Import[] {
  const source = ts.createSourceFile(from, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found: Import[] = [];
  const add = (specifier: string, typeOnly: boolean, dynamic: boolean): void => {
    const to = specifier.startsWith('.')
      ? relative(SRC, resolve(SRC, dirname(from), specifier)).replace(/\.js$/, '.ts')
      : specifier;
    found.push({ from, to, typeOnly, dynamic });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const named = clause?.namedBindings;
      const allTypes =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined &&
            named !== undefined &&
            ts.isNamedImports(named) &&
            named.elements.length > 0 &&
            named.elements.every((e) => e.isTypeOnly)));
      add(node.moduleSpecifier.text, allTypes, false);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      add(node.moduleSpecifier.text, node.isTypeOnly, false);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] !== undefined &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      add(node.arguments[0].text, false, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The room of a file relative to src/: its top folder, or the file itself at the top (index.ts). */
export function roomOf(file: string): string {
  const slash = file.indexOf('/');
  return slash < 0 ? file : file.slice(0, slash);
}

/** The imports of `imports` that the rule (room → rooms or files it may import) does not allow. */
export function violations(imports: readonly Import[], rule: ReadonlyMap<string, readonly string[]>): string[] {
  return imports
    .filter((i) => i.to.endsWith('.ts'))
    .filter((i) => {
      const from = roomOf(i.from);
      const to = roomOf(i.to);
      if (from === to) return false;
      const allowed = rule.get(from);
      return allowed === undefined || !(allowed.includes(to) || allowed.includes(i.to));
    })
    .map((i) => `${i.from} imports ${i.to}`);
}

/** The rule as docs/architecture.md states it: each row's room and its "may import" cell. */
function ruleFromDocs(): Map<string, string[]> {
  const page = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8');
  const rule = new Map<string, string[]>();
  for (const line of page.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    // | `room` | what it owns | may import |
    if (cells.length !== 5 || !/^`[^`]+`$/.test(cells[1]!)) continue;
    const room = cells[1]!.slice(1, -1);
    const may = cells[3] === 'nothing' ? [] : [...cells[3]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    rule.set(room, may);
  }
  return rule;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

const FILES = sourceFiles(SRC).map((f) => relative(SRC, f));
const IMPORTS = FILES.flatMap((f) => importsOf(f, readFileSync(join(SRC, f), 'utf8')));
const RULE = ruleFromDocs();

/** The files (and packages) that loading `start` loads: static imports that are not type-only. */
function loads(start: string): Set<string> {
  const seen = new Set<string>();
  const todo = [start];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const i of IMPORTS) if (i.from === file && !i.typeOnly && !i.dynamic) todo.push(i.to);
  }
  return seen;
}

describe('the arrows of docs/architecture.md hold in src/', () => {
  it('the page names every room of src/, and only those', () => {
    const rooms = [...new Set(FILES.map(roomOf))].sort();
    expect([...RULE.keys()].sort()).toEqual(rooms);
  });

  it.each([...RULE.keys()])('%s imports only what its row allows', (room) => {
    expect(
      violations(
        IMPORTS.filter((i) => roomOf(i.from) === room),
        RULE,
      ),
    ).toEqual([]);
  });

  it('core is pure: no package, no node: module', () => {
    const outside = IMPORTS.filter((i) => roomOf(i.from) === 'core' && !i.to.endsWith('.ts'));
    expect(outside.map((i) => `${i.from} imports ${i.to}`)).toEqual([]);
  });

  const TRANSPORT = /^(http\/|service\/grpc-)|^(fastify|@grpc\/grpc-js|undici)$/;
  it.each(['gateway/assemble.ts', 'sim/cluster/run.ts', 'sim/cluster/cli.ts', 'sim/plan/cli.ts'])(
    '%s loads no transport (no http/, service/grpc-*, fastify, @grpc/grpc-js, undici)',
    (entry) => {
      expect([...loads(entry)].filter((f) => TRANSPORT.test(f))).toEqual([]);
    },
  );

  it('no import cycles between files', () => {
    // Depth-first search; a file met again while it is on the path closes a cycle.
    const next = new Map<string, string[]>();
    for (const i of IMPORTS) if (i.to.endsWith('.ts')) next.set(i.from, [...(next.get(i.from) ?? []), i.to]);
    const done = new Set<string>();
    const path: string[] = [];
    const cycles: string[] = [];
    const walk = (file: string): void => {
      const at = path.indexOf(file);
      if (at >= 0) return void cycles.push([...path.slice(at), file].join(' → '));
      if (done.has(file)) return;
      path.push(file);
      for (const to of next.get(file) ?? []) walk(to);
      path.pop();
      done.add(file);
    };
    for (const f of FILES) walk(f);
    expect(cycles).toEqual([]);
  });
});

describe('the checker itself (it can fail)', () => {
  const rule = new Map([
    ['core', []],
    ['config', ['core', 'provisioners/names.ts']],
  ]);

  // [label, file, source, what the checker reports]
  const cases: [string, string, string, string[]][] = [
    [
      'core importing outside core',
      'core/x.ts',
      "import { a } from '../http/app.js';",
      ['core/x.ts imports http/app.ts'],
    ],
    [
      'a type-only import counts too',
      'core/x.ts',
      "import type { A } from '../service/status.js';",
      ['core/x.ts imports service/status.ts'],
    ],
    [
      'a re-export counts',
      'core/x.ts',
      "export { a } from '../upstream/client.js';",
      ['core/x.ts imports upstream/client.ts'],
    ],
    [
      'a dynamic import counts',
      'core/x.ts',
      "const m = await import('../sim/server.js');",
      ['core/x.ts imports sim/server.ts'],
    ],
    ['a file the row names', 'config/x.ts', "import { N } from '../provisioners/names.js';", []],
    [
      'another file of that room',
      'config/x.ts',
      "import { L } from '../provisioners/local.js';",
      ['config/x.ts imports provisioners/local.ts'],
    ],
    ['within the room', 'core/fleet/x.ts', "import { P } from '../pool.js';", []],
    [
      'a room with no row',
      'nowhere/x.ts',
      "import { P } from '../core/pool.js';",
      ['nowhere/x.ts imports core/pool.ts'],
    ],
  ];
  it.each(cases)('%s', (_label, file, source, reported) => {
    expect(violations(importsOf(file, source), rule)).toEqual(reported);
  });

  it('tells type-only and dynamic imports apart from the ones that load code', () => {
    const found = importsOf(
      'sim/x.ts',
      [
        "import type { A } from '../http/app.js';",
        "import { type B, type C } from '../http/answer.js';",
        "import { type D, e } from '../service/grpc-server.js';",
        "const f = () => import('undici');",
      ].join('\n'),
    );
    expect(found.map((i) => [i.to, i.typeOnly, i.dynamic])).toEqual([
      ['http/app.ts', true, false],
      ['http/answer.ts', true, false],
      ['service/grpc-server.ts', false, false],
      ['undici', false, true],
    ]);
  });
});
