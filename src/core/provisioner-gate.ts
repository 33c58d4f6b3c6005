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

  constructor(provisioner: Provisioner) {
    this.#provisioner = provisioner;
  }

  launch(name: string, task: TaskSpec, signal: AbortSignal): Promise<Endpoint> {
    return this.#call('launch', name, () => this.#provisioner.launch(name, task, signal));
  }

  terminate(name: string): Promise<void> {
    return this.#call('terminate', name, () => this.#provisioner.terminate(name));
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

  // `op` and `name` say what the call is, for whatever checks it here.
  #call<T>(_op: ProvisionerOp, _name: string, run: () => Promise<T>): Promise<T> {
    return run();
  }
}
