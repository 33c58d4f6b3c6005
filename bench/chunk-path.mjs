#!/usr/bin/env node
// CPU per SSE chunk of the gateway's own work on a streamed answer, in process (no network):
// a worker's chunk through the answer check (checkedAnswer) to the reader, one chunk per stream
// per event-loop turn as sockets deliver them, over 200 streams. Phase S of bench/datapath.mjs
// runs this path 18,000 times a second; this isolates it from the sockets and the VM's noise.
//   npm run build && node bench/chunk-path.mjs [--chunks 400000]
// Writes bench/results/chunk-path.md.
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { BodyStream } from '../dist/upstream/body-stream.js';
import { checkedAnswer } from '../dist/upstream/checked-answer.js';
import { TokenTally } from '../dist/telemetry/token-count.js';
import { median } from './lib/load.mjs';

const { values } = parseArgs({ options: { chunks: { type: 'string', default: '400000' } } });
const CHUNKS = Number(values.chunks);
const STREAMS = 200;

// A vLLM chat chunk (about 220 bytes), as the worker sends it.
const chunk = Buffer.from(
  `data: ${JSON.stringify({
    id: 'chatcmpl-9ed5ed9081374aab83795d9658c1484a',
    object: 'chat.completion.chunk',
    created: 1795873288,
    model: 'sim',
    choices: [{ index: 0, delta: { content: ' tok' }, logprobs: null, finish_reason: null }],
  })}\n\n`,
);

/** The worker's side: the body undici's callbacks feed (pushed to; pause and resume are no-ops here). */
const source = () => new BodyStream({ pause() {}, resume() {}, abort() {} });
const reader = (onChunk) => ({ data: onChunk, end() {}, error() {} });

const check = (kind) => (source, onChunk) => {
  const out = checkedAnswer(source, {
    kind,
    worker: 'w',
    repetitionLimit: 0,
    openaiStream: true,
    mapError: (e) => e,
  });
  out.read(reader(onChunk)).resume();
};

const paths = [
  ['the source alone (a call per chunk)', (source, onChunk) => source.read(reader(onChunk)).resume()],
  ['checked body, raw (the stream layer)', check('raw')],
  ['checked body, SSE (the stream layer and the event check)', check('sse')],
  [
    'checked body, SSE, + the token count (what an HTTP stream does per chunk)',
    (source, onChunk) => {
      const tally = new TokenTally(true);
      check('sse')(source, (c) => {
        tally.add(c);
        onChunk(c);
      });
    },
  ],
];

/** CPU ns per chunk for one path: every stream gets one chunk per loop turn. */
async function measure(wire) {
  const sources = Array.from({ length: STREAMS }, source);
  let seen = 0;
  for (const s of sources) wire(s, () => seen++);
  const turn = () =>
    new Promise((resolve) =>
      setImmediate(() => {
        for (const s of sources) s.push(chunk);
        resolve();
      }),
    );
  for (let i = 0; i < 500; i++) await turn(); // warm-up: the JIT's tiers
  const before = process.cpuUsage();
  const from = seen;
  for (let i = 0; i < CHUNKS / STREAMS; i++) await turn();
  const used = process.cpuUsage(before);
  if (seen - from !== CHUNKS) throw new Error(`expected ${CHUNKS} chunks through, got ${seen - from}`);
  return ((used.user + used.system) * 1000) / CHUNKS;
}

const rows = [];
for (const [name, wire] of paths) {
  const samples = [];
  for (let i = 0; i < 3; i++) samples.push(await measure(wire));
  rows.push(`| ${name} | ${median(samples).toFixed(0)} |`);
  console.log(name, samples.map((s) => s.toFixed(0)).join(' '));
}

const out = `# CPU per SSE chunk, in process

Command: \`npm run build && node bench/chunk-path.mjs --chunks ${CHUNKS}\`

Machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}; the machine is
shared, so read the differences between rows, not the absolute numbers.

One vLLM-style chat chunk of ${chunk.length} bytes per stream per event-loop turn, ${STREAMS} streams,
${CHUNKS} chunks per sample, median of 3 samples after a warm-up; CPU time (user + system) per chunk.
The writes to the client and the reads from the worker are not in it (bench/datapath.mjs has them).

| path | CPU ns per chunk |
| --- | ---: |
${rows.join('\n')}
`;
writeFileSync(new URL('./results/chunk-path.md', import.meta.url), out);
console.log(out);
