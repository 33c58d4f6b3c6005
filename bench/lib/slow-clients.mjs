// Slow HTTP clients for the benches that attack the gateway (hostile, soak): raw sockets that
// send a request head or body a byte at a time, or stop sending, and are opened again when the
// gateway closes them; and the gateway's client-connection counters from its /metrics.
import { connect } from 'node:net';

/**
 * `slowHeader` sockets sending a request head one byte every `trickleS` seconds, `slowBody`
 * sending a whole head and then a body: half of them one byte every `trickleS` seconds (never
 * silent for long, so only client_request_timeout ends them), half 10 bytes and then nothing
 * (client_body_timeout ends them). The bytes go out on a shared ticker (one timer for all). A
 * socket the gateway closes is counted by what it got (a 408, another answer, nothing) and
 * opened again, until stop(); `opened` resolves once all are open.
 */
export function slowClients({ port, slowHeader, slowBody, trickleS }) {
  const HEAD = 'POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n';
  const kinds = [
    ...Array.from({ length: slowHeader }, () => 'header'),
    ...Array.from({ length: slowBody }, (_, i) => (i % 2 === 0 ? 'body-trickle' : 'body-stall')),
  ];
  const tally = {};
  const count = (kind, what) => {
    tally[kind] ??= { opened: 0, connectFailed: 0, answered408: 0, answeredOther: 0, closedSilently: 0, openAtEnd: 0 };
    tally[kind][what]++;
  };
  const live = new Set();
  let stopping = false;
  let pendingCloses = 0;
  let allClosed = () => {};
  const closed = new Promise((r) => (allClosed = r));

  const open = (kind) =>
    new Promise((resolve) => {
      const s = connect(Number(port), '127.0.0.1');
      const c = { kind, s, got: '', connected: false };
      s.setEncoding('latin1');
      s.on('data', (d) => (c.got += d));
      s.on('error', () => {});
      s.once('connect', () => {
        // Reopened just as the attack ended: not part of it.
        if (stopping) {
          s.destroy();
          resolve();
          return;
        }
        c.connected = true;
        count(kind, 'opened');
        live.add(c);
        if (kind === 'header') s.write(`${HEAD}X-Slow: `);
        else s.write(`${HEAD}Content-Length: 100000\r\n\r\n${kind === 'body-stall' ? '{"model":"' : '{'}`);
        resolve();
      });
      s.once('close', () => {
        // A connection that never opened (the gateway's accept queue full, on a loaded machine) is
        // no slow client the gateway failed to answer: counted apart and tried again.
        if (!c.connected) {
          resolve();
          if (stopping) return;
          count(kind, 'connectFailed');
          setTimeout(() => void open(kind), 100);
          return;
        }
        const wasLive = live.delete(c);
        if (stopping) {
          if (wasLive && --pendingCloses === 0) allClosed();
          return;
        }
        if (c.got.startsWith('HTTP/1.1 408')) count(kind, 'answered408');
        else if (c.got) count(kind, 'answeredOther');
        else count(kind, 'closedSilently');
        void open(kind);
      });
    });
  const opened = (async () => {
    for (let i = 0; i < kinds.length; i += 200) await Promise.all(kinds.slice(i, i + 200).map(open));
  })();
  // Every second a 1/trickleS share of the trickling sockets sends one more byte.
  let turn = 0;
  const ticker = setInterval(() => {
    turn = (turn + 1) % trickleS;
    let i = 0;
    for (const c of live) {
      if (i++ % trickleS !== turn || c.kind === 'body-stall') continue;
      c.s.write(c.kind === 'header' ? 'a' : ' ');
    }
  }, 1000);
  return {
    opened,
    closed,
    tally,
    open: () => live.size,
    stop() {
      stopping = true;
      clearInterval(ticker);
      pendingCloses = live.size;
      for (const c of live) {
        count(c.kind, 'openAtEnd');
        c.s.destroy();
      }
      if (pendingCloses === 0) allClosed();
    },
  };
}

/** The gateway's client-connection counters (flockserve_client_*) from its /metrics. */
export async function gatewayCounters(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = {};
  for (const line of text.split('\n')) {
    const m = /^(flockserve_client_\w+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m) out[`${m[1]}${m[2] ?? ''}`] = Number(m[3]);
  }
  return out;
}
