import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../../src/core/errors.js';
import { contentCodings, decodeRequestBody } from '../../../src/http/body-encoding.js';

const decoded = (body: Buffer, header: string, limit = 1 << 20): Promise<Buffer | GatewayError> =>
  new Promise((resolve) => decodeRequestBody(body, header, limit, resolve));

const plain = Buffer.from(JSON.stringify({ messages: [{ role: 'user', content: 'hello '.repeat(50) }] }));

describe('contentCodings', () => {
  it('lists the codings in the order applied, in any case and spacing, without identity', () => {
    expect(contentCodings('gzip')).toEqual(['gzip']);
    expect(contentCodings(' GZip ,  br')).toEqual(['gzip', 'br']);
    expect(contentCodings('identity')).toEqual([]);
    expect(contentCodings('x-gzip, identity, deflate')).toEqual(['x-gzip', 'deflate']);
    expect(contentCodings('')).toEqual([]);
  });

  it('names a coding it cannot decode, as a 415', () => {
    const err = contentCodings('gzip, zstd') as GatewayError;
    expect(err).toBeInstanceOf(GatewayError);
    expect(err.code).toBe('unsupported_encoding');
    expect(err.status).toBe(415);
    expect(err.message).toBe(
      "The request body's Content-Encoding zstd is not supported: send gzip, deflate, br or identity.",
    );
  });
});

describe('decodeRequestBody', () => {
  it.each([
    ['gzip', gzipSync(plain)],
    ['x-gzip', gzipSync(plain)],
    ['deflate', deflateSync(plain)],
    ['br', brotliCompressSync(plain)],
    // gzip applied first, then br: br is undone first.
    ['gzip, br', brotliCompressSync(gzipSync(plain))],
  ])('decodes %s', async (header, body) => {
    expect(await decoded(body, header)).toEqual(plain);
  });

  it('passes a body that says identity alone as it is', async () => {
    expect(await decoded(plain, 'identity')).toBe(plain);
  });

  it('holds the decoded body to the limit: a small body that inflates past it is a 413', async () => {
    const bomb = gzipSync(Buffer.alloc(4 << 20));
    expect(bomb.length).toBeLessThan(8192);
    const err = (await decoded(bomb, 'gzip', 65_536)) as GatewayError;
    expect(err.code).toBe('body_too_large');
    expect(err.message).toBe('The request body is larger than the gateway accepts once decoded (gzip).');
    // At the limit exactly, it decodes.
    expect(await decoded(gzipSync(Buffer.alloc(65_536)), 'gzip', 65_536)).toHaveLength(65_536);
  });

  it('a body that is not what its coding says is a 400 that names the coding', async () => {
    const err = (await decoded(plain, 'gzip')) as GatewayError;
    expect(err.code).toBe('bad_request');
    expect(err.message).toBe('The request body is not valid gzip, as its Content-Encoding says.');
    const truncated = gzipSync(plain).subarray(0, 20);
    expect(((await decoded(truncated, 'gzip')) as GatewayError).code).toBe('bad_request');
  });

  it('an unknown coding is refused before anything is decoded', async () => {
    expect(((await decoded(gzipSync(plain), 'gzip, compress')) as GatewayError).code).toBe('unsupported_encoding');
  });
});
