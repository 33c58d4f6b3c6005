import { describe, expect, it, vi } from 'vitest';
import { resolveOptions } from '../../../../src/config/resolve.js';
import { VirtualClock } from '../../../../src/core/clock.js';
import { assembleGateway } from '../../../../src/gateway/assemble.js';
import { SimProvisioner } from '../../../../src/sim/cluster/provisioner.js';
import { SimUpstream } from '../../../../src/sim/cluster/upstream.js';
import { DrivenCoordinator } from '../../../fakes/coordinator.js';

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * The gateway as the live process and the simulation assemble it, over simulated workers, its
 * replica told by a driven coordinator when it leads.
 */
function gateway(leadOnLeave: number | undefined) {
  const clock = new VirtualClock();
  const provisioner = new SimProvisioner({ clock, launchDelayMs: () => 1000 });
  const launch = vi.spyOn(provisioner, 'launch');
  const coordinator = new DrivenCoordinator();
  coordinator.leadOnLeave = leadOnLeave;
  const g = assembleGateway({
    config: resolveOptions({ skypilotTask: '(simulated)', minWorkers: 2, maxWorkers: 4 }),
    clock,
    random: () => 0.5,
    task: { path: '(simulated)', name: 'simulated', envs: {}, ports: [], raw: {} },
    provisioner,
    prober: provisioner.prober,
    upstream: new SimUpstream({ worker: (name) => provisioner.worker(name) }),
    coordinator,
  });
  return { clock, g, launch, coordinator };
}

describe('a replica that comes to lead while it leaves (every gateway stopping at once)', () => {
  it('adopts what runs and launches nothing, though min_workers is 2: it leads only to tear down or hand on', async () => {
    const t = gateway(7);
    await t.g.start();
    expect(await t.g.replica.leave()).toBe('last');
    t.clock.advance(60_000);
    await settle();
    expect(t.launch).not.toHaveBeenCalled();
    expect(t.g.fleet.target).toBe(0);
  });

  it('the same replica leading from the start launches min_workers (the case above is the leaving, not the assembly)', async () => {
    const t = gateway(undefined);
    await t.g.start();
    t.coordinator.lead(7);
    t.clock.advance(60_000);
    await settle();
    expect(t.launch).toHaveBeenCalledTimes(2);
  });
});
