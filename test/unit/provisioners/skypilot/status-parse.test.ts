import { describe, expect, it } from 'vitest';
import {
  normalizeEndpoint,
  parseIp,
  parseSkyVersion,
  parseStatusJson,
  parseStatusTable,
} from '../../../../src/provisioners/skypilot/status-parse.js';

// Shapes of `sky status` output: the current table (sky/utils/cli_utils/status_utils.py),
// the older one (LAUNCHED first, COMMAND last), colours, and the tables that follow it.
const CURRENT = `Enabled Infra: aws, kubernetes

Clusters
NAME               INFRA            RESOURCES                     STATUS   AUTOSTOP   LAUNCHED
skypilot-worker-1  AWS (us-east-1)  1x(gpus=L4:1, g6.xlarge, ...)  UP       30m (down)  2 mins ago
skypilot-worker-2  AWS (us-east-1)  1x(gpus=L4:1, g6.xlarge, ...)  INIT     -          1 min ago
other              GCP (us-central1)  1x(cpus=4, ...)             STOPPED  -          3 days ago

Managed jobs
No in-progress managed jobs.

Services
NAME   VERSION  UPTIME  STATUS  REPLICAS  ENDPOINT
svc-1  1        2h      READY   1/1       1.2.3.4:30001
`;
const OLD = `NAME               LAUNCHED    RESOURCES                       STATUS  AUTOSTOP  COMMAND
skypilot-worker-1  a few secs  1x AWS(m6i.large)               UP      -         sky launch -c skypilot-...
`;

describe('parseStatusTable', () => {
  it.each([
    [
      'current layout, cells with spaces, later tables ignored',
      CURRENT,
      [
        { name: 'skypilot-worker-1', status: 'UP' },
        { name: 'skypilot-worker-2', status: 'INIT' },
        { name: 'other', status: 'STOPPED' },
      ],
    ],
    ['older layout (LAUNCHED before RESOURCES)', OLD, [{ name: 'skypilot-worker-1', status: 'UP' }]],
    [
      'ANSI colours left in',
      'NAME  RESOURCES  STATUS  AUTOSTOP\nw-1   1x(cpus=1)  \x1b[1m\x1b[32mUP\x1b[0m      -\n',
      [{ name: 'w-1', status: 'UP' }],
    ],
    ['no clusters', 'Enabled Infra: aws\n\nClusters\nNo existing clusters.\n', []],
    ['named cluster not found', "Clusters\nCluster 'w-9' not found.\n", []],
    ['several not found', "Clusters\nClusters 'w-8', 'w-9' not found.\n", []],
    [
      // Asked for w-1 and w-2 where w-2 is gone: the line follows the table without a blank line.
      'a table, then the names asked for that are gone',
      "Clusters\nNAME  INFRA  RESOURCES  STATUS  AUTOSTOP  LAUNCHED\nw-1   AWS    1x(L4:1)   UP      -         1 min ago\nCluster 'w-2' not found.\n",
      [{ name: 'w-1', status: 'UP' }],
    ],
  ])('%s', (_label, output, want) => {
    expect(parseStatusTable(output)).toEqual(want);
  });

  it('refuses output it does not understand instead of reporting every cluster gone', () => {
    expect(() => parseStatusTable('Error: API server is not reachable\n')).toThrow(/unrecognised `sky status` output/);
    expect(() => parseStatusTable('NAME  RESOURCES  STATUS\nw-1   x          BROKEN\n')).toThrow(/no status in row/);
  });
});

describe('parseStatusJson', () => {
  it('reads {"clusters": [...]} and a bare list, with plain or enum-style statuses', () => {
    expect(parseStatusJson('{"clusters":[{"name":"w-1","status":"UP","cloud":"AWS"}]}')).toEqual([
      { name: 'w-1', status: 'UP' },
    ]);
    expect(parseStatusJson('[{"name":"w-2","status":"ClusterStatus.STOPPED"}]')).toEqual([
      { name: 'w-2', status: 'STOPPED' },
    ]);
    expect(parseStatusJson('{"clusters":[]}')).toEqual([]);
  });

  it.each([
    ['not JSON', 'Clusters\nNo existing clusters.', /did not print JSON/],
    ['no list', '{"items": []}', /no "clusters" list/],
    ['bad record', '{"clusters":[{"name":1}]}', /bad cluster record/],
    ['unknown status', '{"clusters":[{"name":"w","status":"TERMINATED"}]}', /unknown status/],
  ])('rejects %s', (_label, output, error) => {
    expect(() => parseStatusJson(output)).toThrow(error);
  });
});

describe('small outputs', () => {
  it.each([
    ['skypilot, version 0.10.3\n', '0.10.3'],
    ['skypilot, version 1.0.0.dev20250101\n', '1.0.0.dev20250101'],
    ['garbage', undefined],
  ])('parseSkyVersion(%j) = %j', (output, want) => {
    expect(parseSkyVersion(output)).toBe(want);
  });

  it.each([
    ['3.4.5.6:8080\n', 'http://3.4.5.6:8080'],
    ['https://abc.example.com/\n', 'https://abc.example.com'],
    ['Fetching endpoints...\nhttp://10.0.0.1:30080\n', 'http://10.0.0.1:30080'],
    ['Aborted!\n', undefined], // a word, not a host:port
    ['ftp://x.y:21\n', undefined],
    ['', undefined],
  ])('normalizeEndpoint(%j) = %j', (output, want) => {
    expect(normalizeEndpoint(output)).toBe(want);
  });

  it.each([
    ['127.0.0.2\n', '127.0.0.2'],
    ['fd00::1\n', '[fd00::1]'],
    ['ec2-3-4-5-6.compute.amazonaws.com\n', 'ec2-3-4-5-6.compute.amazonaws.com'],
    ['RuntimeError: no\n', undefined],
  ])('parseIp(%j) = %j', (output, want) => {
    expect(parseIp(output)).toBe(want);
  });
});
