import type { Clock } from './clock.js';

/** What the gateway's load did over one stretch of time (LoadHistory's bucket). */
export interface LoadBucket {
  /** Clock ms the bucket starts at; it spans LoadHistory.bucketMs. */
  readonly startMs: number;
  /** Most requests in flight + waiting at any moment in it. */
  readonly peak: number;
  /** Time-weighted mean of in flight + waiting. */
  readonly mean: number;
  /** Most requests waiting at the gateway (for a free slot) at any moment in it. */
  readonly peakWaiting: number;
  /** Time-weighted mean of the requests waiting (so mean − meanWaiting is the mean in flight). */
  readonly meanWaiting: number;
  /** Time-weighted mean of ready workers. */
  readonly ready: number;
  /**
   * Requests that came in: the queue length's rises, and the requests turned away at a full
   * queue (LoadHistory.refused), which are demand the fleet did not take.
   */
  readonly arrivals: number;
  /** Requests that left: answered, failed or gave up (its falls). */
  readonly departures: number;
  /**
   * Of the departures, requests that left from the wait queue without a slot (queue timeout, the
   * client gone, shutdown): they took no worker time, so a worker's service is the other ones'.
   */
  readonly abandoned: number;
  /** Streamed answers whose first token came back in it (their worker had prefilled the prompt). */
  readonly firstTokens: number;
  /**
   * Their times from taking a slot to that first token, summed (ms): a prompt's prefill and what
   * it waited for in the engine's batch, so their mean bounds what one prefill costs a worker.
   */
  readonly firstTokenMs: number;
  /**
   * Requests that left the wait queue in it, for a slot or not, after waiting longer than
   * LoadHistory's `lateAfterMs` (queue_wait_slo): the ones late against the p99 SLO.
   */
  readonly late: number;
}

/**
 * The recent past of the gateway's load in short buckets (default 10 s, the last hour): each
 * bucket keeps the peak and the mean of the queue length (in flight + waiting), the peak of
 * the requests waiting for a slot, the mean of ready workers, the arrivals and departures, and
 * how long streamed answers took to their first token.
 * A policy reads peaks that a running mean hides (a burst of 200 requests in 5 s is a peak of
 * 200 in its bucket, a mean of ~2 over 10 minutes) and rates it can forecast.
 *
 * Fed on every change of the queue length (Admission reports it) and of the ready workers;
 * O(1) per change, and the buckets kept are bounded (`keep`). Arrivals and departures are
 * counted from the queue length's rises and falls: a request adds one when it arrives and
 * takes one when it leaves (taking a slot moves it from waiting to in flight, no change).
 */
export class LoadHistory {
  readonly bucketMs: number;
  readonly #keep: number;
  readonly #clock: Clock;
  readonly #done: LoadBucket[] = [];
  #start: number;
  #queue = 0;
  #waiting = 0;
  #ready = 0;
  #since: number;
  #peak = 0;
  #peakWaiting = 0;
  #area = 0;
  #waitingArea = 0;
  #readyArea = 0;
  #arrivals = 0;
  #departures = 0;
  #abandoned = 0;
  #firstTokens = 0;
  #firstTokenMs = 0;
  #late = 0;
  readonly #lateAfterMs: number;

  /**
   * `aligned`: buckets start at multiples of bucketMs on the clock rather than when the history
   * does, so replicas whose clocks agree (the wall clock) close their buckets at the same instants
   * and the leader sums them by start time (FleetHistory). The first bucket then covers only part
   * of its span: the load before the start counts as none, as it was none at this replica.
   * `lateAfterMs`: a request that waits longer than this for a slot is late (default 1 s).
   */
  constructor(clock: Clock, o: { bucketMs?: number; keep?: number; aligned?: boolean; lateAfterMs?: number } = {}) {
    this.bucketMs = o.bucketMs ?? 10_000;
    this.#lateAfterMs = o.lateAfterMs ?? 1000;
    if (!(this.#lateAfterMs >= 0)) throw new RangeError(`lateAfterMs must be >= 0, got ${this.#lateAfterMs}`);
    this.#keep = o.keep ?? 360;
    if (!(this.bucketMs > 0)) throw new RangeError(`bucket must be > 0 ms, got ${this.bucketMs}`);
    if (!(Number.isInteger(this.#keep) && this.#keep >= 1))
      throw new RangeError(`keep must be >= 1, got ${this.#keep}`);
    this.#clock = clock;
    const now = clock.now();
    this.#start = o.aligned ? Math.floor(now / this.bucketMs) * this.bucketMs : now;
    this.#since = now;
  }

  /**
   * The queue length (in flight + waiting) and the requests waiting for a slot, as of `now`
   * (the clock's time, read by the caller when it reads it anyway).
   */
  record(queue: number, waiting: number, now = this.#clock.now()): void {
    this.#roll(now);
    const delta = queue - this.#queue;
    if (delta > 0) this.#arrivals += delta;
    else {
      this.#departures -= delta;
      // The gateway reports each change apart (a slot freed, then a waiter leased it): a fall that
      // the waiting count falls with in the same report is requests leaving the wait queue itself.
      this.#abandoned += Math.min(-delta, Math.max(0, this.#waiting - waiting));
    }
    this.#advance(now);
    this.#queue = queue;
    this.#waiting = waiting;
    if (queue > this.#peak) this.#peak = queue;
    if (waiting > this.#peakWaiting) this.#peakWaiting = waiting;
  }

  /** A streamed answer's first token came back `ms` after its request took a slot. */
  firstToken(ms: number, now = this.#clock.now()): void {
    this.#roll(now);
    this.#firstTokens++;
    this.#firstTokenMs += ms;
  }

  /**
   * A request was turned away without waiting (the wait queue full): it arrived, and counts as
   * late. Uncounted, a saturated gateway's arrivals would read as its throughput, and a fleet
   * sized on them would stay saturated.
   */
  refused(now = this.#clock.now()): void {
    this.#roll(now);
    this.#arrivals++;
    this.#late++;
  }

  /** A request left the wait queue (for a slot, or not) after waiting `ms`. */
  waited(ms: number, now = this.#clock.now()): void {
    if (!(ms > this.#lateAfterMs)) return;
    this.#roll(now);
    this.#late++;
  }

  /** Ready workers, as of now. */
  setReady(ready: number): void {
    const now = this.#clock.now();
    this.#roll(now);
    this.#advance(now);
    this.#ready = ready;
  }

  /** The finished buckets, oldest first (at most `keep`); the one under way is not among them. */
  buckets(): readonly LoadBucket[] {
    this.#roll(this.#clock.now());
    return this.#done;
  }

  /** Accumulates the time since the last change into the bucket under way. */
  #advance(now: number): void {
    const dt = now - this.#since;
    this.#area += this.#queue * dt;
    this.#waitingArea += this.#waiting * dt;
    this.#readyArea += this.#ready * dt;
    this.#since = now;
  }

  /** Closes every bucket that ended by `now`; an idle stretch closes as buckets of the last values. */
  #roll(now: number): void {
    while (now >= this.#start + this.bucketMs) {
      const end = this.#start + this.bucketMs;
      this.#advance(end);
      this.#done.push({
        startMs: this.#start,
        peak: this.#peak,
        mean: this.#area / this.bucketMs,
        peakWaiting: this.#peakWaiting,
        meanWaiting: this.#waitingArea / this.bucketMs,
        ready: this.#readyArea / this.bucketMs,
        arrivals: this.#arrivals,
        departures: this.#departures,
        abandoned: this.#abandoned,
        firstTokens: this.#firstTokens,
        firstTokenMs: this.#firstTokenMs,
        late: this.#late,
      });
      if (this.#done.length > this.#keep) this.#done.shift();
      this.#start = end;
      this.#peak = this.#queue;
      this.#peakWaiting = this.#waiting;
      this.#area = 0;
      this.#waitingArea = 0;
      this.#readyArea = 0;
      this.#arrivals = 0;
      this.#departures = 0;
      this.#abandoned = 0;
      this.#firstTokens = 0;
      this.#firstTokenMs = 0;
      this.#late = 0;
      // A long idle stretch: the buckets before the last `keep` would be dropped at once.
      if (now - this.#start > this.bucketMs * (this.#keep + 1)) {
        const skip = Math.floor((now - this.#start) / this.bucketMs) - this.#keep;
        this.#start += skip * this.bucketMs;
        this.#since = this.#start;
      }
    }
  }
}
