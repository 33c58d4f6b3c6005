import { closeSync, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

/** One line of a file, without its line end; `line` is 1-based. */
export interface NumberedLine {
  readonly text: string;
  readonly line: number;
}

/** Bytes read at a time: memory stays at about this much whatever the file's size. */
const CHUNK_BYTES = 1 << 20;

/**
 * The lines of a file, read lazily in 1 MiB chunks. Synchronous on purpose: the simulation
 * advances virtual time in a synchronous loop, and a workload pulls its next request from inside
 * a timer, so a pull must not wait on I/O callbacks. A million-row trace is never in memory at
 * once; a multi-byte character split across two chunks is kept whole (StringDecoder).
 * A final line with no line end counts; "\r\n" and "\n" both end a line. Throws the fs error
 * (ENOENT, EISDIR) from the first pull.
 */
export function* fileLines(file: string): Generator<NumberedLine, void, undefined> {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK_BYTES);
    const decoder = new StringDecoder('utf8');
    let rest = '';
    let line = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK_BYTES, null);
      const text = rest + (n > 0 ? decoder.write(buf.subarray(0, n)) : decoder.end());
      let start = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
        const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
        yield { text: text.slice(start, end), line: ++line };
        start = nl + 1;
      }
      rest = text.slice(start);
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
