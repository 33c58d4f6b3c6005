import { describeFailure, type SkyCli } from './cli.js';
import { parseSkyVersion } from './status-parse.js';

export interface SkyCapabilities {
  /** From `sky --version`, e.g. "0.10.3"; "unknown" if the line could not be read. */
  readonly version: string;
  /** Whether `sky status` takes `-o json` (then list() reads JSON instead of the table). */
  readonly statusJson: boolean;
}

/**
 * Detects the installed SkyPilot once at start-up. The version comes from `sky --version`.
 * Whether `sky status` can print JSON is read from `sky status --help` rather than
 * guessed from the version number: the `-o/--output` option is not in any released
 * sky/client/cli/command.py we could check (status takes --refresh, --ip, --endpoints,
 * --endpoint, -v, -u and the --show-* switches); upstream PR #8784 (merged 2026-02)
 * adds it. Where the help does not list it, the table parser is used.
 * Throws SkyNotFoundError when `sky` is missing.
 */
export async function detectSky(cli: SkyCli, timeoutMs: number): Promise<SkyCapabilities> {
  const v = await cli.run(['--version'], { timeoutMs });
  if (v.exitCode !== 0) throw new Error(`cannot run SkyPilot: ${describeFailure(v, timeoutMs)}`);
  const version = parseSkyVersion(v.stdout + v.stderr) ?? 'unknown';
  const help = await cli.run(['status', '--help'], { timeoutMs });
  const statusJson = help.exitCode === 0 && /(^|[\s,])--output\b/m.test(help.stdout);
  return { version, statusJson };
}
