#!/usr/bin/env node
// Rewrites the README's generated tables: the arguments table from the options table
// (src/config/options.ts), between <!-- options:start --> and <!-- options:end -->, and the
// error codes from the error catalogue (src/core/errors.ts), between <!-- errors:start --> and
// <!-- errors:end -->. Needs a build.
//   npm run build && node scripts/readme-tables.mjs
import { readFileSync, writeFileSync } from 'node:fs';
import { markdownTable } from '../dist/config/resolve.js';
import { errorsMarkdownTable } from '../dist/core/errors.js';

const path = new URL('../README.md', import.meta.url);
const tables = { options: markdownTable(), errors: errorsMarkdownTable() };
let readme = readFileSync(path, 'utf8');
for (const [name, table] of Object.entries(tables)) {
  const markers = new RegExp(`(<!-- ${name}:start -->\\n)[\\s\\S]*?(<!-- ${name}:end -->)`);
  if (!markers.test(readme))
    throw new Error(`README.md has no <!-- ${name}:start --> ... <!-- ${name}:end --> markers`);
  readme = readme.replace(markers, (_, a, b) => `${a}${table}\n${b}`);
}
writeFileSync(path, readme);
