import { brotliDecompress, gunzip, inflate, type InputType, type ZlibOptions } from 'node:zlib';
import { GatewayError } from '../core/errors.js';

type Decoder = (buf: InputType, options: ZlibOptions, callback: (err: Error | null, result: Buffer) => void) => void;

/** The content codings a request body may come in (RFC 9110 §8.4.1), by their registered names. */
const DECODERS: ReadonlyMap<string, Decoder> = new Map<string, Decoder>([
  ['gzip', gunzip],
  ['x-gzip', gunzip],
  ['deflate', inflate],
  ['br', brotliDecompress as Decoder],
]);

const SUPPORTED_ENCODINGS = 'gzip, deflate, br or identity';

/**
 * A body sent with `Content-Encoding: header`, decoded (decodeBody), or as it is when the header
 * names `identity` alone; or the error to answer with.
 */
export function decodeRequestBody(
  body: Buffer,
  header: string,
  limit: number,
  done: (decoded: Buffer | GatewayError) => void,
): void {
  const codings = contentCodings(header);
  if (codings instanceof GatewayError) done(codings);
  else if (codings.length === 0) done(body);
  else decodeBody(body, codings, limit, done);
}

/**
 * The codings a `Content-Encoding` header lists, in the order they were applied, without
 * `identity`; an empty list for a plain body. A coding the gateway cannot decode is a 415 that
 * names it, before anything is decoded.
 */
export function contentCodings(header: string): string[] | GatewayError {
  const codings = header
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  const unknown = codings.find((c) => !DECODERS.has(c));
  if (unknown === undefined) return codings;
  return new GatewayError('unsupported_encoding', {
    message: `The request body's Content-Encoding ${unknown} is not supported: send ${SUPPORTED_ENCODINGS}.`,
  });
}

/**
 * Decodes a body sent with `codings` (as contentCodings read them), last applied first, on
 * zlib's thread pool, so a large body does not hold up the requests being served meanwhile.
 * The decoded body is held to `limit` bytes as a plain one is (413), whatever its compressed
 * size: a small body that inflates without bound is refused, not decoded. A body that does not
 * decode as its coding says is a 400.
 */
export function decodeBody(
  body: Buffer,
  codings: readonly string[],
  limit: number,
  done: (decoded: Buffer | GatewayError) => void,
): void {
  const next = (bytes: Buffer, i: number): void => {
    if (i < 0) {
      done(bytes);
      return;
    }
    const coding = codings[i]!;
    DECODERS.get(coding)!(bytes, { maxOutputLength: limit }, (err, decoded) => {
      if (!err) next(decoded, i - 1);
      else if ((err as Error & { code?: string }).code === 'ERR_BUFFER_TOO_LARGE')
        done(
          new GatewayError('body_too_large', {
            message: `The request body is larger than the gateway accepts once decoded (${coding}).`,
            cause: err,
          }),
        );
      else
        done(
          new GatewayError('bad_request', {
            message: `The request body is not valid ${coding}, as its Content-Encoding says.`,
            cause: err,
          }),
        );
    });
  };
  next(body, codings.length - 1);
}
