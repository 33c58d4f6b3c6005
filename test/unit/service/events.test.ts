import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/core/clock.js';
import { WorkerPool } from '../../../src/core/pool.js';
import { WorkerState, type WatchEventsResponse } from '../../../src/gen/flockserve/v1/node_control.js';
import { EventHub } from '../../../src/service/events.js';

describe('EventHub', () => {
  it('snapshots the worker when the change happens, not when it is read', () => {
    const clock = new VirtualClock(1_000);
    const pool = new WorkerPool(clock);
    const hub = new EventHub(clock, () => 1_700_000_000_000);
    const got: WatchEventsResponse[] = [];
    hub.subscribe((e) => got.push(e));
    pool.onChange((c) => hub.workerChanged(c));

    pool.add('w-1', 4);
    clock.advance(2_500);
    pool.setState('w-1', 'starting', 'launched');
    pool.get('w-1')!.url = 'http://127.0.0.1:9';

    const states = got.map((e) => (e.event?.$case === 'workerStateChanged' ? e.event.value : undefined));
    expect(states.map((s) => [s?.worker?.state, s?.previousState, s?.reason, s?.worker?.ageSeconds])).toEqual([
      [WorkerState.WORKER_STATE_PROVISIONING, WorkerState.WORKER_STATE_PROVISIONING, 'added', 0],
      [WorkerState.WORKER_STATE_STARTING, WorkerState.WORKER_STATE_PROVISIONING, 'launched', 2.5],
    ]);
    // The url set after the event is not in it.
    expect(states[1]?.worker?.url).toBe('');
    expect(got.every((e) => e.unixMs === 1_700_000_000_000)).toBe(true);
  });

  it('unsubscribe stops delivery, also from inside a listener', () => {
    const clock = new VirtualClock(0);
    const hub = new EventHub(clock);
    const a: string[] = [];
    const b: string[] = [];
    const offA = hub.subscribe((e) => {
      a.push(e.event?.$case ?? '');
      offA();
    });
    hub.subscribe((e) => b.push(e.event?.$case ?? ''));
    const d = { policy: 'p', currentWorkers: 1, desiredWorkers: 2, queueLengthRunningMean: 9, reason: 'up' };
    hub.decision(d);
    hub.decision(d);
    expect(a).toEqual(['autoscalerDecision']);
    expect(b).toEqual(['autoscalerDecision', 'autoscalerDecision']);
    expect(hub.subscribers).toBe(1);
  });
});
