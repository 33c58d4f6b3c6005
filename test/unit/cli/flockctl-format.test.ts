import { describe, expect, it } from 'vitest';
import { eventLine, formatAge, statusText, table, workersTable } from '../../../src/cli/flockctl-format.js';
import { GetStatusResponse, SloVerdict, WorkerState } from '../../../src/gen/flockserve/v1/node_control.js';

describe('flockctl formatting', () => {
  it.each([
    [0, '0s'],
    [59.9, '59s'],
    [75, '1m15s'],
    [3599, '59m59s'],
    [7300, '2h01m'],
    [-3, '0s'],
  ])('formatAge(%d) = %s', (s, want) => expect(formatAge(s)).toBe(want));

  it('aligns columns and leaves no trailing spaces', () => {
    expect(
      table(
        ['A', 'BB', 'C'],
        [
          ['xxx', 'y', ''],
          ['', 'zzzz', 'w'],
        ],
      ),
    ).toBe('A    BB    C\nxxx  y\n     zzzz  w');
  });

  it('status names the replicas, the leader and since when, and says when etcd is unreachable', () => {
    const now = Date.parse('2025-01-02T03:16:09Z');
    const base = GetStatusResponse.fromPartial({ workerCount: 2, readyWorkerCount: 2 });
    const coordination = {
      kind: 'etcd',
      replica: 'gw-b',
      leader: 'gw-a',
      leaderSinceUnixMs: Date.parse('2025-01-02T03:04:05Z'),
      replicas: [
        { id: 'gw-a', startedUnixMs: 0, leaving: false },
        { id: 'gw-b', startedUnixMs: 0, leaving: false },
        { id: 'gw-c', startedUnixMs: 0, leaving: true },
      ],
      storeReachable: true,
      storeUnreachableSinceUnixMs: 0,
    };
    const lines = (c: typeof coordination): string[] =>
      statusText({ ...base, coordination: c }, now)
        .split('\n')
        .slice(-3);
    expect(lines(coordination)).toEqual([
      'replica:            gw-b (leader: gw-a, since 2025-01-02T03:04:05.000Z, 12m04s ago)',
      'replicas:           gw-a (leader), gw-b, gw-c (leaving)',
      'etcd:               reachable',
    ]);
    expect(
      lines({
        ...coordination,
        leader: '',
        leaderSinceUnixMs: 0,
        storeReachable: false,
        storeUnreachableSinceUnixMs: now - 65_000,
      }),
    ).toEqual([
      'replica:            gw-b (leader: none (election under way, or etcd unreachable))',
      'replicas:           gw-a, gw-b, gw-c (leaving)',
      'etcd:               UNREACHABLE since 2025-01-02T03:15:04.000Z, 1m05s ago: serving with the last fleet seen, scaling paused',
    ]);
    // One gateway without etcd: no replica lines.
    expect(statusText({ ...base, coordination: { ...coordination, kind: 'in-process' } }, now)).not.toMatch(/replica/);
  });

  it('status lists the LoRA adapters the fleet holds, and says nothing of them when there are none', () => {
    const base = GetStatusResponse.fromPartial({ workerCount: 2, readyWorkerCount: 2 });
    expect(statusText({ ...base, loraAdapters: ['sql', 'chat'] })).toContain('LoRA adapters:      sql, chat');
    expect(statusText(base)).not.toMatch(/LoRA/);
  });

  it.each([
    [false, 0, 'worker capacity:    30 requests per worker'],
    [true, 5, 'worker capacity:    30 requests per worker: REACHED, requests wait at the gateway for a free slot'],
  ])('status says whether requests wait because worker_capacity is reached (held %s)', (held, waiting, line) => {
    const s = GetStatusResponse.fromPartial({
      workerCount: 2,
      readyWorkerCount: 2,
      gatewayQueueLength: waiting,
      workerCapacity: 30,
      heldAtWorkerCapacity: held,
    });
    expect(statusText(s).split('\n')).toContain(line);
  });

  it.each([
    [
      SloVerdict.SLO_VERDICT_HELD,
      'queue wait SLO:     p99 within 1 s: held, 12 of 8820 requests late in the last 1h00m (88 allowed)',
    ],
    [
      SloVerdict.SLO_VERDICT_MISSED,
      'queue wait SLO:     p99 within 1 s: MISSED, 12 of 8820 requests late in the last 1h00m (88 allowed)',
    ],
    [
      SloVerdict.SLO_VERDICT_UNKNOWN,
      'queue wait SLO:     p99 within 1 s: too few requests to judge (8820 in the last 1h00m)',
    ],
  ])('status says whether the p99 queue wait held queue_wait_slo (verdict %s)', (verdict, line) => {
    const s = GetStatusResponse.fromPartial({
      queueWaitSlo: { seconds: 1, verdict, windowSeconds: 3600, requests: 8820, late: 12, allowed: 88 },
    });
    expect(statusText(s).split('\n')).toContain(line);
    // A gateway from before the field: no line.
    expect(statusText(GetStatusResponse.fromPartial({}))).not.toMatch(/queue wait SLO/);
  });

  it('workersTable shows in-flight/capacity, ages and provisioner detail', () => {
    const now = 1_700_000_010_000;
    const w = {
      name: 'skypilot-worker-1',
      state: WorkerState.WORKER_STATE_NOT_READY,
      url: '',
      inFlight: 3,
      capacity: 30,
      ageSeconds: 125,
      lastProbeUnixMs: now - 4_000,
      totalRequests: 17,
      provisionerDetail: { pid: '42', log: '/tmp/w.log' },
      ejected: false,
    };
    expect(workersTable([w], now).split('\n')[1]).toBe(
      'skypilot-worker-1  not_ready  -    3/30       2m05s  4s ago      17        pid=42 log=/tmp/w.log',
    );
    // An ejected worker keeps its state; the table says it takes no traffic.
    expect(workersTable([{ ...w, state: WorkerState.WORKER_STATE_READY, ejected: true }], now)).toContain(
      'ready (ejected)',
    );
    expect(workersTable([], now)).toBe('no workers');
  });

  // [event, line after the timestamp]
  const events: [Parameters<typeof eventLine>[0]['event'], string][] = [
    [
      {
        $case: 'workerStateChanged',
        value: {
          worker: { name: 'w-2', state: WorkerState.WORKER_STATE_PROVISIONING } as never,
          previousState: WorkerState.WORKER_STATE_PROVISIONING,
          reason: 'added',
        },
      },
      'worker w-2 added (provisioning)',
    ],
    [
      {
        $case: 'workerStateChanged',
        value: {
          worker: { name: 'w-2', state: WorkerState.WORKER_STATE_READY } as never,
          previousState: WorkerState.WORKER_STATE_STARTING,
          reason: 'readiness probe passed',
        },
      },
      'worker w-2 starting → ready (readiness probe passed)',
    ],
    [
      {
        $case: 'autoscalerDecision',
        value: {
          policy: 'running-mean',
          currentWorkers: 2,
          desiredWorkers: 3,
          queueLengthRunningMean: 30,
          reason: 'up',
        },
      },
      'autoscaler running-mean 2 → 3 workers, queue mean 30.00: up',
    ],
  ];
  it.each(events)('eventLine %#', (event, want) => {
    expect(eventLine({ unixMs: Date.UTC(2025, 0, 2, 3, 4, 5, 678), event })).toBe(`2025-01-02T03:04:05.678Z ${want}`);
  });
});
