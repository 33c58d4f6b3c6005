/**
 * Arrivals that follow a real rate envelope (e.g. ServeGen's 14 days of a production service,
 * one rate per 10-minute window): the diurnal workload. Pure and clock-free: it yields arrival
 * times, seeded; a driver turns them into requests.
 *
 * The envelope's rates are a whole provider's (~200 req/s): they are scaled by one factor so
 * the mean rate over the simulated span is `meanRate`. Within the span, arrivals form a renewal
 * process in operational time Λ(t) = ∫ scale·rate(s) ds (the time-rescaling theorem): gaps of
 * mean 1 in Λ, so a window of rate λ sees λ arrivals per second on average, and a Poisson
 * process (cv 1) stays Poisson across window edges. Worked numbers: a day of an envelope whose
 * mean is 200 req/s with meanRate 5 → scale 0.025, ≈ 432,000 arrivals; a 10-minute window at
 * 300 req/s in the envelope → 7.5 req/s, ≈ 4,500 arrivals in it.
 */
import { seededRandom } from '../../core/clock.js';
import { renewalGaps } from './random.js';

export interface RateEnvelope {
  /** Seconds per window; window i covers [i·windowS, (i+1)·windowS). */
  readonly windowS: number;
  /** Mean requests per second in each window. */
  readonly rates: readonly number[];
}

export interface EnvelopeOptions {
  readonly seed: number;
  /** Mean requests per second over the span. */
  readonly meanRate: number;
  /** Seconds simulated, from the envelope's start (t = 0 is its first window). */
  readonly durationS: number;
  /** Coefficient of variation of the gaps within a window: 1 is Poisson, above 1 burstier (Gamma). */
  readonly arrivalCv: number;
}

export const ENVELOPE_DEFAULTS = { meanRate: 5, durationS: 86_400, arrivalCv: 1 } as const;

/** Seconds the envelope covers. */
export const envelopeSpanS = (env: RateEnvelope): number => env.rates.length * env.windowS;

/** The envelope's own mean rate over [0, durationS], time-weighted (a partial last window counts in part). */
export function envelopeMeanRate(env: RateEnvelope, durationS: number): number {
  if (!(durationS > 0) || durationS > envelopeSpanS(env) + 1e-9)
    throw new RangeError(`the span must be in (0, ${envelopeSpanS(env)}] s (the envelope's length), got ${durationS}`);
  let area = 0;
  for (let i = 0; i * env.windowS < durationS; i++)
    area += env.rates[i]! * (Math.min(durationS, (i + 1) * env.windowS) - i * env.windowS);
  return area / durationS;
}

/** Arrival times, ms from the start, increasing, all before durationS. */
export function* envelopeArrivals(env: RateEnvelope, o: EnvelopeOptions): Generator<number, void, undefined> {
  if (!(o.meanRate > 0)) throw new RangeError(`mean rate must be > 0, got ${o.meanRate}`);
  const own = envelopeMeanRate(env, o.durationS);
  if (!(own > 0)) throw new RangeError(`the envelope's rate is 0 over the first ${o.durationS} s`);
  const scale = o.meanRate / own;
  const gap = renewalGaps(seededRandom(o.seed), o.arrivalCv);
  let t = 0;
  let w = 0;
  for (;;) {
    // Spend one gap of operational time, window by window.
    let g = gap();
    for (;;) {
      if (w * env.windowS >= o.durationS) return;
      const rate = scale * env.rates[w]!;
      const end = (w + 1) * env.windowS;
      const room = (end - t) * rate;
      if (rate > 0 && g <= room) {
        t += g / rate;
        break;
      }
      g -= room;
      t = end;
      w++;
    }
    if (t >= o.durationS) return;
    yield t * 1000;
  }
}
