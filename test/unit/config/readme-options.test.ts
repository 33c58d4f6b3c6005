import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { markdownTable } from '../../../src/config/resolve.js';

describe("README's arguments table", () => {
  it('is the one generated from the options table (regenerate: npm run docs)', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const m = /<!-- options:start -->\n([\s\S]*?)\n<!-- options:end -->/.exec(readme);
    expect(m, 'README has the options markers').not.toBeNull();
    expect(m![1]).toBe(markdownTable());
  });
});
