import type { Meter } from '@opentelemetry/api';
import { SeriesMap, type SeriesKey } from './series-map.js';

/**
 * A counter summed here and read by the SDK at collection time, for counters added to on every
 * request: one `add` is a SeriesMap lookup, where the SDK's synchronous counter hashes the
 * attribute object. Exported the same way (a monotonic sum, cumulative; delta exporters get the
 * difference), through an observable counter.
 */
export class Tally {
  readonly #sums: SeriesMap<{ value: number }>;

  constructor(
    meter: Meter,
    name: string,
    options: { description: string; unit: string; attributes: readonly string[] },
  ) {
    const { attributes, ...instrument } = options;
    this.#sums = new SeriesMap(attributes, () => ({ value: 0 }));
    meter.createObservableCounter(name, instrument).addCallback((r) => {
      // A series without attributes, always 0: the counter exists from the start, so a
      // dashboard's sum or rate reads 0 before the first event rather than "No data".
      r.observe(0);
      for (const [a, s] of this.#sums.entries()) r.observe(s.value, a);
    });
  }

  /** Adds `value` to the series of these attribute values (in the order of `attributes`). */
  add(value: number, k0?: SeriesKey, k1?: SeriesKey, k2?: SeriesKey, k3?: SeriesKey, k4?: SeriesKey): void {
    this.#sums.get(k0, k1, k2, k3, k4).value += value;
  }
}
