import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS, errorsMarkdownTable } from '../../../src/core/errors.js';

describe("README's table of error codes", () => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const m = /<!-- errors:start -->\n([\s\S]*?)\n<!-- errors:end -->/.exec(readme);

  it('is the one generated from the error catalogue (regenerate: npm run docs)', () => {
    expect(m, 'README has the errors markers').not.toBeNull();
    expect(m![1]).toBe(errorsMarkdownTable());
  });

  it('has one row per catalogue code, with its HTTP and gRPC status', () => {
    const rows = m![1]!.split('\n').slice(2);
    expect(rows.map((r) => /^\| `([a-z_]+)` \|/.exec(r)?.[1])).toEqual(Object.keys(ERRORS));
    expect(rows).toContain(
      '| `queue_timeout` | 503 | `UNAVAILABLE` (14) | No worker slot became free in time; retry later. (`Retry-After: 5`) |',
    );
    expect(rows.find((r) => r.startsWith('| `upstream_bad_request`'))).toContain("the worker's: 400, 422, other 4xx");
  });
});
