import { describe, expect, it } from 'vitest';
import { FencedError, type CoordinationListener } from '../../../src/core/coordination.js';
import { InProcessCoordinator } from '../../../src/coordination/in-process.js';

function listener(): CoordinationListener & { terms: [boolean, number][] } {
  const terms: [boolean, number][] = [];
  return {
    terms,
    leadership: (leading, term) => terms.push([leading, term]),
    fleet: () => {},
    loads: () => {},
    store: () => {},
    command: () => Promise.resolve({ ok: true }),
  };
}

describe('in-process coordinator: one gateway that leads alone', () => {
  it('leads from start() until close(); the fence follows', async () => {
    const c = new InProcessCoordinator('gw', () => 1_000);
    expect(c.holdsFence()).toBe(false);
    expect(() => c.checkFence('sky launch w-1')).toThrow(FencedError);
    const l = listener();
    await c.start(l);
    expect(l.terms).toEqual([[true, 1]]);
    expect(c.holdsFence()).toBe(true);
    await expect(c.fence('sky down w-1')).resolves.toBeUndefined();
    expect(c.status()).toMatchObject({
      kind: 'in-process',
      replica: 'gw',
      leading: true,
      leader: 'gw',
      leaderSince: 1_000,
      replicas: [{ id: 'gw', startedAt: 1_000, leaving: false }],
      storeReachable: true,
    });
    await c.close();
    await expect(c.fence('sky down w-1')).rejects.toThrow(/fenced: sky down w-1 refused/);
  });

  it('keeps the fleet it was given and is always the last one out', async () => {
    const c = new InProcessCoordinator('gw');
    await c.start(listener());
    await c.publishFleet({ target: 1, minWorkers: 1, maxWorkers: 2, workers: [] });
    expect(c.lastFleet()).toEqual({ leader: 'gw', term: 1, target: 1, minWorkers: 1, maxWorkers: 2, workers: [] });
    expect(await c.leave()).toBe('last');
  });
});
