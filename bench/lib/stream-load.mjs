// Streaming load for the data-path bench (wrk does not read SSE): `concurrency` clients each
// open a stream, read it to its end, and open the next, for `durationMs` after a warm-up.
// Per stream: time to first chunk (first SSE data event or gRPC message), chunks, and whether
// it completed (OpenAI `data: [DONE]` / gRPC status OK, with no error event).
import { credentials } from '@grpc/grpc-js';
import { Pool } from 'undici';

function summary({ ttfc, chunksInWindow, started, complete, failures, windowMs }) {
  ttfc.sort((a, b) => a - b);
  const pct = (p) => ttfc[Math.min(ttfc.length - 1, Math.floor((p / 100) * ttfc.length))] ?? NaN;
  return {
    streams: started,
    complete,
    failures,
    chunksPerSecond: chunksInWindow / (windowMs / 1000),
    ttfcP50: pct(50),
    ttfcP99: pct(99),
  };
}

/** Counts SSE events in a byte stream that may split events anywhere. */
class EventCounter {
  carry = '';
  chunks = 0;
  done = false;
  error = false;
  /** Returns how many data events (not [DONE]) this piece completed. */
  push(buf) {
    const text = this.carry + buf.toString('latin1');
    let from = 0;
    let n = 0;
    for (let end = text.indexOf('\n\n', from); end >= 0; end = text.indexOf('\n\n', from)) {
      const event = text.slice(from, end);
      from = end + 2;
      if (event === 'data: [DONE]') this.done = true;
      else if (event.startsWith('data: {"error"')) this.error = true;
      else if (event.startsWith('data:')) n++;
    }
    this.carry = text.slice(from);
    this.chunks += n;
    return n;
  }
}

/**
 * The measured window, `warmupMs` from now for `durationMs`; `onWindow.start()` and `.end()` run
 * at its edges (the caller reads the proxy's CPU there, so the warm-up is not in it).
 */
function measuredWindow(warmupMs, durationMs, onWindow) {
  const from = performance.now() + warmupMs;
  if (onWindow) {
    setTimeout(onWindow.start, warmupMs);
    setTimeout(onWindow.end, warmupMs + durationMs);
  }
  return { from, end: from + durationMs };
}

export async function sseLoop({ url, path, body, concurrency, durationMs, warmupMs = 1000, onWindow }) {
  const pool = new Pool(url, { connections: concurrency, pipelining: 1, bodyTimeout: 60_000, headersTimeout: 60_000 });
  const s = { ttfc: [], chunksInWindow: 0, started: 0, complete: 0, failures: 0, windowMs: durationMs };
  const { from, end } = measuredWindow(warmupMs, durationMs, onWindow);
  const inWindow = (t) => t >= from && t < end;
  const one = async () => {
    while (performance.now() < end) {
      const start = performance.now();
      const measured = start >= from;
      if (measured) s.started++;
      const counter = new EventCounter();
      let first = true;
      try {
        const res = await pool.request({ method: 'POST', path, headers: { 'content-type': 'application/json' }, body });
        for await (const piece of res.body) {
          const n = counter.push(piece);
          const now = performance.now();
          if (n > 0 && first) {
            first = false;
            if (measured) s.ttfc.push(now - start);
          }
          if (inWindow(now)) s.chunksInWindow += n;
        }
        if (measured) {
          if (res.statusCode === 200 && counter.done && !counter.error) s.complete++;
          else s.failures++;
        }
      } catch {
        if (measured) s.failures++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, one));
  await pool.close();
  return summary(s);
}

/** The same load over the gRPC ChatCompletion stream, with the generated client. */
export async function grpcLoop({ address, Client, request, concurrency, durationMs, warmupMs = 1000, onWindow }) {
  const client = new Client(address, credentials.createInsecure());
  const s = { ttfc: [], chunksInWindow: 0, started: 0, complete: 0, failures: 0, windowMs: durationMs };
  const { from, end } = measuredWindow(warmupMs, durationMs, onWindow);
  const one = async () => {
    while (performance.now() < end) {
      const start = performance.now();
      const measured = start >= from;
      if (measured) s.started++;
      let first = true;
      try {
        for await (const _ of client.chatCompletion(request)) {
          const now = performance.now();
          if (first) {
            first = false;
            if (measured) s.ttfc.push(now - start);
          }
          if (now >= from && now < end) s.chunksInWindow++;
        }
        if (measured) s.complete++;
      } catch {
        if (measured) s.failures++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, one));
  client.close();
  return summary(s);
}

/**
 * Opens `count` streams, `batch` at a time, and keeps them open: resolves once every stream has
 * its first chunk. `close()` cuts them all.
 */
export async function openStreams({ url, path, body, count, batch = 1000 }) {
  const pool = new Pool(url, { connections: count, pipelining: 1, bodyTimeout: 0, headersTimeout: 60_000 });
  const controllers = [];
  let failed = 0;
  const openOne = async () => {
    const ac = new AbortController();
    controllers.push(ac);
    try {
      const res = await pool.request({
        method: 'POST',
        path,
        headers: { 'content-type': 'application/json' },
        body,
        signal: ac.signal,
      });
      if (res.statusCode !== 200) {
        failed++;
        await res.body.arrayBuffer();
        return;
      }
      res.body.on('error', () => {});
      await new Promise((resolve) => {
        res.body.once('data', () => resolve());
        res.body.once('end', () => {
          failed++;
          resolve();
        });
        res.body.once('error', () => {
          failed++;
          resolve();
        });
      });
      res.body.resume(); // keep reading later chunks
    } catch {
      failed++;
    }
  };
  for (let i = 0; i < count; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, count - i) }, openOne));
  }
  return {
    failed,
    async close() {
      for (const ac of controllers) ac.abort();
      await pool.destroy();
    },
  };
}
