import pino from 'pino';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ExportWatch } from '../../../src/telemetry/export-watch.js';

/** A logger whose lines land in `lines` as "level message". */
function memoryLog(): { log: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      const o = JSON.parse(chunk.toString()) as { level: number; msg: string };
      lines.push(`${pino.levels.labels[o.level]} ${o.msg}`);
      done();
    },
  });
  return { log: pino({ level: 'info' }, sink), lines };
}

const ok = { code: 0 };
const refused = { code: 1, error: new Error('14 UNAVAILABLE: No connection established\n    at stack frame') };

describe('ExportWatch: a collector that is not there, then is', () => {
  it('warns once per run of failures, logs the recovery at info, counts every failure', async () => {
    const { log, lines } = memoryLog();
    const w = new ExportWatch('metrics', 'http://localhost:4317', log);
    // [result, failures counted after it, log lines after it]
    const timeline: [typeof ok, number, number][] = [
      [ok, 0, 0],
      [refused, 1, 1], // the first failure: one warning line
      [refused, 2, 1], // quiet
      [refused, 3, 1],
      [ok, 3, 2], // works again: one info line
      [ok, 3, 2],
      [refused, 4, 3], // a new run of failures warns again
    ];
    for (const [i, [result, failures, logged]] of timeline.entries()) {
      // The reader is told it worked: the failure is handled here.
      expect(w.result(result as never)).toEqual(ok);
      await new Promise((r) => setImmediate(r));
      expect([i, w.failures, lines.length]).toEqual([i, failures, logged]);
    }
    expect(lines).toEqual([
      'warn OTLP metrics export to http://localhost:4317 failed (14 UNAVAILABLE: No connection established); retrying without further warnings until it works, failures are counted in flockserve_otlp_export_failures',
      'info OTLP metrics export to http://localhost:4317 works again, after 3 failed',
      'warn OTLP metrics export to http://localhost:4317 failed (14 UNAVAILABLE: No connection established); retrying without further warnings until it works, failures are counted in flockserve_otlp_export_failures',
    ]);
  });
});
