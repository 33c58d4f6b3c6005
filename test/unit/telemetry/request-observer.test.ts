import {
  TraceFlags,
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanOptions,
  type SpanStatus,
  type Tracer,
} from '@opentelemetry/api';
import pino from 'pino';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { GatewayMetrics } from '../../../src/telemetry/metrics.js';
import { TelemetryObserver } from '../../../src/telemetry/request-observer.js';
import { RequestTracer } from '../../../src/telemetry/tracing.js';
import { histogramPoint, meterWithReader, pointValue } from '../../helpers/metrics.js';
import { idleGatewayState } from '../../fakes/gateway-state.js';

/** A Tracer (the OpenTelemetry API's interface) that keeps what it is given, as an SDK tracer would record it. */
class RecordingTracer implements Tracer {
  readonly spans: {
    name: string;
    parent: string | undefined;
    attributes: Attributes;
    status?: SpanStatus;
    ended: boolean;
  }[] = [];

  startSpan(name: string, options: SpanOptions = {}, ctx?: Context): Span {
    const rec = {
      name,
      parent: ctx ? trace.getSpanContext(ctx)?.spanId : undefined,
      attributes: { ...options.attributes } as Attributes,
      ended: false,
    } as RecordingTracer['spans'][number];
    this.spans.push(rec);
    const traceId = (ctx && trace.getSpanContext(ctx)?.traceId) ?? 'a'.repeat(32);
    const span = trace.wrapSpanContext({ traceId, spanId: 'b'.repeat(16), traceFlags: TraceFlags.SAMPLED });
    return Object.assign(Object.create(span) as Span, {
      spanContext: () => ({ traceId, spanId: 'b'.repeat(16), traceFlags: TraceFlags.SAMPLED }),
      setAttributes: (a: Attributes) => (Object.assign(rec.attributes, a), span),
      setStatus: (s: SpanStatus) => ((rec.status = s), span),
      end: () => void (rec.ended = true),
    });
  }

  startActiveSpan(): never {
    throw new Error('not used');
  }
}

function setup(opts: { tracer?: Tracer } = {}) {
  const { provider, histograms, reader } = meterWithReader();
  const metrics = new GatewayMetrics(provider.getMeter('t'), histograms, -1, idleGatewayState());
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  let now = 1000;
  const observer = new TelemetryObserver({
    metrics,
    now: () => now,
    wallClock: () => 1_700_000_000_000,
    log: pino({ level: 'debug' }, sink),
    tracer: opts.tracer ? new RequestTracer(opts.tracer) : undefined,
  });
  return { observer, reader, lines, advance: (ms: number) => (now += ms) };
}

const sse = (...events: string[]): Buffer => Buffer.from(events.map((e) => `data: ${e}\n\n`).join(''));

describe('TelemetryObserver (timeline of one streamed request)', () => {
  it('TTFT from arrival to the first chunk, duration to finish, tokens from the stream, one debug line', async () => {
    const { observer, reader, lines, advance } = setup();
    const r = observer.begin({ transport: 'http', method: 'POST', route: '/v1/chat/completions', headers: {} });
    expect(r.upstreamHeaders).toBeUndefined(); //                           tracing off: no header added
    advance(30); //                                                          t=30 ms: the worker answered
    r.answered({ worker: 'w-0', status: 200, stream: true, queueWaitMs: 25 });
    advance(170); //                                                         t=200 ms: first token
    r.chunk(sse('{"choices":[{"delta":{"content":"a"}}]}'));
    advance(800); //                                                         t=1 s: the rest
    r.chunk(sse('{"choices":[{"delta":{"content":"b"}}]}', '[DONE]'));
    r.finish({ status: 200, model: 'llama' });
    r.finish({ status: 500 }); // only the first finish counts

    const m = await reader.snapshot();
    expect(histogramPoint(m.get('flockserve_time_to_first_token_seconds'))?.sum).toBeCloseTo(0.2);
    expect(histogramPoint(m.get('flockserve_request_duration_seconds'))).toMatchObject({ count: 1, sum: 1 });
    expect(histogramPoint(m.get('flockserve_queue_wait_seconds'))?.sum).toBeCloseTo(0.025);
    expect(pointValue(m.get('flockserve_generated_tokens'), { worker: 'w-0', model: 'llama' })).toBe(2);
    // Time per output token: first token at 200 ms, the end at 1 s, one token after the first.
    expect(histogramPoint(m.get('flockserve_time_per_output_token_seconds'), { model: 'llama' })).toMatchObject({
      count: 1,
      sum: 0.8,
    });
    expect(pointValue(m.get('flockserve_requests'), { status: '500' })).toBeUndefined();
    const debug = lines.filter((l) => l['level'] === 20);
    expect(debug).toHaveLength(1);
    expect(debug[0]).toMatchObject({
      route: '/v1/chat/completions',
      status: 200,
      worker: 'w-0',
      ms: 1000,
      ttft_ms: 200,
      tokens: 2,
    });
  });

  it('a request that never reached a worker: counted with worker "none", no TTFT, no tokens', async () => {
    const { observer, reader } = setup();
    observer.begin({ transport: 'grpc', method: 'POST', route: '/generate', headers: {} }).finish({ status: 503 });
    const m = await reader.snapshot();
    expect(pointValue(m.get('flockserve_requests'), { worker: 'none', status: '503', transport: 'grpc' })).toBe(1);
    expect(histogramPoint(m.get('flockserve_time_to_first_token_seconds'))).toBeUndefined();
  });
});

describe('TelemetryObserver: TGI /generate', () => {
  it('counts the tokens of x-generated-tokens and x-prompt-tokens when the body has none', async () => {
    const { observer, reader } = setup();
    const r = observer.begin({ transport: 'http', method: 'POST', route: '/generate', headers: {} });
    r.answered({
      worker: 'w-0',
      status: 200,
      stream: false,
      queueWaitMs: 0,
      headers: { 'content-type': 'application/json', 'x-generated-tokens': '17', 'x-prompt-tokens': '5' },
    });
    r.chunk(Buffer.from('{"generated_text":"the worker engine"}'));
    r.finish({ status: 200 });
    const m = await reader.snapshot();
    expect(pointValue(m.get('flockserve_generated_tokens'), { route: '/generate', model: 'none' })).toBe(17);
    expect(pointValue(m.get('flockserve_prompt_tokens'), { route: '/generate' })).toBe(5);
  });
});

describe('TelemetryObserver with a tracer', () => {
  it('a span per request, child of the client’s; route, worker, status and tokens on it; traceparent for the worker', () => {
    const tracer = new RecordingTracer();
    const { observer } = setup({ tracer });
    const T = '4bf92f3577b34da6a3ce929d0e0e4736';
    const r = observer.begin({
      transport: 'http',
      method: 'POST',
      route: '/v1/completions',
      headers: { traceparent: `00-${T}-00f067aa0ba902b7-01` },
    });
    expect(r.upstreamHeaders).toEqual({ traceparent: `00-${T}-${'b'.repeat(16)}-01` });
    r.answered({ worker: 'w-1', status: 200, stream: false, queueWaitMs: 0 });
    r.chunk(Buffer.from('{"usage":{"prompt_tokens":4,"completion_tokens":6}}'));
    r.finish({ status: 502 });
    expect(tracer.spans).toHaveLength(1);
    expect(tracer.spans[0]).toMatchObject({
      name: 'POST /v1/completions',
      parent: '00f067aa0ba902b7',
      ended: true,
      status: { code: 2 },
      attributes: {
        'http.route': '/v1/completions',
        'http.response.status_code': 502,
        'flockserve.worker': 'w-1',
        'gen_ai.usage.output_tokens': 6,
        'gen_ai.usage.input_tokens': 4,
      },
    });
  });
});
