// A closed-loop HTTP load generator for the benchmarks: `connections` clients each send
// the next request as soon as the previous answer is read, for `durationMs`. Latencies
// are kept whole (a few hundred thousand numbers at most) so percentiles are exact.
import { Pool } from 'undici';

export async function closedLoop({ url, path, body, headers = {}, connections, durationMs, warmupMs = 500 }) {
  const pool = new Pool(url, { connections, pipelining: 1 });
  const latencies = [];
  let errors = 0;
  let statuses = new Map();
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + durationMs;
  const one = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        const res = await pool.request({
          method: 'POST',
          path,
          headers: { 'content-type': 'application/json', ...headers },
          body,
        });
        await res.body.arrayBuffer();
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        if (t0 >= measureFrom && res.statusCode === 200) latencies.push(performance.now() - t0);
        else if (res.statusCode !== 200) errors++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, one));
  await pool.close();
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
  return {
    requests: latencies.length,
    rps: latencies.length / (durationMs / 1000),
    p50: pct(50),
    p99: pct(99),
    errors,
    statuses: Object.fromEntries(statuses),
    /** Every measured latency (ms), sorted. */
    latencies,
  };
}

/** CPU seconds (user + system) of a process, from /proc (Linux). */
import { readFileSync } from 'node:fs';
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of /proc/PID/stat (1-based), in clock ticks (100/s on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The `p`th percentile (0..100) of `sorted` (ascending), nearest rank below; NaN when empty. */
export function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** The median of some numbers (the mean of the middle two for an even count). */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
