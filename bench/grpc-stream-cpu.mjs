// CPU of the gateway's gRPC streaming path per message, server side only: a grpc server built
// from DIST (startGrpcServer + createInferenceHandlers) over a stand-in worker that sends EVENTS
// SSE chat chunks as fast as it is let; a grpc-js client in the parent reads CALLS streams.
//   npm run build && node bench/grpc-stream-cpu.mjs DIST [--calls 40] [--events 5000] [--rounds 5]
// (DIST: a build inside this checkout, e.g. dist, or a copy of an older build beside it, to compare.)
import { fork } from 'node:child_process';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    calls: { type: 'string', default: '40' },
    events: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '5' },
    serve: { type: 'boolean', default: false },
  },
});
const DIST = resolve(positionals[0]);
const imp = (p) => import(pathToFileURL(`${DIST}/${p}`).href);
const EVENTS = Number(values.events);

if (values.serve) {
  const { BodyStream } = await imp('upstream/body-stream.js');
  const { checkedAnswer } = await imp('upstream/checked-answer.js');
  const { createInferenceHandlers } = await imp('service/grpc-inference.js');
  const { startGrpcServer } = await imp('service/grpc-server.js');
  const event = (i) =>
    Buffer.from(
      `data: ${JSON.stringify({ id: 'chatcmpl-9ed5ed9081374aab83795d9658c1484a', object: 'chat.completion.chunk', created: 1795873288, model: 'sim', choices: [{ index: 0, delta: { content: ` tok${i}` }, logprobs: null, finish_reason: null }] })}\n\n`,
    );
  const events = Array.from({ length: EVENTS }, (_, i) => event(i));
  const service = {
    readsPrompt: false,
    dispatch: async (call) => {
      let sent = 0;
      let paused = false;
      const send = () => {
        // A socket read's worth per turn: 16 events (~3.5 KiB), as undici hands them on.
        for (let k = 0; k < 16 && !paused && sent < EVENTS; k++) src.push(events[sent++]);
        if (sent === EVENTS) src.finish();
        else if (!paused) setImmediate(send);
      };
      const src = new BodyStream({
        pause: () => (paused = true),
        resume: () => {
          if (!paused) return;
          paused = false;
          setImmediate(send);
        },
        abort: () => (paused = true),
      });
      setImmediate(send);
      return {
        status: 200,
        headers: { 'content-type': 'text/event-stream' },
        worker: 'w',
        queueWaitMs: 0,
        body: checkedAnswer(src, {
          kind: 'sse',
          worker: 'w',
          repetitionLimit: 0,
          openaiStream: false,
          mapError: (err) => err,
          onEvents: call.onSseEvents,
        }),
      };
    },
  };
  const listener = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    inference: createInferenceHandlers(service),
    nodeControl: {},
    health: {},
    maxMessageBytes: 4 << 20,
  });
  process.on('message', (m) => {
    if (m === 'cpu') {
      const u = process.cpuUsage();
      process.send({ cpu: u.user + u.system });
    }
    if (m === 'exit') process.exit(0);
  });
  process.send({ port: listener.port });
} else {
  const grpc = (await import('@grpc/grpc-js')).default;
  const { InferenceServiceClient } = await imp('gen/flockserve/v1/inference.js');
  const child = fork(new URL(import.meta.url).pathname, [DIST, '--serve', '--events', String(EVENTS)]);
  const port = await new Promise((r) => child.once('message', (m) => r(m.port)));
  const cpu = () =>
    new Promise((r) => {
      child.once('message', (m) => r(m.cpu));
      child.send('cpu');
    });
  const client = new InferenceServiceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const one = () =>
    new Promise((res, rej) => {
      let n = 0;
      const s = client.chatCompletion({
        model: 'sim',
        messages: [{ role: 'user', content: { $case: 'text', value: 'hi' } }],
        stream: true,
        stop: [],
      });
      s.on('data', () => n++);
      s.on('error', rej);
      s.on('end', () => (n === EVENTS ? res() : rej(new Error(`got ${n}`))));
    });
  await Promise.all(Array.from({ length: 10 }, one)); // warm-up
  const per = [];
  for (let r = 0; r < Number(values.rounds); r++) {
    const c0 = await cpu();
    await Promise.all(Array.from({ length: Number(values.calls) }, one));
    const c1 = await cpu();
    per.push((c1 - c0) / (Number(values.calls) * EVENTS));
  }
  per.sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      dist: DIST,
      usPerMessage: per.map((x) => +x.toFixed(3)),
      median: +per[per.length >> 1].toFixed(3),
    }),
  );
  child.send('exit');
  client.close();
}
