import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  isSpanContextValid,
  trace,
  type Attributes,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
import { randomBytes } from 'node:crypto';

/**
 * A span per request with W3C Trace Context (https://www.w3.org/TR/trace-context/)
 * propagated to the worker:
 *
 *   client ── traceparent: 00-T-P-01 ──▶ gateway span S (child of P) ── traceparent: 00-T-S-01 ──▶ worker
 *
 * Spans go to the tracer given (the gateway's own, exporting over OTLP: see telemetry.ts),
 * else to the OpenTelemetry API's global one. A tracer that does not record (the API's
 * without a registered SDK provider) hands back non-recording spans: the ids are then
 * made here so the worker (vLLM, TGI and SGLang read `traceparent`) still joins the
 * client's trace.
 */

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** The span context in a `traceparent` header, or undefined when it is missing or malformed. */
export function parseTraceparent(value: string | string[] | undefined): SpanContext | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  const m = v === undefined ? null : TRACEPARENT.exec(v.trim().toLowerCase());
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string?];
  // Version ff is invalid; version 00 has nothing after the flags.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId, spanId, traceFlags: parseInt(flags, 16), isRemote: true };
}

export function formatTraceparent(sc: Pick<SpanContext, 'traceId' | 'spanId' | 'traceFlags'>): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

export interface RequestSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** The header for the worker: this span as its parent. */
  readonly traceparent: string;
  end(attributes: Attributes, failed: boolean): void;
}

export class RequestTracer {
  readonly #tracer: Tracer;

  constructor(tracer: Tracer = trace.getTracer('flockserve')) {
    this.#tracer = tracer;
  }

  start(name: string, incoming: string | string[] | undefined, attributes: Attributes): RequestSpan {
    const parent = parseTraceparent(incoming);
    const ctx = parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
    const span: Span = this.#tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, ctx);
    let sc = span.spanContext();
    // A non-recording span repeats its parent's context (or an invalid one): make our own span id.
    if (!isSpanContextValid(sc) || sc.spanId === parent?.spanId) {
      sc = {
        traceId: parent?.traceId ?? randomHex(16, ZERO_TRACE),
        spanId: randomHex(8, ZERO_SPAN),
        traceFlags: parent?.traceFlags ?? TraceFlags.SAMPLED,
      };
    }
    const ids = { traceId: sc.traceId, spanId: sc.spanId, traceparent: formatTraceparent(sc) };
    return {
      ...ids,
      end(attrs: Attributes, failed: boolean): void {
        span.setAttributes(attrs);
        if (failed) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      },
    };
  }
}

function randomHex(bytes: number, zero: string): string {
  for (;;) {
    const hex = randomBytes(bytes).toString('hex');
    if (hex !== zero) return hex;
  }
}
