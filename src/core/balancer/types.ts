import type { Random } from '../clock.js';
import type { Worker } from '../pool.js';

/**
 * What a policy may look at besides the workers. Every field but `random` may be
 * missing (a /generate call has no session key, an embeddings call no prompt text):
 * policies fall back to load alone then.
 */
export interface PickContext {
  /** A client-chosen key that should stick to one worker (affinity policies). */
  readonly sessionKey?: string;
  /** The prompt, or its first part, for prefix-affinity policies. */
  readonly promptText?: string;
  /**
   * Workers this request already failed on (names), so a retry goes elsewhere. Admission
   * filters them out before the policy runs, as long as another serving worker exists.
   */
  readonly exclude?: ReadonlySet<string>;
  /** Seeded in tests and the simulation; used for tie-breaks. */
  readonly random: Random;
}

/**
 * Chooses one worker for a request. `candidates` are already filtered to ready workers
 * with a free slot (WorkerPool.candidates()); `pick` returns undefined only when the list
 * is empty (or, defensively, when none of them has room).
 */
export interface BalancerPolicy {
  readonly name: string;
  pick(candidates: readonly Worker[], ctx: PickContext): Worker | undefined;
  /** Called when workers join or leave the ready set; stateless policies omit it. */
  onMembershipChange?(workers: readonly Worker[]): void;
}

/** Knobs for a policy, read by the policies that have any. */
export type BalancerOptions = Readonly<Record<string, unknown>>;

export type BalancerFactory = (opts: BalancerOptions) => BalancerPolicy;
