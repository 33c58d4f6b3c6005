/**
 * Work that can come by the thousand at once, done a few at a time: `perTurn` jobs per turn of
 * the event loop (setImmediate), so the requests that arrive in between are served between
 * them. For cutting slow clients: their timeouts fire together when they connected together
 * (one sweep or one check of node's finds them all late), and answering 2,000 of them in one
 * tick stalls every other request for that long. A cut (a 408 written, the socket closed, and the
 * client's reconnection it sets off) costs a few hundred µs of CPU, so the default of 8 holds a
 * turn to a few milliseconds, which a normal request queued behind it can absorb.
 */
export class InTurns {
  readonly #perTurn: number;
  #jobs: (() => void)[] = [];
  #next = 0;
  #scheduled = false;

  constructor(perTurn = 8) {
    this.#perTurn = perTurn;
  }

  add(job: () => void): void {
    this.#jobs.push(job);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#turn);
    }
  }

  readonly #turn = (): void => {
    const end = Math.min(this.#jobs.length, this.#next + this.#perTurn);
    while (this.#next < end) this.#jobs[this.#next++]!();
    if (this.#next < this.#jobs.length) {
      setImmediate(this.#turn);
      return;
    }
    this.#jobs = [];
    this.#next = 0;
    this.#scheduled = false;
  };
}
