import { describe, expect, it } from 'vitest';
import { AdapterLedger } from '../../../src/core/adapter-ledger.js';

const body = (name: string): string => JSON.stringify({ lora_name: name, lora_path: `/a/${name}` });

describe('AdapterLedger', () => {
  it('keeps the last change per adapter, in the order the changes were made', () => {
    const l = new AdapterLedger();
    expect(l.version).toBe(0);
    l.load('a', body('a'), {});
    l.load('b', body('b'), {});
    l.unload('a');
    expect(l.loaded()).toEqual(['b']);
    l.load('a', body('a'), {});
    expect(l.version).toBe(4);
    expect(l.loaded()).toEqual(['b', 'a']);
    const steps = l.stepsFor(new Set(['base', 'c']));
    expect(steps.load.map((c) => c.name)).toEqual(['b', 'a']);
    expect(steps.unload).toEqual([]);
  });

  it('asks a worker to unload only what was unloaded and it still lists, and to load only what it lacks', () => {
    const l = new AdapterLedger();
    l.load('a', body('a'), {});
    l.unload('t');
    const steps = l.stepsFor(new Set(['base', 'a', 't']));
    expect(steps.load).toEqual([]);
    expect(steps.unload.map((c) => c.name)).toEqual(['t']);
  });

  it('knows which workers match which version, and forgets a worker', () => {
    const l = new AdapterLedger();
    expect(l.isCurrent('http://w')).toBe(true);
    const v = l.load('a', body('a'), {});
    expect(l.isCurrent('http://w')).toBe(false);
    l.applied('http://w', v);
    expect(l.isCurrent('http://w')).toBe(true);
    // A sync that began before a later change does not claim it.
    l.applied('http://w', l.load('b', body('b'), {}) - 1);
    expect(l.isCurrent('http://w')).toBe(false);
    expect(l.appliedVersion('http://w')).toBe(v);
    l.forget('http://w');
    expect(l.appliedVersion('http://w')).toBe(0);
  });
});
