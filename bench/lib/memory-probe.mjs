// Loaded into a gateway that a benchmark starts (`node --expose-gc --import bench/lib/memory-probe.mjs
// dist/cli/flockserve.js ...`, with an IPC channel): answers { probe, gc, snapshot } messages with
// the process's memory, after a full collection when asked (and a heap snapshot written to the
// path `snapshot` names), so a bench can tell the JavaScript heap and the buffers outside it from
// the rest of the RSS. It never keeps the process alive.
import { readFileSync } from 'node:fs';
import { writeHeapSnapshot } from 'node:v8';

if (process.send) {
  process.on('message', (m) => {
    if (typeof m !== 'object' || m === null || !('probe' in m)) return;
    if (m.gc && typeof globalThis.gc === 'function') {
      globalThis.gc();
      globalThis.gc();
    }
    if (typeof m.snapshot === 'string') writeHeapSnapshot(m.snapshot);
    const u = process.memoryUsage();
    // smaps_rollup splits the RSS: anonymous memory (heaps, malloc) from mapped files (code).
    let anonKiB = NaN;
    try {
      anonKiB = Number(/^Anonymous:\s+(\d+) kB/m.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))?.[1]);
    } catch {
      /* not Linux */
    }
    // What keeps the event loop alive (sockets, timers, servers...), by kind: a count that grows
    // is a leaked handle even where memory does not show it.
    const resources = {};
    for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] ?? 0) + 1;
    process.send({ probe: m.probe, ...u, anonKiB, resources });
  });
  process.channel?.unref();
}
