/**
 * Whether `b[start, end)` is one JSON text (RFC 8259), decided without building it.
 * The gateway must reject a worker's malformed JSON but forwards the bytes it got, so on the
 * paths where nobody needs the objects (an HTTP client's SSE stream, a JSON answer) a scan
 * that allocates nothing replaces JSON.parse, which builds every object and string only to drop
 * them. It answers as JSON.parse of the UTF-8 decoding does (test/unit/upstream/json-check.test.ts
 * compares the two on generated and mutated texts): bytes inside strings are not UTF-8 checked,
 * as the decoder would turn bad ones into U+FFFD and JSON.parse accept them. A range, not a
 * view, so an SSE event's data is checked where it lies (no view object per event).
 */
export function isJson(b: Uint8Array, start = 0, end = b.length): boolean {
  const ok = scan(b, start, end);
  // A deeply nested answer grew the shared stack: let it go rather than hold it for good.
  if (OPEN.length > KEPT_DEPTH) OPEN.length = 0;
  return ok;
}

function scan(b: Uint8Array, start: number, end: number): boolean {
  // How many containers are open; OPEN[0 .. depth) holds which (OBJECT or ARRAY), innermost last.
  let depth = 0;
  let i = ws(b, start, end);
  for (;;) {
    // A value starts at i.
    const c = i < end ? b[i] : NONE;
    if (c === OBJECT) {
      i = ws(b, i + 1, end);
      if (i < end && b[i] === 0x7d) i++;
      else {
        OPEN[depth++] = OBJECT;
        i = member(b, i, end);
        if (i < 0) return false;
        continue;
      }
    } else if (c === ARRAY) {
      i = ws(b, i + 1, end);
      if (i < end && b[i] === 0x5d) i++;
      else {
        OPEN[depth++] = ARRAY;
        continue;
      }
    } else {
      i = scalar(b, i, end);
      if (i < 0) return false;
    }
    // After a value: close what ends here, then a comma leads to the next value (or the text ends).
    for (;;) {
      i = ws(b, i, end);
      if (depth === 0) return i === end;
      if (i >= end) return false;
      const top = OPEN[depth - 1];
      const d = b[i];
      if (d === 0x2c) {
        i = ws(b, i + 1, end);
        if (top === OBJECT) {
          i = member(b, i, end);
          if (i < 0) return false;
        }
        break;
      }
      if ((top === OBJECT && d === 0x7d) || (top === ARRAY && d === 0x5d)) {
        depth--;
        i++;
        continue;
      }
      return false;
    }
  }
}

/**
 * The open containers' stack, shared: scan runs to its end without calling out, so no two
 * calls use it at once, and a check allocates nothing.
 */
const OPEN: number[] = [];
/** The stack's size kept between calls; answers nest a few levels. */
const KEPT_DEPTH = 64;
const OBJECT = 0x7b; // {
const ARRAY = 0x5b; // [
/** No byte: the text ended. */
const NONE = -1;
const TRUE = [0x74, 0x72, 0x75, 0x65];
const FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65];
const NULL = [0x6e, 0x75, 0x6c, 0x6c];

function ws(b: Uint8Array, i: number, end: number): number {
  while (i < end) {
    const c = b[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/** `"key" :` then whitespace: the index of the member's value, or -1. */
function member(b: Uint8Array, i: number, end: number): number {
  if (i >= end || b[i] !== 0x22) return -1;
  i = string(b, i, end);
  if (i < 0) return -1;
  i = ws(b, i, end);
  if (i >= end || b[i] !== 0x3a) return -1;
  return ws(b, i + 1, end);
}

/** A string, number or literal at i: the index after it, or -1. */
function scalar(b: Uint8Array, i: number, end: number): number {
  if (i >= end) return -1;
  const c = b[i]!;
  if (c === 0x22) return string(b, i, end);
  if (c === 0x2d || isDigit(c)) return number(b, i, end);
  if (c === 0x74) return literal(b, i, end, TRUE);
  if (c === 0x66) return literal(b, i, end, FALSE);
  if (c === 0x6e) return literal(b, i, end, NULL);
  return -1;
}

function string(b: Uint8Array, i: number, end: number): number {
  for (let j = i + 1; j < end; j++) {
    const c = b[j]!;
    if (c === 0x22) return j + 1;
    if (c < 0x20) return -1; // control characters must be escaped
    if (c !== 0x5c) continue;
    if (++j >= end) return -1;
    const e = b[j];
    // \" \\ \/ \b \f \n \r \t
    if (e === 0x22 || e === 0x5c || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74)
      continue;
    if (e !== 0x75) return -1;
    for (let k = 0; k < 4; k++) if (++j >= end || !isHex(b[j]!)) return -1; // \uXXXX
  }
  return -1;
}

/** -? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)? */
function number(b: Uint8Array, i: number, end: number): number {
  if (b[i] === 0x2d) i++;
  if (i < end && b[i] === 0x30) i++;
  else if (i < end && isDigit(b[i]!)) i = digits(b, i, end);
  else return -1;
  if (i < end && b[i] === 0x2e) {
    i++;
    if (i >= end || !isDigit(b[i]!)) return -1;
    i = digits(b, i, end);
  }
  if (i < end && (b[i] === 0x65 || b[i] === 0x45)) {
    i++;
    if (i < end && (b[i] === 0x2b || b[i] === 0x2d)) i++;
    if (i >= end || !isDigit(b[i]!)) return -1;
    i = digits(b, i, end);
  }
  return i;
}

function digits(b: Uint8Array, i: number, end: number): number {
  while (i < end && isDigit(b[i]!)) i++;
  return i;
}

function literal(b: Uint8Array, i: number, end: number, word: readonly number[]): number {
  if (i + word.length > end) return -1;
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word[k]) return -1;
  return i + word.length;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}
