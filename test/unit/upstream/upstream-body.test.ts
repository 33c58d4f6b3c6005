import type { Dispatcher } from 'undici';
import { describe, expect, it } from 'vitest';
import { UpstreamBody } from '../../../src/upstream/client.js';

/** undici's side of one request, as UpstreamBody drives it: what it was told, in order. */
function controller(): Dispatcher.DispatchController & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    aborted: false,
    paused: false,
    reason: null,
    abort: (err: Error) => calls.push(`abort: ${err.message}`),
    pause: () => calls.push('pause'),
    resume: () => calls.push('resume'),
  };
}

function reader(body: UpstreamBody): string[] {
  const seen: string[] = [];
  body.on('data', (c: Buffer) => seen.push(c.toString()));
  body.once('end', () => seen.push('end'));
  body.on('error', (e: Error) => seen.push(`error: ${e.message}`));
  return seen;
}

describe('UpstreamBody', () => {
  it('holds what comes before anyone reads (a body can arrive with its headers), then delivers it in order', () => {
    const c = controller();
    const body = new UpstreamBody(c);
    body.push(Buffer.from('a'));
    body.finish();
    const seen = reader(body);
    expect(seen).toEqual([]);
    expect(c.calls).toEqual(['pause']);
    body.resume();
    expect(seen).toEqual(['a', 'end']);
    expect(c.calls).toEqual(['pause']); // complete: the socket is not resumed for nothing
  });

  it('flows while read; a pause holds the next chunks and pauses the worker socket until resume', () => {
    const c = controller();
    const body = new UpstreamBody(c);
    const seen = reader(body);
    body.resume();
    body.push(Buffer.from('1'));
    body.pause();
    body.push(Buffer.from('2'));
    body.push(Buffer.from('3'));
    expect(seen).toEqual(['1']);
    expect(c.calls).toEqual(['resume', 'pause', 'pause']);
    body.resume();
    expect(seen).toEqual(['1', '2', '3']);
    expect(c.calls.at(-1)).toBe('resume');
    body.finish();
    expect(seen).toEqual(['1', '2', '3', 'end']);
  });

  it('a reader that pauses inside its data handler stops the delivery of held chunks at once', () => {
    const body = new UpstreamBody(controller());
    const seen: string[] = [];
    body.on('data', (chunk: Buffer) => {
      seen.push(chunk.toString());
      body.pause();
    });
    body.push(Buffer.from('x'));
    body.push(Buffer.from('y'));
    body.resume();
    expect(seen).toEqual(['x']);
    body.resume();
    expect(seen).toEqual(['x', 'y']);
  });

  it('destroy before the end aborts the request and emits nothing more; after the end it aborts nothing', () => {
    const c = controller();
    const body = new UpstreamBody(c);
    const seen = reader(body);
    body.resume();
    body.push(Buffer.from('a'));
    body.destroy();
    body.push(Buffer.from('b'));
    body.finish();
    body.fail(new Error('late'));
    expect(seen).toEqual(['a']);
    expect(c.calls).toEqual(['resume', 'abort: the answer was dropped before its end']);

    const done = controller();
    const whole = new UpstreamBody(done);
    reader(whole);
    whole.resume();
    whole.finish();
    whole.destroy();
    expect(done.calls).toEqual(['resume']);
  });

  it('a failure reaches the reader once, and held chunks are dropped with it', () => {
    const body = new UpstreamBody(controller());
    const seen = reader(body);
    body.push(Buffer.from('held'));
    body.fail(new Error('socket reset'));
    body.fail(new Error('again'));
    body.resume();
    expect(seen).toEqual(['error: socket reset']);
  });
});
