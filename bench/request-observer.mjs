#!/usr/bin/env node
// Cost of the request observer per request, in process (no network): what telemetry adds
// to each request's CPU time. One streamed chat answer of 20 SSE chunks per request,
// through the no-op observer, then metrics, + tracing, + the SQLite request log.
//   npm run build && node bench/request-observer.mjs [--requests 20000] [--chunks 20]
// Writes bench/results/request-observer.md.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { AggregationTemporality, MeterProvider } from '@opentelemetry/sdk-metrics';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { NOOP_OBSERVER } from '../dist/service/observer.js';
import { GatewayMetrics } from '../dist/telemetry/metrics.js';
import { SummedHistograms } from '../dist/telemetry/summed-histograms.js';
import { TelemetryObserver } from '../dist/telemetry/request-observer.js';
import { RequestLog } from '../dist/telemetry/request-log.js';
import { RequestTracer } from '../dist/telemetry/tracing.js';
import { systemClock } from '../dist/runtime/system-clock.js';
import { median } from './lib/load.mjs';

const { values } = parseArgs({
  options: { requests: { type: 'string', default: '20000' }, chunks: { type: 'string', default: '20' } },
});
const N = Number(values.requests);
const CHUNKS = Number(values.chunks);

// A vLLM chat chunk (about 230 bytes), as the worker sends it.
const chunk = Buffer.from(
  `data: ${JSON.stringify({
    id: 'chatcmpl-0123456789abcdef',
    object: 'chat.completion.chunk',
    created: 1700000000,
    model: 'meta-llama/Llama-3.1-8B-Instruct',
    choices: [{ index: 0, delta: { content: ' token' }, logprobs: null, finish_reason: null }],
  })}\n\n`,
);
const done = Buffer.from('data: [DONE]\n\n');
// The same answer whole (a non-streamed chat completion with its usage), as in phase A of datapath.
const whole = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-0123456789abcdef',
    object: 'chat.completion',
    created: 1700000000,
    model: 'meta-llama/Llama-3.1-8B-Instruct',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: ' token'.repeat(CHUNKS) },
        logprobs: null,
        finish_reason: 'length',
      },
    ],
    usage: { prompt_tokens: 12, total_tokens: 12 + CHUNKS, completion_tokens: CHUNKS },
  }),
);
const headers = { 'content-type': 'application/json', 'user-agent': 'bench' };

function metrics() {
  const histograms = new SummedHistograms('bench');
  const reader = new PrometheusExporter({
    preventServerStart: true,
    metricProducers: [histograms.producer(AggregationTemporality.CUMULATIVE)],
  });
  const provider = new MeterProvider({ readers: [reader] });
  return new GatewayMetrics(provider.getMeter('bench'), histograms, 1, {
    workers: () => [],
    queueLength: () => 0,
    queueLengthMean: () => 0,
    gatewayQueueLength: () => 0,
    totalRequests: () => 0,
    fleetStats: () => ({ launched: 0, launchFailures: 0, replaced: 0, terminated: 0, terminateFailures: 0 }),
    targetWorkers: () => 0,
  });
}

const log = pino({ level: 'info' }, pino.destination('/dev/null'));
const base = { now: () => performance.now(), wallClock: () => Date.now(), log };
const requestLog = new RequestLog({
  path: join(mkdtempSync(join(tmpdir(), 'bench-reqlog-')), 'r.db'),
  clock: systemClock,
  log,
  maxBuffered: N * 2,
});
const setups = [
  ['no-op observer (telemetry off)', NOOP_OBSERVER],
  ['metrics', new TelemetryObserver({ ...base, metrics: metrics() })],
  [
    'metrics + tracing (traceparent, API no-op tracer)',
    new TelemetryObserver({ ...base, metrics: metrics(), tracer: new RequestTracer() }),
  ],
  [
    'metrics + tracing + request log (row queued; writes on the timer)',
    new TelemetryObserver({ ...base, metrics: metrics(), tracer: new RequestTracer(), requestLog }),
  ],
  [
    `metrics, the answer whole (${whole.length} bytes of JSON with its usage)`,
    new TelemetryObserver({ ...base, metrics: metrics() }),
    true,
  ],
];

function run(observer, wholeAnswer = false) {
  const workers = ['w-0', 'w-1', 'w-2', 'w-3'];
  const t0 = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    const r = observer.begin({ transport: 'http', method: 'POST', route: '/v1/chat/completions', headers });
    r.answered({ worker: workers[i & 3], status: 200, stream: !wholeAnswer, queueWaitMs: 0 });
    if (wholeAnswer) r.chunk(whole);
    else {
      for (let c = 0; c < CHUNKS; c++) r.chunk(chunk);
      r.chunk(done);
    }
    r.finish({ status: 200, model: 'meta-llama/Llama-3.1-8B-Instruct' });
  }
  const used = process.cpuUsage(t0);
  return (used.user + used.system) / N; // µs of CPU per request
}

// Reference: what counting tokens by parsing each chunk's JSON would cost (not used by the gateway).
const parseEveryChunk = {
  begin: () => ({
    answered() {},
    chunk(c) {
      const s = c.toString('utf8');
      if (!s.includes('[DONE]')) JSON.parse(s.slice(6));
    },
    finish() {},
  }),
};
setups.push(['reference: JSON.parse of every chunk, nothing else', parseEveryChunk]);

const rows = [];
for (const [name, observer, wholeAnswer] of setups) {
  run(observer, wholeAnswer); // warm-up
  rows.push({ name, us: median([run(observer, wholeAnswer), run(observer, wholeAnswer), run(observer, wholeAnswer)]) });
}
requestLog.close();

const noop = rows[0].us;
const lines = [
  '# Request observer cost',
  '',
  `Command: \`npm run build && node bench/request-observer.mjs --requests ${N} --chunks ${CHUNKS}\``,
  '',
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, Node ${process.version}, load average ${loadavg()[0].toFixed(1)}`,
  'at the end (shared with other work): read the differences and ratios, not the absolute numbers.',
  '',
  `Per request: begin, answered (streamed), ${CHUNKS} vLLM chat chunks of ${chunk.length} bytes + \`[DONE]\`, finish;`,
  `the last row: answered (not streamed), the answer in one chunk, finish.`,
  `${N} requests per sample, median of 3 samples after a warm-up; CPU time (user + system) per request.`,
  '',
  '| observer | CPU µs / request | added over no-op µs |',
  '| --- | ---: | ---: |',
  ...rows.map((r) => `| ${r.name} | ${r.us.toFixed(2)} | ${(r.us - noop).toFixed(2)} |`),
  '',
];
writeFileSync(new URL('./results/request-observer.md', import.meta.url), lines.join('\n'));
console.log(lines.join('\n'));
