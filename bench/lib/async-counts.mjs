// Preloaded into a gateway by bench/request-counts.mjs --async (`node --import ...`): counts the
// async resources it creates by type (PROMISE, TickObject, Timeout, Immediate, TCPWRAP ...) and
// writes the running totals as JSON to the file named by BENCH_ASYNC_COUNTS on each SIGUSR2.
// The hook costs CPU itself: a run with it measures counts, not speed.
import { createHook } from 'node:async_hooks';
import { writeFileSync } from 'node:fs';

const counts = {};
createHook({
  init(_id, type) {
    counts[type] = (counts[type] ?? 0) + 1;
  },
}).enable();
process.on('SIGUSR2', () => writeFileSync(process.env.BENCH_ASYNC_COUNTS, JSON.stringify(counts)));
