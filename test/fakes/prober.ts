import type { Prober } from '../../src/core/types.js';

/** Readiness by table: url → healthy (default `healthyByDefault`). `hang` makes probes never answer until aborted. */
export class FakeProber implements Prober {
  readonly healthy = new Map<string, boolean>();
  healthyByDefault = true;
  hang = false;
  readonly probes: string[] = [];

  set(url: string, ok: boolean): void {
    this.healthy.set(url, ok);
  }

  count(url: string): number {
    return this.probes.filter((u) => u === url).length;
  }

  probe(url: string, signal: AbortSignal): Promise<boolean> {
    this.probes.push(url);
    if (this.hang) {
      return new Promise((resolve) => signal.addEventListener('abort', () => resolve(false), { once: true }));
    }
    return Promise.resolve(!signal.aborted && (this.healthy.get(url) ?? this.healthyByDefault));
  }
}
