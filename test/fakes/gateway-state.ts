import { emptyFleetStats } from '../../src/core/fleet.js';
import type { GatewayState } from '../../src/telemetry/metrics.js';

/** The gateway state metrics read, for a gateway with no load: override what a test drives. */
export function idleGatewayState(overrides: Partial<GatewayState> = {}): GatewayState {
  return {
    workers: () => [],
    queueLength: () => 0,
    queueLengthMean: () => 0,
    gatewayQueueLength: () => 0,
    totalRequests: () => 0,
    fleetStats: emptyFleetStats,
    targetWorkers: () => 0,
    ...overrides,
  };
}
