/**
 * Bursts over a low base rate, seeded: the workload where a burst ends before any launch can
 * land, so only headroom meets it. Pure and clock-free: it yields arrival times; a driver turns
 * them into requests.
 *
 * Base arrivals are Poisson at `baseRate`. Bursts start `burstEveryS` apart on average (each gap
 * uniform in [0.5, 1.5]·burstEveryS, so bursts never overlap once burstWidthS < burstEveryS / 2),
 * each with a size drawn uniformly from `burstSize` and its requests spread uniformly over
 * `burstWidthS`. With the defaults an hour holds ≈ 1,800 base requests and ≈ 12 bursts of
 * 50–200 (≈ 1,500 more), each burst ≈ 25 req/s for 5 s over a base of 0.5 req/s.
 */
import { seededRandom } from '../../core/clock.js';
import { between, unitExponential } from './random.js';

export interface BurstyOptions {
  readonly seed: number;
  /** Seconds of traffic: base arrivals before it, bursts that end by it. */
  readonly durationS: number;
  /** Base requests per second (Poisson); 0 for bursts alone. */
  readonly baseRate: number;
  readonly burstSize: readonly [min: number, max: number];
  /** Mean seconds from one burst's start to the next's. */
  readonly burstEveryS: number;
  /** Seconds over which a burst's requests arrive. */
  readonly burstWidthS: number;
}

export const BURSTY_DEFAULTS: Omit<BurstyOptions, 'seed'> = {
  durationS: 3600,
  baseRate: 0.5,
  burstSize: [50, 200],
  burstEveryS: 300,
  burstWidthS: 5,
};

export interface BurstyArrival {
  readonly atMs: number;
  /** The burst it belongs to (0-based), or undefined for a base arrival. */
  readonly burst: number | undefined;
}

/** Checks the knobs; throws a RangeError that names the one at fault. */
export function checkBursty(o: BurstyOptions): void {
  if (!(o.durationS > 0)) throw new RangeError(`duration must be > 0 s, got ${o.durationS}`);
  if (!(o.baseRate >= 0)) throw new RangeError(`base rate must be >= 0, got ${o.baseRate}`);
  const [lo, hi] = o.burstSize;
  if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 1 && lo <= hi))
    throw new RangeError(`burst size must be MIN-MAX with 1 <= MIN <= MAX, got ${lo}-${hi}`);
  if (!(o.burstEveryS > 0)) throw new RangeError(`burst spacing must be > 0 s, got ${o.burstEveryS}`);
  if (!(o.burstWidthS >= 0 && o.burstWidthS < o.burstEveryS / 2))
    throw new RangeError(
      `burst width must be >= 0 and under half the burst spacing (${o.burstEveryS / 2} s), got ${o.burstWidthS}`,
    );
}

/** Arrivals in time order (ms from the start), each marked with its burst. */
export function* burstyArrivals(o: BurstyOptions): Generator<BurstyArrival, void, undefined> {
  checkBursty(o);
  // Separate streams: a change in the base rate does not move the bursts.
  const baseRandom = seededRandom(o.seed);
  const burstRandom = seededRandom((o.seed ^ 0x0b0b5) >>> 0);
  const D = o.durationS;
  const nextGap = (): number => o.burstEveryS * (0.5 + burstRandom());
  let nextBase = o.baseRate > 0 ? unitExponential(baseRandom) / o.baseRate : Infinity;
  let nextBurst = nextGap();
  let burst = -1;
  let pending: number[] = [];
  let pi = 0;
  for (;;) {
    const head = pi < pending.length ? pending[pi]! : Infinity;
    // A burst is drawn once it is the earliest thing left; the previous one is over by then.
    if (head === Infinity && nextBurst + o.burstWidthS <= D && nextBurst <= nextBase) {
      const n = between(burstRandom, o.burstSize);
      const start = nextBurst;
      pending = Array.from({ length: n }, () => start + burstRandom() * o.burstWidthS).sort((a, b) => a - b);
      pi = 0;
      burst++;
      nextBurst += nextGap();
      continue;
    }
    if (head === Infinity && nextBase >= D) return;
    if (head <= nextBase) {
      pi++;
      yield { atMs: head * 1000, burst };
    } else {
      yield { atMs: nextBase * 1000, burst: undefined };
      nextBase += unitExponential(baseRandom) / o.baseRate;
    }
  }
}
