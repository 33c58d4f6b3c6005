import { Metadata } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/resolve.js';
import { otlpExporterConfig } from '../../../src/telemetry/telemetry.js';

describe('otlpExporterConfig', () => {
  it('passes the settings on, with the endpoint as url and headers or metadata as gRPC metadata', () => {
    const c = otlpExporterConfig('http://collector:4317', { timeoutMillis: 500, headers: { 'x-key': 'k' } });
    expect(c).toMatchObject({ url: 'http://collector:4317', timeoutMillis: 500 });
    expect(c?.metadata).toBeInstanceOf(Metadata);
    expect(c?.metadata?.get('x-key')).toEqual(['k']);
    expect(c).not.toHaveProperty('headers');
  });

  it('temporalityPreference by name, as the OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE variable takes it', () => {
    const pref = (v: unknown) => otlpExporterConfig('http://c', { temporalityPreference: v })?.temporalityPreference;
    expect([pref('delta'), pref('Cumulative'), pref('LOWMEMORY'), pref(0)]).toEqual([0, 1, 2, 0]);
    expect(otlpExporterConfig('http://c', {})).not.toHaveProperty('temporalityPreference');
    expect(() => pref('deltas')).toThrow(ConfigError);
    expect(() => pref('deltas')).toThrow(/temporalityPreference "deltas" is not one of delta, cumulative, lowmemory/);
  });
});
