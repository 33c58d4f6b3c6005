import type { Clock } from '../../src/core/clock.js';
import type { ClusterInfo, ClusterStatus, Endpoint, Provisioner, TaskSpec } from '../../src/core/types.js';

/** The URL the fake gives worker `name`. */
export const fakeUrl = (name: string): string => `http://fake.test/${name}`;

export interface ProvisionerCall {
  readonly op: 'launch' | 'terminate' | 'list' | 'cancelJobs';
  readonly name: string;
  readonly at: number;
}

/**
 * An in-memory provisioner on a (virtual) clock. A launch makes an INIT cluster at once
 * (partial work that must be torn down if the launch fails or is aborted) and turns it UP
 * after `launchDelayMs`. Failures are scripted per call.
 */
export class FakeProvisioner implements Provisioner {
  readonly kind = 'fake';
  readonly clusters = new Map<string, ClusterInfo>();
  readonly calls: ProvisionerCall[] = [];
  launchDelayMs = 1000;
  /**
   * A launch's INIT cluster is listed only this long after the launch starts (SkyPilot records
   * the cluster once its optimizer has picked the resources). Default 0: at once.
   */
  unlistedMs = 0;
  terminateDelayMs = 0;
  /** How long a list takes (`sky status` reads the clouds' state). */
  listDelayMs = 0;
  /** How many of the next list calls reject. */
  failLists = 0;
  /** Launches to fail, in order: the next launch fails when the head is true. */
  readonly launchScript: boolean[] = [];
  /** How many of the next terminate calls reject. */
  failTerminates = 0;
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Cluster names that exist (any status). */
  get alive(): string[] {
    return [...this.clusters.keys()].sort();
  }

  count(op: ProvisionerCall['op'], name?: string): number {
    return this.calls.filter((c) => c.op === op && (name === undefined || c.name === name)).length;
  }

  /** Puts a cluster in place, as if left by an earlier gateway. */
  seed(name: string, status: ClusterStatus, withEndpoint = status === 'UP'): void {
    this.clusters.set(name, { name, status, ...(withEndpoint ? { endpoint: { url: fakeUrl(name) } } : {}) });
  }

  launch(name: string, _task: TaskSpec, signal: AbortSignal): Promise<Endpoint> {
    this.calls.push({ op: 'launch', name, at: this.#clock.now() });
    const fail = this.launchScript.shift() ?? false;
    const listed = (): void => {
      if (!this.clusters.has(name)) this.clusters.set(name, { name, status: 'INIT' });
    };
    if (this.unlistedMs > 0) this.#clock.setTimer(this.unlistedMs, listed);
    else listed();
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        timer.cancel();
        reject(new Error(`launch of ${name} aborted`));
      };
      const timer = this.#clock.setTimer(this.launchDelayMs, () => {
        signal.removeEventListener('abort', onAbort);
        if (fail) return reject(new Error(`no capacity for ${name}`));
        const endpoint = { url: fakeUrl(name), detail: { fake: 'yes' } };
        this.clusters.set(name, { name, status: 'UP', endpoint });
        resolve(endpoint);
      });
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  terminate(name: string): Promise<void> {
    this.calls.push({ op: 'terminate', name, at: this.#clock.now() });
    return new Promise((resolve, reject) => {
      const done = (): void => {
        if (this.failTerminates > 0) {
          this.failTerminates--;
          return reject(new Error(`terminate of ${name} failed`));
        }
        this.clusters.delete(name);
        resolve();
      };
      if (this.terminateDelayMs > 0) this.#clock.setTimer(this.terminateDelayMs, done);
      else done();
    });
  }

  /** Stops the jobs on a cluster (reinit): the cluster stays, its status goes back to INIT until relaunched. */
  async cancelJobs(name: string): Promise<void> {
    this.calls.push({ op: 'cancelJobs', name, at: this.#clock.now() });
    if (!this.clusters.has(name)) throw new Error(`no cluster ${name}`);
  }

  async list(prefix: string): Promise<ClusterInfo[]> {
    this.calls.push({ op: 'list', name: prefix, at: this.#clock.now() });
    if (this.listDelayMs > 0) await new Promise<void>((resolve) => this.#clock.setTimer(this.listDelayMs, resolve));
    if (this.failLists > 0) {
      this.failLists--;
      throw new Error('sky status failed');
    }
    return [...this.clusters.values()].filter((c) => c.name.startsWith(prefix));
  }
}
