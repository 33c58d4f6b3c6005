#!/usr/bin/env node
// Writes a trace played N times in a row, each copy shifted by a period (default an hour): a
// longer stretch of a real service's traffic shape for the autoscaler, where a public trace is
// one hour long. Azure LLM inference CSV (the first column a UTC timestamp,
// `YYYY-MM-DD HH:MM:SS.fffffff`) or Mooncake JSON lines (`timestamp` in ms); other columns and
// fields are copied as they are, so a Mooncake copy keeps its `hash_ids` and shares every prefix
// with the copies before it (its cache warmed by them). Reads and writes whole files: the traces
// it is for are small.
//
//   node bench/trace-repeat.mjs IN OUT [--times 3] [--period-s 3600]
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { times: { type: 'string', default: '3' }, 'period-s': { type: 'string', default: '3600' } },
});
const [input, output] = positionals;
const times = Number(values.times);
const periodMs = Number(values['period-s']) * 1000;
if (!input || !output || !(Number.isInteger(times) && times >= 1) || !(periodMs > 0)) {
  console.error('usage: node bench/trace-repeat.mjs IN OUT [--times N >= 1] [--period-s S > 0]');
  process.exit(2);
}

const lines = readFileSync(input, 'utf8')
  .split('\n')
  .filter((l) => l.length > 0);
const out = [];
if (input.endsWith('.jsonl')) {
  for (let k = 0; k < times; k++)
    for (const line of lines) {
      const row = JSON.parse(line);
      out.push(JSON.stringify({ ...row, timestamp: row.timestamp + k * periodMs }));
    }
} else {
  const [header, ...rows] = lines;
  out.push(header);
  for (let k = 0; k < times; k++)
    for (const row of rows) {
      const comma = row.indexOf(',');
      const stamp = row.slice(0, comma);
      // Milliseconds are what Date keeps; the digits below them are copied as they are.
      const ms = Date.parse(`${stamp.slice(0, 23).replace(' ', 'T')}Z`);
      if (!Number.isFinite(ms)) throw new Error(`${input}: not a timestamp: ${stamp}`);
      const shifted = new Date(ms + k * periodMs).toISOString().slice(0, 23).replace('T', ' ');
      out.push(`${shifted}${stamp.slice(23)}${row.slice(comma)}`);
    }
}
writeFileSync(output, `${out.join('\n')}\n`);
console.error(`${output}: ${input} ${times} times, ${(periodMs / 1000).toFixed(0)} s apart`);
