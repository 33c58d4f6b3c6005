/**
 * Progress of a long simulation on stderr: a bar redrawn in place on a terminal, a plain line
 * per tenth of the run elsewhere (a log file or CI keeps ten lines, not thousands).
 */

export interface ProgressOptions {
  readonly write: (text: string) => void;
  /** A terminal: redraw one line in place. */
  readonly tty: boolean;
  /** Simulated seconds the traffic spans, when known in advance. */
  readonly spanS?: number;
  /** Requests the workload will send, when known (a fallback measure when the span is not). */
  readonly total?: number;
  /** Wall-clock milliseconds (injected so a test can step it). */
  readonly now: () => number;
}

export interface Progress {
  /** The simulation's onProgress. */
  readonly update: (tS: number, sent: number) => void;
  /** The run is over: clears the bar. */
  readonly done: () => void;
}

const BAR = 30;
/** Redraws of the bar at most this often, wall ms. */
const REDRAW_MS = 200;

export function progressReporter(o: ProgressOptions): Progress {
  const startedAt = o.now();
  let drawnAt = -Infinity;
  let step = 0;
  let drawn = false;
  const fraction = (tS: number, sent: number): number | undefined => {
    if (o.spanS !== undefined && o.spanS > 0) return Math.min(1, tS / o.spanS);
    if (o.total !== undefined && o.total > 0) return Math.min(1, sent / o.total);
    return undefined;
  };
  const describe = (tS: number, sent: number): string => {
    const n = (x: number): string => Math.round(x).toLocaleString('en-US');
    // Past the traffic's span the run drains the requests still queued or in flight.
    const time =
      o.spanS === undefined
        ? `${n(tS)} simulated s`
        : tS <= o.spanS
          ? `${n(tS)} of ${n(o.spanS)} simulated s`
          : `${n(tS)} simulated s (traffic over at ${n(o.spanS)} s, draining)`;
    const wall = ((o.now() - startedAt) / 1000).toFixed(1);
    return `${time}, ${sent.toLocaleString('en-US')} requests sent, ${wall} s wall`;
  };
  return {
    update(tS, sent) {
      const f = fraction(tS, sent);
      if (o.tty) {
        if (o.now() - drawnAt < REDRAW_MS) return;
        drawnAt = o.now();
        const bar =
          f === undefined
            ? ''
            : `[${'#'.repeat(Math.round(f * BAR)).padEnd(BAR, '.')}] ${(f * 100).toFixed(0).padStart(3)}% `;
        o.write(`\r\x1b[2Ksimulating ${bar}${describe(tS, sent)}`);
        drawn = true;
        return;
      }
      // Plain lines: one per tenth of the run, or per simulated hour when its length is unknown.
      const at = f === undefined ? Math.floor(tS / 3600) : Math.floor(f * 10);
      if (at <= step) return;
      step = at;
      o.write(`simulate: ${f === undefined ? '' : `${at * 10}%, `}${describe(tS, sent)}\n`);
    },
    done() {
      if (drawn) o.write('\r\x1b[2K');
    },
  };
}
