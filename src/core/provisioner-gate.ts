import type { ClusterInfo, Endpoint, Provisioner, TaskSpec } from './types.js';

/** The provisioner operations the fleet uses. */
export type ProvisionerOp = 'launch' | 'terminate' | 'list' | 'cancelJobs';

/**
 * The fleet's only way to the provisioner: launching, terminating, listing and cancelling jobs
 * all pass through `#call`, so a rule that must hold for every call that makes or unmakes
 * clusters (one gateway of several may act, checked right before each call) goes there and
 * nowhere else. The fleet's units (Fleet, Terminator) hold this gate, never the provisioner.
 */
export class ProvisionerGate {
  readonly #provisioner: Provisioner;
  readonly #fence: ((action: string) => Promise<void>) | undefined;
  readonly #recordLaunch: ((name: string) => Promise<void>) | undefined;

  /**
   * `fence`, with several gateway replicas: resolves while this replica still leads (checked
   * with the coordinator's store), rejects with a FencedError otherwise; every call waits for it.
   * `recordLaunch`: writes (fenced) that a launch of `name` is under way, before it starts, so
   * that a leader taking over finds it even when the launch has not reached the provisioner's
   * list yet; the launch is not made unless the record is written.
   */
  constructor(
    provisioner: Provisioner,
    fence?: (action: string) => Promise<void>,
    recordLaunch?: (name: string) => Promise<void>,
  ) {
    this.#provisioner = provisioner;
    this.#fence = fence;
    this.#recordLaunch = recordLaunch;
  }

  launch(name: string, task: TaskSpec, signal: AbortSignal): Promise<Endpoint> {
    return this.#call('launch', name, async () => {
      await this.#recordLaunch?.(name);
      signal.throwIfAborted();
      return this.#provisioner.launch(name, task, signal);
    });
  }

  /** `before` runs once the call may go ahead, right before the provisioner's terminate (the worker turns terminating). */
  terminate(name: string, before?: () => void): Promise<void> {
    return this.#call('terminate', name, () => {
      before?.();
      return this.#provisioner.terminate(name);
    });
  }

  list(prefix: string): Promise<ClusterInfo[]> {
    return this.#call('list', prefix, () => this.#provisioner.list(prefix));
  }

  /** Whether the provisioner can stop a worker's jobs in place (`--reinit`). */
  get canCancelJobs(): boolean {
    return this.#provisioner.cancelJobs !== undefined;
  }

  cancelJobs(name: string): Promise<void> {
    return this.#call('cancelJobs', name, () => this.#provisioner.cancelJobs?.(name) ?? Promise.resolve());
  }

  /** A worker another gateway replica launched is this one's now (no I/O: the provisioner takes note). */
  claim(name: string, endpoint: Endpoint): void {
    this.#provisioner.claim?.(name, endpoint);
  }

  #call<T>(op: ProvisionerOp, name: string, run: () => Promise<T>): Promise<T> {
    const fence = this.#fence;
    return fence ? fence(`${op} ${name}`).then(run) : run();
  }
}
