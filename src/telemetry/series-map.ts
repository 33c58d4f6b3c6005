import type { Attributes } from '@opentelemetry/api';

/** An attribute value as the request path has it: a status code is a number, turned into text once. */
export type SeriesKey = string | number;

/** The SDK's default cardinality limit per instrument, and its overflow series' attribute. */
const SERIES_LIMIT = 2000;
const OVERFLOW: Attributes = { 'otel.metric.overflow': true };

type Level<T> = Map<SeriesKey, Level<T> | T>;

/**
 * One value per combination of attribute values (a metric's series), found through nested Maps
 * keyed by the values themselves. The SDK's synchronous instruments hash the attribute object on
 * every record (sort its keys, JSON.stringify the pairs: sdk-metrics 2 `hashAttributes`); here a
 * lookup is one Map.get per attribute, and the attribute object is built once, with the series.
 * Up to five attributes. Past `limit` series, new combinations share one overflow series marked
 * `otel.metric.overflow`, as the SDK's do: workers come and go, and the map must not grow forever.
 */
export class SeriesMap<T> {
  readonly #names: readonly string[];
  readonly #create: (attributes: Attributes) => T;
  readonly #limit: number;
  readonly #root: Level<T> = new Map();
  readonly #series: { readonly attributes: Attributes; readonly value: T }[] = [];
  #overflow: T | undefined;

  constructor(names: readonly string[], create: (attributes: Attributes) => T, limit = SERIES_LIMIT) {
    if (names.length > 5) throw new Error('SeriesMap: at most five attributes');
    this.#names = names;
    this.#create = create;
    this.#limit = limit;
  }

  /** The series for these attribute values, given in the order of `names`. */
  get(k0?: SeriesKey, k1?: SeriesKey, k2?: SeriesKey, k3?: SeriesKey, k4?: SeriesKey): T {
    const depth = this.#names.length;
    let level = this.#root;
    for (let i = 0; i < depth; i++) {
      const key = (i === 0 ? k0 : i === 1 ? k1 : i === 2 ? k2 : i === 3 ? k3 : k4) ?? '';
      const next = level.get(key);
      if (next === undefined) return this.#add(level, i, [k0, k1, k2, k3, k4]);
      if (i === depth - 1) return next as T;
      level = next as Level<T>;
    }
    // No attributes: one series, kept under the empty key.
    return (level.get('') as T | undefined) ?? this.#add(level, 0, []);
  }

  /** Every series with its attributes, oldest first (the overflow series last). */
  *entries(): IterableIterator<[Attributes, T]> {
    for (const s of this.#series) yield [s.attributes, s.value];
    if (this.#overflow !== undefined) yield [OVERFLOW, this.#overflow];
  }

  /** Adds the series for `keys`, whose levels up to `from` exist, below `level`. */
  #add(level: Level<T>, from: number, keys: readonly (SeriesKey | undefined)[]): T {
    if (this.#series.length >= this.#limit) return (this.#overflow ??= this.#create(OVERFLOW));
    const names = this.#names;
    const attributes: Attributes = {};
    for (let i = 0; i < names.length; i++) attributes[names[i]!] = String(keys[i] ?? '');
    const value = this.#create(attributes);
    this.#series.push({ attributes, value });
    const depth = Math.max(names.length, 1);
    for (let i = from; i < depth - 1; i++) {
      const next: Level<T> = new Map();
      level.set(keys[i] ?? '', next);
      level = next;
    }
    level.set(keys[depth - 1] ?? '', value);
    return value;
  }
}
