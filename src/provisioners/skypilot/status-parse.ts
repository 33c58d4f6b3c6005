import type { ClusterStatus } from '../../core/types.js';

/** One row of `sky status`: the facts FlockServe uses. */
export interface SkyClusterRow {
  readonly name: string;
  readonly status: Exclude<ClusterStatus, 'GONE'>;
}

const STATUSES = new Set(['UP', 'INIT', 'STOPPED']);

// Colours are stripped by click when stdout is not a terminal, but a user's
// FORCE_COLOR or an older click may leave them in: strip ANSI SGR codes anyway.
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/** `sky`'s output without ANSI colour codes. */
export function stripAnsi(output: string): string {
  return output.replace(ANSI, '');
}

/**
 * Parses the cluster table of `sky status` (sky/utils/cli_utils/status_utils.py,
 * show_status_table). The table is a prettytable without borders, left-aligned, each
 * column padded by two spaces (sky/utils/log_utils.py create_table), so cells may hold
 * spaces ("AWS (us-east-1)", "2 mins ago"): columns are cut at the header's word
 * positions, not split on whitespace.
 *
 *   Clusters
 *   NAME               INFRA            RESOURCES           STATUS  AUTOSTOP  LAUNCHED
 *   skypilot-worker-1  AWS (us-east-1)  1x(gpus=L4:1, ...)  UP      -         2 mins ago
 *
 * Only the first table whose header starts with NAME and has STATUS and RESOURCES
 * columns is read (the managed-jobs and services tables that may follow have other
 * headers), up to the first blank line. "No existing clusters." and "Cluster 'x' not
 * found." mean no rows; asked for several names of which some are gone, `sky status`
 * prints the "not found" line right under the table, without a blank line between, and
 * the clusters it names are no rows either. Throws when the output has neither a table
 * nor one of those lines: better to fail loudly than to report every worker gone.
 */
export function parseStatusTable(output: string): SkyClusterRow[] {
  const lines = stripAnsi(output).split(/\r?\n/);
  const headerAt = lines.findIndex((l) => /^NAME\s/.test(l) && /\sSTATUS(\s|$)/.test(l) && /\sRESOURCES(\s|$)/.test(l));
  if (headerAt < 0) {
    if (lines.some((l) => /^No existing clusters\./.test(l.trim()) || isNotFound(l))) return [];
    throw new Error(`unrecognised \`sky status\` output: ${JSON.stringify(output.slice(0, 300))}`);
  }
  const header = lines[headerAt]!;
  const statusStart = header.search(/\sSTATUS(\s|$)/) + 1;
  const nextColumn = header.slice(statusStart + 'STATUS'.length).search(/\S/);
  const statusEnd = nextColumn < 0 ? Infinity : statusStart + 'STATUS'.length + nextColumn;
  const rows: SkyClusterRow[] = [];
  for (const line of lines.slice(headerAt + 1)) {
    if (line.trim() === '') break;
    if (isNotFound(line)) continue;
    const name = line.split(/\s+/, 1)[0] ?? '';
    let status = line.slice(statusStart, statusEnd).trim();
    // A row wider than the header (should not happen with prettytable) falls back to a token search.
    if (!STATUSES.has(status)) status = line.split(/\s+/).find((tok) => STATUSES.has(tok)) ?? '';
    if (!STATUSES.has(status)) throw new Error(`\`sky status\`: no status in row ${JSON.stringify(line)}`);
    rows.push({ name, status: status as SkyClusterRow['status'] });
  }
  return rows;
}

/** `Cluster 'x' not found.` or `Clusters 'x', 'y' not found.`: clusters asked for that do not exist. */
function isNotFound(line: string): boolean {
  return /^Clusters? .* not found\.$/.test(line.trim());
}

/**
 * Parses `sky status -o json`. Upstream PR skypilot-org/skypilot#8784 (merged 2026-02)
 * plans the shape `{"clusters": [{"name", "status", ...}]}`; a bare list is accepted too,
 * and a status may be written as "ClusterStatus.UP".
 */
export function parseStatusJson(output: string): SkyClusterRow[] {
  let data: unknown;
  try {
    data = JSON.parse(output);
  } catch {
    throw new Error(`\`sky status -o json\` did not print JSON: ${JSON.stringify(output.slice(0, 300))}`);
  }
  const list = Array.isArray(data) ? data : isRecord(data) ? data['clusters'] : undefined;
  if (!Array.isArray(list)) throw new Error('`sky status -o json`: no "clusters" list');
  return list.map((item: unknown) => {
    if (!isRecord(item) || typeof item['name'] !== 'string' || typeof item['status'] !== 'string') {
      throw new Error(`\`sky status -o json\`: bad cluster record ${JSON.stringify(item)}`);
    }
    const status = item['status'].replace(/^ClusterStatus\./, '');
    if (!STATUSES.has(status)) throw new Error(`\`sky status -o json\`: unknown status ${item['status']}`);
    return { name: item['name'], status: status as SkyClusterRow['status'] };
  });
}

/**
 * `sky --version` prints click's version line, `skypilot, version 0.10.3`
 * (sky/client/cli/command.py: click.version_option(..., prog_name='skypilot')).
 * Nightlies look like `1.0.0.dev20250101`. Returns the version or undefined.
 */
export function parseSkyVersion(output: string): string | undefined {
  return /version\s+(\S+)/.exec(output)?.[1];
}

/**
 * `sky status --endpoint PORT NAME` prints the URL for that port: on VMs usually
 * `IP:PORT` with no scheme, on Kubernetes ingress or a load balancer a full URL.
 * Returns a base URL with a scheme and no trailing slash, or undefined if the line is
 * not an endpoint.
 */
export function normalizeEndpoint(output: string): string | undefined {
  const line = stripAnsi(output)
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .at(-1);
  if (line === undefined || /\s/.test(line)) return undefined;
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(line);
  // Without a scheme it must be HOST:PORT ("Aborted!" is not an endpoint).
  if (!hasScheme && !/^([a-z0-9.-]+|\[[0-9a-f:]+\]):\d+(\/.*)?$/i.test(line)) return undefined;
  const withScheme = hasScheme ? line : `http://${line}`;
  try {
    const url = new URL(withScheme);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
    return withScheme.replace(/\/+$/, '');
  } catch {
    return undefined;
  }
}

/** `sky status --ip NAME` prints the head node's IP alone on its line. */
export function parseIp(output: string): string | undefined {
  const line = stripAnsi(output).trim().split(/\r?\n/).at(-1)?.trim() ?? '';
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(line)) return line;
  if (/^[0-9a-f:]+$/i.test(line) && line.includes(':')) return `[${line}]`;
  if (/^[a-z0-9.-]+$/i.test(line) && line.includes('.')) return line; // a DNS name
  return undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
