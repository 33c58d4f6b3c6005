import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ROOT, startGateway, type TestGateway } from '../../helpers/gateway.js';

// The README's client snippets, run as a reader would paste them, against a live gateway: each
// must print the answer's text (the gRPC one printed `{ '$case': 'text', value: ... }` objects).

let t: TestGateway;
beforeAll(async () => {
  // As the quick start's task runs its workers: answers stored, run-time LoRA adapters taken.
  t = await startGateway({
    minWorkers: 2,
    maxWorkers: 2,
    simArgs: '--responses-store --enable-lora --allow-runtime-lora',
  });
});
afterAll(() => t?.close());

/** The README's ```ts block that contains `marker`. */
function snippet(marker: string): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes(marker));
  if (!block) throw new Error(`no ts block with ${marker} in README.md`);
  return block;
}

/**
 * Runs a snippet as an ES module inside the package (under dist/, so that `flockserve/client`
 * and `openai` resolve as they do for a user of the package), and returns what it printed.
 */
function run(code: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const file = join(mkdtempSync(join(ROOT, 'dist', 'readme-')), 'snippet.mjs');
  writeFileSync(file, code);
  return new Promise((resolve) =>
    execFile(process.execPath, [file], { timeout: 30_000 }, (err, stdout, stderr) => {
      rmSync(dirname(file), { recursive: true, force: true });
      resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr });
    }),
  );
}

// [snippet marker, address in the README → the test gateway's]
const cases: [string, () => [string, string]][] = [
  ['InferenceServiceClient', () => ["'localhost:8081'", `'${t.grpcAddress}'`]],
  ["from 'openai'", () => ["'http://localhost:8080/v1'", `'${t.url}/v1'`]],
  ['previous_response_id', () => ["'http://localhost:8080/v1'", `'${t.url}/v1'`]],
  ['load_lora_adapter', () => ["'http://localhost:8080'", `'${t.url}'`]],
];
it.each(cases)('the README snippet with %s prints the answer as text', async (marker, address) => {
  const [from, to] = address();
  const code = snippet(marker);
  expect(code).toContain(from);
  const r = await run(code.replace(from, to));
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  // The simulator's words, one after another: text, not objects.
  expect(r.stdout).toMatch(/^[a-z]+( [a-z]+)+/);
  expect(r.stdout).not.toMatch(/\$case|\[object|undefined/);
});
