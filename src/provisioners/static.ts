import type { ClusterInfo, Endpoint, Provisioner, TaskSpec } from '../core/types.js';

/**
 * Engines that already run somewhere: a fixed list of base URLs. "Launching" a worker
 * hands out the next URL nobody uses; terminating gives it back (the engine keeps running).
 */
export class StaticProvisioner implements Provisioner {
  readonly kind = 'static';
  readonly #urls: readonly string[];
  /** worker name → URL it holds */
  readonly #inUse = new Map<string, string>();

  constructor(urls: readonly string[]) {
    this.#urls = urls.map((u) => u.trim().replace(/\/+$/, '')).filter((u) => u !== '');
    for (const u of this.#urls) {
      let parsed: URL;
      try {
        parsed = new URL(u);
      } catch {
        throw new Error(`static provisioner: ${JSON.stringify(u)} is not a URL`);
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
        throw new Error(`static provisioner: ${u} must be http:// or https://`);
      }
    }
  }

  /** How many URLs there are: the most workers this provisioner can give. */
  get size(): number {
    return this.#urls.length;
  }

  async launch(name: string, _task?: TaskSpec, _signal?: AbortSignal): Promise<Endpoint> {
    const held = this.#inUse.get(name);
    if (held !== undefined) return { url: held };
    const taken = new Set(this.#inUse.values());
    const url = this.#urls.find((u) => !taken.has(u));
    if (url === undefined) throw new Error(`static provisioner: all ${this.#urls.length} URLs are in use`);
    this.#inUse.set(name, url);
    return { url };
  }

  /** A worker another gateway replica launched: its URL is taken. */
  claim(name: string, endpoint: Endpoint): void {
    const url = endpoint.url.replace(/\/+$/, '');
    if (this.#urls.includes(url)) this.#inUse.set(name, url);
  }

  async terminate(name: string): Promise<void> {
    this.#inUse.delete(name);
  }

  async list(prefix: string): Promise<ClusterInfo[]> {
    return [...this.#inUse]
      .filter(([name]) => name.startsWith(prefix))
      .map(([name, url]) => ({ name, status: 'UP' as const, endpoint: { url } }));
  }
}
