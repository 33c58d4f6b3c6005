import { describe, expect, it } from 'vitest';
import { RequestTracer, formatTraceparent, parseTraceparent } from '../../../src/telemetry/tracing.js';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const P = '00f067aa0ba902b7';

describe('traceparent (W3C Trace Context)', () => {
  const table: [string, string | undefined, ReturnType<typeof parseTraceparent>][] = [
    ['the spec’s example', `00-${T}-${P}-01`, { traceId: T, spanId: P, traceFlags: 1, isRemote: true }],
    ['not sampled', `00-${T}-${P}-00`, { traceId: T, spanId: P, traceFlags: 0, isRemote: true }],
    [
      'upper case is read as lower',
      `00-${T.toUpperCase()}-${P}-01`,
      { traceId: T, spanId: P, traceFlags: 1, isRemote: true },
    ],
    [
      'a future version with more fields',
      `cc-${T}-${P}-01-extra`,
      { traceId: T, spanId: P, traceFlags: 1, isRemote: true },
    ],
    ['version 00 with more fields', `00-${T}-${P}-01-extra`, undefined],
    ['version ff', `ff-${T}-${P}-01`, undefined],
    ['all-zero trace id', `00-${'0'.repeat(32)}-${P}-01`, undefined],
    ['all-zero span id', `00-${T}-${'0'.repeat(16)}-01`, undefined],
    ['short trace id', `00-${T.slice(1)}-${P}-01`, undefined],
    ['missing', undefined, undefined],
  ];
  for (const [name, header, want] of table) {
    it(name, () => expect(parseTraceparent(header)).toEqual(want));
  }

  it('formats what it parses', () => {
    expect(formatTraceparent(parseTraceparent(`00-${T}-${P}-01`)!)).toBe(`00-${T}-${P}-01`);
  });
});

describe('RequestTracer without a tracer provider (the API’s no-op tracer)', () => {
  const tracer = new RequestTracer();

  it('continues the client’s trace with a new span id as the worker’s parent', () => {
    const span = tracer.start('POST /v1/chat/completions', `00-${T}-${P}-01`, {});
    expect(span.traceId).toBe(T);
    expect(span.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(span.spanId).not.toBe(P);
    expect(span.traceparent).toBe(`00-${T}-${span.spanId}-01`);
    span.end({}, false);
  });

  it('keeps the client’s sampled flag', () => {
    expect(tracer.start('x', `00-${T}-${P}-00`, {}).traceparent.endsWith('-00')).toBe(true);
  });

  it('starts a new sampled trace when the client sent none (or a bad one)', () => {
    const a = tracer.start('x', undefined, {});
    const b = tracer.start('x', 'garbage', {});
    expect(a.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(b.traceId).not.toBe(a.traceId);
  });
});
