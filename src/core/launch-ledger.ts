/**
 * Launches under way, as the leader records them in the shared store: each is written (fenced)
 * before the launch starts and cleared once its worker is up or its cluster torn down. A replica
 * that comes to lead reads them: a launch the previous leader began is awaited and adopted (or,
 * once it has ended unusable, torn down once), never made a second time, and its name is not
 * reused meanwhile.
 */
export interface LaunchIntent {
  readonly name: string;
  /** The replica that started it, and its term. */
  readonly leader: string;
  readonly term: number;
}

export interface LaunchLedger {
  /**
   * Records that this leader is about to launch `name`. Rejects with a FencedError when it no
   * longer leads, with another error when the store did not answer; either way the launch is
   * not made.
   */
  record(name: string): Promise<void>;
  /** The launch of `name` has ended: its worker is up, or its cluster is gone. */
  clear(name: string): Promise<void>;
  /** The launches recorded and not cleared, read from the store now (a watch may lag behind). */
  open(): Promise<LaunchIntent[]>;
}

/**
 * A ledger in memory, for a store in memory (one gateway, the simulation, tests): `check`
 * throws (a FencedError) when the caller may not record a launch, `who` names the leader.
 * Replicas of one store in memory pass the same `intents`.
 */
export class MemoryLaunchLedger implements LaunchLedger {
  readonly #intents: Map<string, LaunchIntent>;
  readonly #check: (action: string) => void;
  readonly #who: () => { leader: string; term: number };

  constructor(
    check: (action: string) => void,
    who: () => { leader: string; term: number },
    intents = new Map<string, LaunchIntent>(),
  ) {
    this.#check = check;
    this.#who = who;
    this.#intents = intents;
  }

  async record(name: string): Promise<void> {
    this.#check(`launch record ${name}`);
    this.#intents.set(name, { name, ...this.#who() });
  }

  async clear(name: string): Promise<void> {
    this.#intents.delete(name);
  }

  async open(): Promise<LaunchIntent[]> {
    return [...this.#intents.values()];
  }
}
