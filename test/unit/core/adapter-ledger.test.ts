import { describe, expect, it } from 'vitest';
import { AdapterLedger, MAX_ADAPTER_CHANGES } from '../../../src/core/adapter-ledger.js';

const body = (name: string): string => JSON.stringify({ lora_name: name, lora_path: `/a/${name}` });
const listing = (entries: Record<string, string | undefined>): Map<string, string | undefined> =>
  new Map(Object.entries(entries));

describe('AdapterLedger', () => {
  it('keeps the last change per adapter, in the order the changes were made', () => {
    const l = new AdapterLedger();
    expect(l.version).toBe(0);
    l.load('a', '/a/a', body('a'), {});
    l.load('b', '/a/b', body('b'), {});
    l.unload('a', {});
    expect(l.loaded()).toEqual(['b']);
    l.load('a', '/a/a', body('a'), {});
    expect(l.version).toBe(4);
    expect(l.loaded()).toEqual(['b', 'a']);
    const steps = l.stepsFor(listing({ base: 'base', c: '/c' }));
    expect(steps.load.map((c) => c.name)).toEqual(['b', 'a']);
    expect(steps.unload).toEqual([]);
  });

  it('asks a worker to unload what was unloaded and it still lists, to load what it lacks, and to reload what it holds from another path', () => {
    const l = new AdapterLedger();
    l.load('a', '/a/a', body('a'), {});
    l.unload('t', {});
    l.load('r', '/a/r-v2', body('r'), {});
    const steps = l.stepsFor(listing({ base: 'base', a: '/a/a', t: '/task/t', r: '/a/r-v1' }));
    expect(steps.unload).toEqual(['t', 'r']);
    expect(steps.load.map((c) => c.name)).toEqual(['r']);
    // An engine that names no path for an adapter is taken at its word.
    expect(l.stepsFor(listing({ a: undefined, r: undefined }))).toEqual({ unload: [], load: [] });
  });

  it('knows which workers match which version, and forgets a worker', () => {
    const l = new AdapterLedger();
    expect(l.isCurrent('http://w')).toBe(true);
    const v = l.load('a', '/a/a', body('a'), {});
    expect(l.isCurrent('http://w')).toBe(false);
    l.applied('http://w', v);
    expect(l.isCurrent('http://w')).toBe(true);
    // A sync that began before a later change does not claim it.
    l.applied('http://w', l.load('b', '/a/b', body('b'), {}) - 1);
    expect(l.isCurrent('http://w')).toBe(false);
    expect(l.appliedVersion('http://w')).toBe(v);
    l.forget('http://w');
    expect(l.appliedVersion('http://w')).toBe(0);
  });

  it('the newest change carries the headers a sync uses', () => {
    const l = new AdapterLedger();
    l.load('a', '/a/a', body('a'), { authorization: 'Bearer old' });
    l.unload('b', { authorization: 'Bearer new' });
    expect(l.latestHeaders()).toEqual({ authorization: 'Bearer new' });
  });

  it('drops the oldest unloads past its bound, and keeps every load', () => {
    const l = new AdapterLedger();
    l.load('kept', '/a/kept', body('kept'), {});
    for (let i = 0; i < MAX_ADAPTER_CHANGES + 10; i++) l.unload(`gone-${i}`, {});
    const shared = l.shared();
    expect(shared).toHaveLength(MAX_ADAPTER_CHANGES);
    expect(shared[0]!.name).toBe('kept');
    expect(shared[1]!.name).toBe('gone-11');
  });

  it('shares its changes and a new ledger restored from them asks the same of a worker', () => {
    const l = new AdapterLedger();
    l.load('a', '/a/a', body('a'), { authorization: 'Bearer k' });
    l.unload('t', {});
    const next = new AdapterLedger();
    next.restore(l.shared());
    expect(next.loaded()).toEqual(['a']);
    expect(next.stepsFor(listing({ t: '/t' }))).toEqual(l.stepsFor(listing({ t: '/t' })));
  });
});
