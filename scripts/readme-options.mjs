#!/usr/bin/env node
// Rewrites the README's arguments table from the options table (src/config/options.ts),
// between the <!-- options:start --> and <!-- options:end --> markers. Needs a build.
//   npm run build && node scripts/readme-options.mjs
import { readFileSync, writeFileSync } from 'node:fs';
import { markdownTable } from '../dist/config/resolve.js';

const path = new URL('../README.md', import.meta.url);
const readme = readFileSync(path, 'utf8');
const next = readme.replace(
  /(<!-- options:start -->\n)[\s\S]*?(<!-- options:end -->)/,
  (_, a, b) => `${a}${markdownTable()}\n${b}`,
);
writeFileSync(path, next);
