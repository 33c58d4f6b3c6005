#!/usr/bin/env node
// A light worker for the proxy-bound phases of bench/datapath.mjs: dependency-free node:http that
// answers OpenAI chat completions from memory (answers built once at start), so a request costs
// it a few µs of CPU and the proxy in front is the bottleneck. Not an engine: it does not read
// the prompt, only whether the body asks for a stream.
//   POST any path, non-streaming: one chat.completion of `--tokens` tokens after `--delay-ms`
//   POST with "stream":true: `--tokens` chunks, one every `--token-interval` ms, then [DONE]
//   GET /health: 200
//   --stamp: a stream's first chunk also carries t_arr (request head seen), t_end (body read) and
//            t_w (first chunk written), epoch ms (performance.timeOrigin + now()), for bench/ttfc-stages.mjs
//
//   node bench/lib/light-worker.mjs --host 127.0.0.2 --port 18600 [--delay-ms 0] [--tokens 8] [--token-interval 10]
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    'delay-ms': { type: 'string', default: '0' },
    tokens: { type: 'string', default: '8' },
    'token-interval': { type: 'string', default: '10' },
    stamp: { type: 'boolean', default: false },
  },
});
const delayMs = Number(values['delay-ms']);
const tokens = Number(values.tokens);
const tokenInterval = Number(values['token-interval']);
const created = Math.floor(Date.now() / 1000);
const head = (object) => ({ id: 'chatcmpl-light', object, created, model: 'sim' });
const usage = { prompt_tokens: 1, completion_tokens: tokens, total_tokens: tokens + 1 };

const answer = Buffer.from(
  JSON.stringify({
    ...head('chat.completion'),
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: 'word '.repeat(tokens).trimEnd() },
        logprobs: null,
        finish_reason: 'length',
      },
    ],
    usage,
  }),
);
const event = (obj) => Buffer.from(`data: ${JSON.stringify(obj)}\n\n`);
const epochMs = () => performance.timeOrigin + performance.now();
const chunk = (i, stamps) =>
  event({
    ...head('chat.completion.chunk'),
    ...stamps,
    choices: [
      {
        index: 0,
        delta: i === 0 ? { role: 'assistant', content: 'word' } : { content: ' word' },
        logprobs: null,
        finish_reason: i === tokens - 1 ? 'length' : null,
      },
    ],
  });
const chunks = Array.from({ length: tokens }, (_, i) => chunk(i));
const done = Buffer.from('data: [DONE]\n\n');
const JSON_HEADERS = { 'content-type': 'application/json', 'content-length': answer.length };
const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' };

function stream(res, tArr, tEnd) {
  res.writeHead(200, SSE_HEADERS);
  let i = 0;
  const timer = setInterval(() => {
    res.write(i === 0 && values.stamp ? chunk(i, { t_arr: tArr, t_end: tEnd, t_w: epochMs() }) : chunks[i]);
    i++;
    if (i === tokens) {
      clearInterval(timer);
      res.end(done);
    }
  }, tokenInterval);
  res.once('close', () => clearInterval(timer));
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': 2 }).end('{}');
    return;
  }
  const tArr = values.stamp ? epochMs() : 0;
  let streamed = false;
  req.on('data', (c) => {
    if (!streamed && (c.includes('"stream":true') || c.includes('"stream": true'))) streamed = true;
  });
  req.on('end', () => {
    if (streamed) return stream(res, tArr, values.stamp ? epochMs() : 0);
    if (delayMs > 0) setTimeout(() => res.writeHead(200, JSON_HEADERS).end(answer), delayMs);
    else res.writeHead(200, JSON_HEADERS).end(answer);
  });
});
server.keepAliveTimeout = 3600_000;
server.listen(Number(values.port), values.host, () =>
  console.log(`light-worker listening on ${values.host}:${server.address().port}`),
);
