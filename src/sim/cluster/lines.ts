import { closeSync, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { TraceError } from './trace-types.js';

/** One line of a file, without its line end; `line` is 1-based. */
export interface NumberedLine {
  readonly text: string;
  readonly line: number;
}

/** Bytes read at a time: memory stays at about this much whatever the file's size. */
const CHUNK_BYTES = 1 << 20;

/** The longest line read (a trace's rows are under a few KiB): a longer one is not a trace. */
export const MAX_LINE_CHARS = 1 << 20;

/**
 * The lines of a file, read lazily in 1 MiB chunks. Synchronous on purpose: the simulation
 * advances virtual time in a synchronous loop, and a workload pulls its next request from inside
 * a timer, so a pull must not wait on I/O callbacks. A million-row trace is never in memory at
 * once; a multi-byte character split across two chunks is kept whole (StringDecoder).
 * A final line with no line end counts; "\r\n" and "\n" both end a line; a UTF-8 byte order
 * mark before the first line is dropped. Throws the fs error (ENOENT, EISDIR) from the first
 * pull, and a TraceError for a gzip'd file or a line over MAX_LINE_CHARS.
 */
export function* fileLines(file: string): Generator<NumberedLine, void, undefined> {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK_BYTES);
    const decoder = new StringDecoder('utf8');
    let rest = '';
    let line = 0;
    for (let first = true; ; first = false) {
      const n = readSync(fd, buf, 0, CHUNK_BYTES, null);
      if (first && n >= 2 && buf[0] === 0x1f && buf[1] === 0x8b)
        throw new TraceError(`${file}: the file is gzip-compressed; decompress it first (gunzip)`);
      let text = rest + (n > 0 ? decoder.write(buf.subarray(0, n)) : decoder.end());
      if (first && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      let start = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
        const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
        yield { text: text.slice(start, end), line: ++line };
        start = nl + 1;
      }
      rest = text.slice(start);
      if (rest.length > MAX_LINE_CHARS)
        throw new TraceError(`${file}:${line + 1}: a line over ${MAX_LINE_CHARS} characters; not a trace's row`);
      if (n === 0) break;
    }
    if (rest !== '') yield { text: rest.endsWith('\r') ? rest.slice(0, -1) : rest, line: ++line };
  } finally {
    closeSync(fd);
  }
}

/** The lines of a string, numbered as fileLines numbers them. */
export function* textLines(text: string): Generator<NumberedLine, void, undefined> {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i]!;
    yield { text: t.endsWith('\r') ? t.slice(0, -1) : t, line: i + 1 };
  }
}
