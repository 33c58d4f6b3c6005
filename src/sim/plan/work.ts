/**
 * Windows in which whole workers must be ready because of the engine work due inside them:
 * the time-local form of Demand.workSeconds, for coveringBound (bound.ts). Pure.
 *
 * Take any run that serves every request, each with a gateway wait ≤ w, on workers that hold
 * at most C = worker_capacity requests each (ready or draining: R(t) such workers at t), and a
 * window [s, e). Let S be the requests with s ≤ a and a + w < e: each is leased before e.
 *
 * 1. A worker runs one step at a time, only while it is up (past its launch delay, not gone).
 *    A step lasts decodeStepMs + decodeStepMsPerSeq × batch + the prefills it admits; give each
 *    of its sequences decodeStepMs / batch + decodeStepMsPerSeq and its own prefill: the shares
 *    sum to the step. A request is in exactly max(1, output) steps (the admitting step makes
 *    its first token), a batch is at most min(C, maxNumSeqs), and its prefill is its prompt
 *    less at most its cache ceiling: its shares sum to at least engineFloorMs, its `work`.
 * 2. Every step of a request in S begins at or after its arrival, so at or after s. A request
 *    of S that has finished by e had all its steps end by e: its work lies in steps inside
 *    [s, e], so Σ of those requests' work ≤ ∫_s^e R(t) dt.
 * 3. A request of S not finished by e holds a slot just before e (it was leased before e), so
 *    at most C × R(e⁻) of them. Their work is at most that of the C × R(e⁻) largest in S.
 *
 * So if R ≤ k − 1 all through [s, e), then Σ_S work − (its C·(k − 1) largest) ≤ (k − 1)(e − s).
 * Where that fails, at least k workers are up at some instant of [s, e): a hit of level k.
 * Nothing here is fluid: the count of workers is whole, and no work is assumed done at full
 * batch beyond the share each step really gives.
 *
 * Windows: for each length L of `windowsMs`, starts every L/8 from 0; each is shrunk to
 * [first arrival in it, last arrival + w] (the same requests; a shorter window only asks more),
 * and reported closed, which asks less (coveringBound's infimum).
 */
import type { HitWindow } from './bound.js';

/** Window lengths tried: a second to ten minutes. */
export const HIT_WINDOWS_MS: readonly number[] = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600].map((s) => s * 1000);

export interface HitOptions {
  /** Requests a worker holds at once (worker_capacity). */
  readonly capacity: number;
  /** Longest gateway wait of the runs compared, ms. */
  readonly waitMs: number;
  readonly windowsMs?: readonly number[];
}

/** Windows that need level ≥ 1 ready somewhere; `arrivalMs` sorted, `workMs` each request's least engine time. */
export function windowHits(arrivalMs: ArrayLike<number>, workMs: ArrayLike<number>, o: HitOptions): HitWindow[] {
  const C = o.capacity;
  const w = o.waitMs;
  const n = arrivalMs.length;
  const out: HitWindow[] = [];
  if (n === 0) return out;
  const last = arrivalMs[n - 1]!;
  for (const L of o.windowsMs ?? HIT_WINDOWS_MS) {
    if (!(L > w)) continue;
    const stride = L / 8;
    let i = 0;
    let j = 0;
    for (let s = 0; s <= last; s += stride) {
      while (i < n && arrivalMs[i]! < s) i++;
      // Requests with a + w < s + L.
      while (j < n && arrivalMs[j]! + w < s + L) j++;
      if (j <= i) continue;
      const start = arrivalMs[i]!;
      const end = arrivalMs[j - 1]! + w;
      const level = hitLevel(workMs, i, j, C, end - start);
      if (level >= 1) out.push({ startMs: start, endMs: end, level });
    }
  }
  return out;
}

/** The largest k with Σ work − (the C·(k − 1) largest) > (k − 1)·length, 0 if none; over work[i, j). */
export function hitLevel(workMs: ArrayLike<number>, i: number, j: number, C: number, lengthMs: number): number {
  const works = Float64Array.from({ length: j - i }, (_, x) => workMs[i + x]!).sort();
  // Sums of the smallest, so what is left after dropping the largest carries no cancellation.
  const sum = new Float64Array(works.length + 1);
  for (let x = 0; x < works.length; x++) sum[x + 1] = sum[x]! + works[x]!;
  if (!(sum[works.length]! > 0)) return 0;
  let k = 1;
  while (sum[Math.max(0, works.length - C * k)]! > k * lengthMs) k++;
  return k;
}
