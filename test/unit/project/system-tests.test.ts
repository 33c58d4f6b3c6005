import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { expect, it } from 'vitest';
import mainConfig from '../../../vitest.config.js';
import systemConfig from '../../../vitest.system.config.js';

// `npm test` passes on a machine with Node.js alone: whatever needs a system package lives under
// test/system/ and runs from `npm run test:system`, which `.ci/run` calls after installing them.

const ROOT = join(import.meta.dirname, '../../..');
const SYSTEM_TOOLS = /\/usr\/bin\/python3|run-examples\.sh|grpc_python_plugin|\bprotoc\b|\bstartEtcd\b|\bhaproxy\b/;

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : [],
  );
}

it('npm test leaves test/system/ out and test:system takes it in', () => {
  expect(mainConfig.test?.exclude).toContain('test/system/**');
  expect(systemConfig.test?.include).toEqual(['test/system/**/*.test.ts']);
});

it('no test outside test/system/ calls a tool that Node.js does not bring', () => {
  const offenders = testFiles(join(ROOT, 'test'))
    .filter((f) => !relative(ROOT, f).startsWith('test/system/') && f !== import.meta.filename)
    .filter((f) => SYSTEM_TOOLS.test(readFileSync(f, 'utf8')))
    .map((f) => relative(ROOT, f));
  expect(offenders).toEqual([]);
});
