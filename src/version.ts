import { readFileSync } from 'node:fs';

/**
 * The package's version, from its package.json: one level above this module both in src/ and in
 * dist/ (package.json ships with the package). `--version` of every CLI and the telemetry
 * resource's service.version print it.
 */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
