import { describe, expect, it } from 'vitest';
import { formatLine } from '../../../src/telemetry/pretty.js';

const at = Date.UTC(2024, 0, 1, 22, 13, 20, 5);

describe('readable log lines', () => {
  const table: [string, Record<string, unknown>, string][] = [
    [
      'info with fields',
      { level: 30, time: at, svc: 'flockserve', msg: 'worker w-0 ready', worker: 'w-0' },
      '22:13:20.005 INFO  worker w-0 ready  worker=w-0\n',
    ],
    [
      'a value with spaces is quoted',
      { level: 40, time: at, msg: 'retrying', reason: 'status 503' },
      '22:13:20.005 WARN  retrying  reason="status 503"\n',
    ],
    [
      'numbers and nested objects as JSON',
      { level: 20, time: at, msg: 'req', ms: 12.5, o: { a: 1 } },
      '22:13:20.005 DEBUG req  ms=12.5 o={"a":1}\n',
    ],
    [
      'an error shows its stack',
      { level: 50, time: at, msg: 'boom', err: { message: 'x', stack: 'Error: x\n  at y' } },
      '22:13:20.005 ERROR boom  err="Error: x\\n  at y"\n',
    ],
  ];
  for (const [name, obj, want] of table) it(name, () => expect(formatLine(JSON.stringify(obj), false)).toBe(want));

  it('a line that is not JSON passes through', () => expect(formatLine('plain', false)).toBe('plain\n'));

  it('colours only when asked (a terminal)', () => {
    expect(formatLine(JSON.stringify({ level: 30, time: at, msg: 'm' }), true)).toContain('\x1b[32mINFO');
  });
});
