/**
 * The LoRA adapters a client loaded on the fleet at run time (vLLM's /v1/load_lora_adapter and
 * /v1/unload_lora_adapter), so that every worker serves the same ones: a load reaches each
 * worker ready at the time, and a worker that joins later, or that missed a change, is brought
 * to the ledger before it serves. An engine keeps its adapters in its own memory, so without
 * this a request naming an adapter finds it on one worker and a 404 on the others.
 *
 * Pure: it keeps what was asked for and which ledger version each worker has; the service
 * talks to the engines.
 */

import type { SharedAdapter } from './coordination.js';

/** The last change a client made to one adapter. */
export interface AdapterChange {
  readonly name: string;
  /** Loaded (the body is the load request to replay), or unloaded. */
  readonly loaded: boolean;
  /** The client's load request (JSON text) as it came: replayed as it is, so every field the engine reads reaches it. */
  readonly body: string | undefined;
  /** The load's `lora_path`: an engine that lists the adapter from another path holds other weights. */
  readonly path: string | undefined;
  /** What of the client's headers the replay carries: the engine's key, if the engine wants one. */
  readonly headers: Readonly<Record<string, string>>;
  /** The ledger's version when the change was made; later changes have higher ones. */
  readonly version: number;
}

/**
 * What one worker needs to match the ledger, in the order the changes were made: the names to
 * unload (unloaded since, or loaded from another path than the ledger's), then the loads.
 */
export interface AdapterSteps {
  readonly unload: readonly string[];
  readonly load: readonly AdapterChange[];
}

/**
 * The changes kept at most, unloads dropped oldest first past it: an unload is kept only so that
 * a worker whose task loads the adapter at start drops it too, and a client that loads and
 * unloads ever new names must not grow the ledger (and the etcd value it is shared in) for good.
 */
export const MAX_ADAPTER_CHANGES = 1024;

export class AdapterLedger {
  /** The last change per adapter name; a name unloaded stays, as a worker may have it from its task. */
  readonly #changes = new Map<string, AdapterChange>();
  /** The ledger version each worker was last brought to, by worker URL. */
  readonly #applied = new Map<string, number>();
  #version = 0;

  /** 0 until the first change: a fleet that never loads an adapter never syncs one. */
  get version(): number {
    return this.#version;
  }

  /** Records a load that the fleet took; returns the new version. */
  load(name: string, path: string | undefined, body: string, headers: Readonly<Record<string, string>>): number {
    return this.#record({ name, loaded: true, body, path, headers, version: this.#version + 1 });
  }

  /** Records an unload that the fleet took; returns the new version. */
  unload(name: string, headers: Readonly<Record<string, string>>): number {
    return this.#record({ name, loaded: false, body: undefined, path: undefined, headers, version: this.#version + 1 });
  }

  /** The headers of the newest change: the engines' key as the client last sent it. */
  latestHeaders(): Readonly<Record<string, string>> {
    let latest: AdapterChange | undefined;
    for (const c of this.#changes.values()) latest = c;
    return latest?.headers ?? {};
  }

  /** The adapters loaded now, oldest change first. */
  loaded(): string[] {
    return this.#ordered()
      .filter((c) => c.loaded)
      .map((c) => c.name);
  }

  /** The version the worker at `url` was last brought to; 0 for one never brought to any. */
  appliedVersion(url: string): number {
    return this.#applied.get(url) ?? 0;
  }

  /** The changes as the leader shares them with the other replicas. */
  shared(): SharedAdapter[] {
    return this.#ordered().map((c) => ({
      name: c.name,
      loaded: c.loaded,
      ...(c.body === undefined ? {} : { body: c.body }),
      ...(c.path === undefined ? {} : { path: c.path }),
      headers: c.headers,
    }));
  }

  /**
   * Takes the changes a previous leader shared, in its order. Every worker is compared with them
   * again (what it was brought to was this ledger's, not the shared one).
   */
  restore(shared: readonly SharedAdapter[]): void {
    this.#changes.clear();
    this.#applied.clear();
    for (const a of shared) {
      const change = { name: a.name, loaded: a.loaded, body: a.body, path: a.path, headers: a.headers };
      this.#record({ ...change, version: this.#version + 1 });
    }
    // An empty list still moves the version: workers brought to the old changes are compared again.
    if (shared.length === 0) this.#version++;
  }

  /** Whether the worker at `url` was brought to the current version. */
  isCurrent(url: string): boolean {
    return this.appliedVersion(url) === this.#version;
  }

  /** The worker at `url` matches the ledger as of `version` (the version a sync or a fan-out began at). */
  applied(url: string, version: number): void {
    if (version > (this.#applied.get(url) ?? 0)) this.#applied.set(url, version);
  }

  /**
   * The worker at `url` may have lost its adapters (its engine restarted, or it is gone): its next
   * sync reads what it has again.
   */
  forget(url: string): void {
    this.#applied.delete(url);
  }

  /**
   * What a worker whose engine lists `present` (model id → the path it was loaded from, where the
   * engine says) must do to match the ledger: unload what was unloaded and it still has, and what
   * it holds from another path; load what it lacks.
   */
  stepsFor(present: ReadonlyMap<string, string | undefined>): AdapterSteps {
    const unload: string[] = [];
    const load: AdapterChange[] = [];
    for (const c of this.#changes.values()) {
      const has = present.has(c.name);
      const root = present.get(c.name);
      if (!c.loaded) {
        if (has) unload.push(c.name);
      } else if (!has) load.push(c);
      else if (root !== undefined && c.path !== undefined && root !== c.path) {
        unload.push(c.name);
        load.push(c);
      }
    }
    return { unload, load };
  }

  #record(change: AdapterChange): number {
    this.#changes.delete(change.name);
    this.#changes.set(change.name, change);
    this.#version = change.version;
    if (this.#changes.size > MAX_ADAPTER_CHANGES) {
      for (const [name, c] of this.#changes) {
        if (c.loaded) continue;
        this.#changes.delete(name);
        break;
      }
    }
    return change.version;
  }

  /** Map order is insertion order, and a change is re-inserted: this is version order. */
  #ordered(): AdapterChange[] {
    return [...this.#changes.values()];
  }
}
