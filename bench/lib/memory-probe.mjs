// Loaded into a gateway that a benchmark starts (`node --expose-gc --import bench/lib/memory-probe.mjs
// dist/cli/flockserve.js ...`, with an IPC channel): answers { probe, gc, snapshot } messages with
// the process's memory, after a full collection when asked (and a heap snapshot written to the
// path `snapshot` names), so a bench can tell the JavaScript heap and the buffers outside it from
// the rest of the RSS. It never keeps the process alive.
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics, getHeapStatistics, writeHeapSnapshot } from 'node:v8';

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
    // V8's own malloc (compiler zones, parser) apart from its heap pages, so what is left of the
    // anonymous memory is the rest of the native side: libuv, OpenSSL, nghttp2, glibc's arenas.
    const mallocedMemory = getHeapStatistics().malloced_memory;
    // The young generation's share of heapTotal: it grows by doubling up to
    // --max-semi-space-size as more objects survive a scavenge, and holds on to its size.
    const newSpaceSize = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? NaN;
    process.send({ probe: m.probe, ...u, anonKiB, mallocedMemory, newSpaceSize, resources });
  });
  process.channel?.unref();
}
