import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { resolveOptions } from '../../../src/config/resolve.js';
import { assembleGateway, type Gateway } from '../../../src/gateway/assemble.js';
import type * as AssembleModule from '../../../src/gateway/assemble.js';
import { FlockServe } from '../../../src/index.js';
import { systemClock } from '../../../src/runtime/system-clock.js';
import { simulate } from '../../../src/sim/cluster/run.js';
import { parseTrace } from '../../../src/sim/cluster/trace.js';
import { traceWorkload } from '../../../src/sim/cluster/workload.js';
import { FakeProvisioner } from '../../fakes/provisioner.js';
import { TEST_GATEWAY_OPTIONS, simTask } from '../../helpers/gateway.js';

// The live gateway (src/index.ts) and the simulation (src/sim/cluster/run.ts) are built by one
// composition root: both must call assembleGateway, and what each gets back is made of the same
// parts. The spy wraps the real function, so both paths run as they always do.
vi.mock('../../../src/gateway/assemble.js', async (importOriginal) => {
  const real = await importOriginal<typeof AssembleModule>();
  return { ...real, assembleGateway: vi.fn(real.assembleGateway) };
});

const assembled = vi.mocked(assembleGateway);
afterEach(() => assembled.mockClear());

/** The parts handed in from outside (they differ by design: real sockets and processes, or simulated ones). */
const HANDED_IN = new Set(['upstream', 'provisioner', 'config', 'clock']);

/** Each part of an assembled gateway by the class that made it (or its type when it is no object). */
function shape(g: Gateway): Record<string, string> {
  return Object.fromEntries(
    Object.entries(g)
      .filter(([k]) => !HANDED_IN.has(k))
      .map(([k, v]) => [
        k,
        typeof v === 'object' && v !== null ? (v as object).constructor.name : v === undefined ? 'none' : typeof v,
      ]),
  );
}

describe('one composition root for the live gateway and the simulation', () => {
  it('both call assembleGateway and get the same parts: pool, queue, balancer, outlier detection, fleet, autoscaler, service, replica', async () => {
    // Options both read the same way; the live gateway launches nothing (min_workers 0).
    const shared = { minWorkers: 0, maxWorkers: 2, loadBalancer: 'least-connection', autoscaler: 'slo' } as const;

    const live = new FlockServe(
      { ...TEST_GATEWAY_OPTIONS, ...shared, skypilotTask: simTask(), provisioner: 'local' },
      { provisioner: new FakeProvisioner(systemClock), logger: pino({ level: 'silent' }) },
    );
    await live.run();
    const liveGateway = live.gateway!;
    await live.close();
    expect(assembled).toHaveBeenCalledTimes(1);
    expect(assembled.mock.results[0]?.value).toBe(liveGateway);

    const csv = 'TIMESTAMP,ContextTokens,GeneratedTokens\n2024-01-01 00:00:00.000,10,2\n';
    const result = await simulate({
      workload: traceWorkload(parseTrace(csv, 'inline.csv'), 1, 'inline.csv'),
      config: resolveOptions({ skypilotTask: '(simulated)', ...shared }),
      launchDelay: { distribution: 'fixed', meanMs: 1000, cv: 0 },
      seed: 1,
      sampleIntervalMs: 1000,
    });
    expect(result.summary.completed).toBe(1);
    expect(assembled).toHaveBeenCalledTimes(2);
    const simGateway = assembled.mock.results[1]!.value as Gateway;

    const parts = shape(liveGateway);
    expect(parts).toMatchObject({
      pool: 'WorkerPool',
      tracker: 'LoadTracker',
      admission: 'Admission',
      balancer: 'LeastConnection',
      outlier: 'OutlierDetector',
      fleet: 'Fleet',
      autoscaler: 'AutoscalerController',
      service: 'InferenceService',
      replica: 'Replica',
    });
    expect(shape(simGateway)).toEqual(parts);
  });
});
