import { describe, expect, it, vi } from 'vitest';
import { Cancellation, type CancelSignal } from '../../../src/core/cancellation.js';

describe('Cancellation', () => {
  it('aborts once: the first reason stays, listeners run once in the order added', () => {
    const c = new Cancellation();
    const order: string[] = [];
    c.addEventListener('abort', () => order.push('a'));
    c.addEventListener('abort', () => order.push('b'));
    expect(c.aborted).toBe(false);
    expect(c.reason).toBeUndefined();
    c.abort('first');
    c.abort('second');
    expect(c.aborted).toBe(true);
    expect(c.reason).toBe('first');
    expect(order).toEqual(['a', 'b']);
  });

  it('a removed listener does not run; one added after the abort never runs', () => {
    const c = new Cancellation();
    const removed = vi.fn();
    const kept = vi.fn();
    c.addEventListener('abort', removed);
    c.addEventListener('abort', kept);
    c.removeEventListener('abort', removed);
    c.removeEventListener('abort', () => {}); // not added: nothing happens
    c.abort(new Error('x'));
    const late = vi.fn();
    c.addEventListener('abort', late);
    expect(removed).not.toHaveBeenCalled();
    expect(kept).toHaveBeenCalledOnce();
    expect(late).not.toHaveBeenCalled();
  });

  it('an AbortSignal is a CancelSignal too (the gRPC adapters pass theirs)', () => {
    const ac = new AbortController();
    const s: CancelSignal = ac.signal;
    const l = vi.fn();
    s.addEventListener('abort', l, { once: true });
    ac.abort('gone');
    expect(s.aborted).toBe(true);
    expect(s.reason).toBe('gone');
    expect(l).toHaveBeenCalledOnce();
  });
});
