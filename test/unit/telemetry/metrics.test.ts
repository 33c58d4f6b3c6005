import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/core/clock.js';
import type { CoordinationStatus } from '../../../src/core/coordination.js';
import type { FleetStats } from '../../../src/core/fleet.js';
import { WorkerPool } from '../../../src/core/pool.js';
import { GatewayMetrics, MODEL_LABEL_LIMIT } from '../../../src/telemetry/metrics.js';
import { histogramPoint, meterWithReader, pointValue } from '../../helpers/metrics.js';

function setup(metricsId = 1) {
  const clock = new VirtualClock();
  const pool = new WorkerPool(clock);
  const state = {
    queueLength: 0,
    queueLengthMean: 0,
    waiting: 0,
    total: 0,
    target: 0,
    wanted: undefined as number | undefined,
    fleet: { launched: 0, launchFailures: 0, replaced: 0, terminated: 0, terminateFailures: 0 } as FleetStats,
  };
  const { provider, histograms, reader } = meterWithReader();
  const metrics = new GatewayMetrics(provider.getMeter('test'), histograms, metricsId, {
    workers: () => pool.list(),
    queueLength: () => state.queueLength,
    queueLengthMean: () => state.queueLengthMean,
    gatewayQueueLength: () => state.waiting,
    totalRequests: () => state.total,
    fleetStats: () => state.fleet,
    targetWorkers: () => state.target,
    wantedWorkers: () => state.wanted,
  });
  pool.onChange((c) => metrics.workerChanged(c, clock.now()));
  return { clock, pool, state, metrics, reader };
}

const S = 1000;

describe('GatewayMetrics', () => {
  it('replicas: whether this one leads, how many there are, whether etcd answers', async () => {
    const { provider, histograms, reader } = meterWithReader();
    const c: CoordinationStatus = {
      kind: 'etcd',
      replica: 'gw-b',
      leading: false,
      leader: 'gw-a',
      leaderSince: 1,
      replicas: ['gw-a', 'gw-b', 'gw-c'].map((id) => ({ id, startedAt: 0, leaving: false })),
      storeReachable: true,
      storeUnreachableSince: undefined,
    };
    let status = c;
    const pool = new WorkerPool(new VirtualClock());
    new GatewayMetrics(provider.getMeter('test'), histograms, -1, {
      workers: () => pool.list(),
      queueLength: () => 0,
      queueLengthMean: () => 0,
      gatewayQueueLength: () => 0,
      totalRequests: () => 0,
      fleetStats: () => ({}) as FleetStats,
      targetWorkers: () => 0,
      coordination: () => status,
    });
    const read = async (): Promise<(number | undefined)[]> => {
      const m = await reader.snapshot();
      return ['flockserve_replica_leader', 'flockserve_replicas', 'flockserve_coordination_store_reachable'].map(
        (name) => pointValue(m.get(name)),
      );
    };
    expect(await read()).toEqual([0, 3, 1]);
    // etcd lost: the leader gave up its lease, nobody leads, the metric says so.
    status = { ...c, leader: undefined, storeReachable: false, storeUnreachableSince: 5 };
    expect(await read()).toEqual([0, 3, 0]);
    status = { ...c, leading: true, leader: 'gw-b' };
    expect(await read()).toEqual([1, 3, 1]);
  });

  it('observable instruments read the state at collection time, not before', async () => {
    const { pool, state, reader } = setup();
    pool.add('w-0', 4, 'provisioning');
    pool.add('w-1', 4, 'provisioning');
    pool.setState('w-1', 'starting', 't');
    pool.setState('w-1', 'ready', 't');
    pool.acquire(pool.get('w-1')!);
    Object.assign(state, { queueLength: 3, queueLengthMean: 1.25, waiting: 2, total: 17, target: 2 });
    state.fleet.launched = 2;
    state.fleet.launchFailures = 1;

    const m = await reader.snapshot();
    const table: [string, Record<string, string>, number][] = [
      ['flockserve_workers', { state: 'ready' }, 1],
      ['flockserve_workers', { state: 'provisioning' }, 1],
      ['flockserve_workers', { state: 'draining' }, 0],
      ['flockserve_worker_in_flight', { worker: 'w-1' }, 1],
      ['flockserve_queue_length', {}, 3],
      ['flockserve_queue_length_running_mean', {}, 1.25],
      ['flockserve_gateway_queue_length', {}, 2],
      ['flockserve_target_workers', {}, 2],
      // max_workers does not hold the autoscaler back: it wants what the fleet is asked to run.
      ['flockserve_autoscaler_wanted_workers', {}, 2],
      ['flockserve_worker_launches', {}, 2],
      ['flockserve_worker_launch_failures', {}, 1],
      ['requestcounter1', {}, 17],
      ['taskqueuecounter1', {}, 3],
    ];
    for (const [name, attrs, want] of table)
      expect([name, attrs, pointValue(m.get(name), attrs)]).toEqual([name, attrs, want]);

    state.total = 20;
    state.wanted = 5;
    const again = await reader.snapshot();
    expect(pointValue(again.get('requestcounter1'))).toBe(20);
    expect(pointValue(again.get('flockserve_autoscaler_wanted_workers'))).toBe(5);
  });

  it('one finished request: counter by route/status/worker, duration, TTFT, queue wait, tokens', async () => {
    const { metrics, reader } = setup();
    metrics.request({
      transport: 'http',
      route: '/v1/chat/completions',
      status: 200,
      worker: 'w-0',
      durationMs: 1500,
      ttftMs: 120,
      queueWaitMs: 0,
      completionTokens: 42,
      promptTokens: 9,
    });
    metrics.request({
      transport: 'grpc',
      route: '/generate',
      status: 503,
      worker: '',
      durationMs: 60_000,
      queueWaitMs: 60_000,
    });
    const m = await reader.snapshot();
    expect(
      pointValue(m.get('flockserve_requests'), { route: '/v1/chat/completions', status: '200', worker: 'w-0' }),
    ).toBe(1);
    expect(
      pointValue(m.get('flockserve_requests'), {
        route: '/generate',
        status: '503',
        worker: 'none',
        transport: 'grpc',
      }),
    ).toBe(1);
    expect(histogramPoint(m.get('flockserve_request_duration_seconds'), { route: '/v1/chat/completions' })?.sum).toBe(
      1.5,
    );
    expect(histogramPoint(m.get('flockserve_time_to_first_token_seconds'))?.sum).toBeCloseTo(0.12);
    // Only the streamed request has a TTFT.
    expect(histogramPoint(m.get('flockserve_time_to_first_token_seconds'))?.count).toBe(1);
    const wait = histogramPoint(m.get('flockserve_queue_wait_seconds'))!;
    expect(wait.count).toBe(2);
    expect(wait.buckets.counts[0]).toBe(1); // le=0: the request that got a slot at once
    expect(pointValue(m.get('flockserve_generated_tokens'), { worker: 'w-0' })).toBe(42);
    expect(pointValue(m.get('flockserve_prompt_tokens'), { worker: 'w-0' })).toBe(9);
  });

  it('the model label: the request’s model, none without one, other past the limit', async () => {
    const { metrics, reader } = setup();
    const request = (model: string | undefined) =>
      metrics.request({
        transport: 'http',
        route: '/v1/completions',
        status: 200,
        worker: 'w-0',
        durationMs: 10,
        model,
      });
    request('llama');
    request('llama');
    request(undefined);
    for (let i = 0; i < MODEL_LABEL_LIMIT + 5; i++) request(`lora-${i}`);
    const m = await reader.snapshot();
    const requests = (model: string) => pointValue(m.get('flockserve_requests'), { model });
    // [model label, requests]: llama is the first name, so 31 LoRA names fit and 6 overflow.
    const table: [string, number | undefined][] = [
      ['llama', 2],
      ['none', 1],
      ['lora-0', 1],
      [`lora-${MODEL_LABEL_LIMIT - 2}`, 1],
      [`lora-${MODEL_LABEL_LIMIT - 1}`, undefined],
      ['other', 6],
    ];
    expect(table.map(([model]) => [model, requests(model)])).toEqual(table);
    expect(histogramPoint(m.get('flockserve_request_duration_seconds'), { model: 'llama' })?.count).toBe(2);
  });

  it('time per output token: one value per streamed request', async () => {
    const { metrics, reader } = setup();
    const streamed = {
      transport: 'http',
      route: '/v1/chat/completions',
      status: 200,
      worker: 'w-0',
      model: 'm',
    } as const;
    metrics.request({ ...streamed, durationMs: 1100, ttftMs: 100, tpotMs: 25 });
    metrics.request({ ...streamed, durationMs: 500, ttftMs: 50, tpotMs: 15 });
    metrics.request({ ...streamed, durationMs: 500 }); // not streamed: none
    const m = await reader.snapshot();
    const tpot = histogramPoint(m.get('flockserve_time_per_output_token_seconds'), { worker: 'w-0', model: 'm' });
    expect(tpot?.count).toBe(2);
    expect(tpot?.sum).toBeCloseTo(0.04);
  });

  it('every counter is there from the start, at 0', async () => {
    const { reader } = setup();
    const m = await reader.snapshot();
    const counters = [
      'flockserve_requests',
      'flockserve_generated_tokens',
      'flockserve_prompt_tokens',
      'flockserve_retries',
      'flockserve_worker_ejections',
      'flockserve_answer_failures',
      'flockserve_repetition_guard_trips',
      'flockserve_stored_answer_misses',
      'flockserve_autoscaler_decisions',
      'flockserve_worker_launches',
      'flockserve_worker_launch_failures',
      'flockserve_request_log_rows',
      'flockserve_request_log_dropped_rows',
    ];
    expect(counters.map((name) => [name, pointValue(m.get(name))])).toEqual(counters.map((name) => [name, 0]));
    for (const direction of ['up', 'down', 'none'])
      expect(pointValue(m.get('flockserve_autoscaler_decisions'), { direction })).toBe(0);
  });

  it('failed OTLP exports, by signal, from the exporters there are', async () => {
    const { provider, histograms, reader } = meterWithReader();
    const failures = [
      { signal: 'metrics', failures: 0 },
      { signal: 'traces', failures: 0 },
    ];
    new GatewayMetrics(provider.getMeter('test'), histograms, 1, {
      workers: () => [],
      queueLength: () => 0,
      queueLengthMean: () => 0,
      gatewayQueueLength: () => 0,
      totalRequests: () => 0,
      fleetStats: () =>
        ({ launched: 0, launchFailures: 0, replaced: 0, terminated: 0, terminateFailures: 0 }) as FleetStats,
      targetWorkers: () => 0,
      exportFailures: () => failures,
    });
    const count = async (signal: string) =>
      pointValue((await reader.snapshot()).get('flockserve_otlp_export_failures'), { signal });
    expect([await count('metrics'), await count('traces')]).toEqual([0, 0]);
    failures[0]!.failures = 3;
    expect([await count('metrics'), await count('traces')]).toEqual([3, 0]);
  });

  it('autoscaler evaluations: decisions by direction and FlockServe’s periodic histograms', async () => {
    const { metrics, reader, pool, state } = setup(7);
    for (const [name, s] of [
      ['w-0', 'ready'],
      ['w-1', 'not_ready'],
      ['w-2', 'provisioning'],
    ] as const) {
      pool.add(name, 4, 'provisioning');
      if (s !== 'provisioning') pool.setState(name, 'starting', 't');
      if (s !== 'provisioning') pool.setState(name, 'ready', 't');
      if (s === 'not_ready') pool.setState(name, 'not_ready', 't');
    }
    Object.assign(state, { queueLength: 5, queueLengthMean: 2.345 });
    metrics.autoscalerEvaluated('up');
    metrics.autoscalerEvaluated('none');
    metrics.autoscalerEvaluated('none');
    const m = await reader.snapshot();
    expect(pointValue(m.get('flockserve_autoscaler_decisions'), { direction: 'none' })).toBe(2);
    expect(pointValue(m.get('flockserve_autoscaler_decisions'), { direction: 'up' })).toBe(1);
    // Three evaluations, each recording the same state.
    expect(histogramPoint(m.get('allworkers7'))).toMatchObject({ count: 3, sum: 9 });
    expect(histogramPoint(m.get('liveworkers7'))).toMatchObject({ count: 3, sum: 3 });
    expect(histogramPoint(m.get('workerload7'))).toMatchObject({ count: 3, sum: 15 });
    expect(histogramPoint(m.get('queuelengthrunningmean7'))?.sum).toBeCloseTo(3 * 2.35);
    // One ready (1) and one not ready (0) worker per evaluation; provisioning ones are not probed.
    expect(histogramPoint(m.get('readinessstatus7'))).toMatchObject({ count: 6, sum: 3 });
  });

  it('metrics_id < 0 leaves FlockServe’s suffixed instruments out', async () => {
    const { metrics, reader } = setup(-1);
    metrics.autoscalerEvaluated('none');
    const names = [...(await reader.snapshot()).keys()];
    expect(names).toContain('flockserve_autoscaler_decisions');
    expect(names.filter((n) => !n.startsWith('flockserve_'))).toEqual([]);
  });

  it('launch durations: to cluster up and to first ready, on the pool’s clock (timeline)', async () => {
    const { clock, pool, metrics, reader } = setup();
    pool.add('w-0', 4, 'provisioning'); //                      t=0
    clock.advance(90 * S);
    pool.setState('w-0', 'starting', 'launched'); //           t=90 s: cluster up
    clock.advance(30 * S);
    pool.setState('w-0', 'ready', 'probe'); //                 t=120 s: first ready
    pool.setState('w-0', 'not_ready', 'probe');
    clock.advance(10 * S);
    pool.setState('w-0', 'ready', 'probe'); //                 a later ready is no launch
    pool.add('w-adopted', 4, 'starting'); //                    adopted: never provisioning here
    pool.setState('w-adopted', 'ready', 'probe');
    metrics.retry('w-0', 'ECONNREFUSED');
    const m = await reader.snapshot();
    expect(histogramPoint(m.get('flockserve_worker_launch_duration_seconds'), { phase: 'up' })).toMatchObject({
      count: 1,
      sum: 90,
    });
    expect(histogramPoint(m.get('flockserve_worker_launch_duration_seconds'), { phase: 'ready' })).toMatchObject({
      count: 1,
      sum: 120,
    });
    expect(pointValue(m.get('flockserve_retries'), { worker: 'w-0', reason: 'ECONNREFUSED' })).toBe(1);
  });
});
