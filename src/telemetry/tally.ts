import type { Attributes, Meter, ObservableCounter } from '@opentelemetry/api';

/**
 * A counter summed here and read by the SDK at collection time, for counters added to on every
 * request. The SDK's synchronous counter hashes the attributes on every `add` (sorts the keys and
 * JSON.stringifies them: sdk-metrics 2 `hashAttributes`), whatever the object; here one `add` is
 * a string key and a Map lookup, and the attribute object is built once per distinct key.
 * Exported the same way (a monotonic sum, cumulative; delta exporters get the difference).
 */
export class Tally {
  readonly #sums = new Map<string, { attributes: Attributes; value: number }>();
  readonly instrument: ObservableCounter;

  constructor(meter: Meter, name: string, options: { description: string; unit: string }) {
    this.instrument = meter.createObservableCounter(name, options);
    this.instrument.addCallback((r) => {
      for (const s of this.#sums.values()) r.observe(s.value, s.attributes);
    });
  }

  /** Adds `value` under attributes that `key` names one to one (the caller joins their values). */
  add(value: number, key: string, attributes: () => Attributes): void {
    const s = this.#sums.get(key);
    if (s) s.value += value;
    else this.#sums.set(key, { attributes: attributes(), value });
  }
}
