import { readFile } from 'node:fs/promises';
import { ConfigError } from '../config/config-error.js';

/** PEM certificate chain and private key; the HTTP and gRPC listeners use the same pair. */
export interface TlsFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** Reads tls_cert and tls_key; both or neither must be set. Undefined means plain text. A file that cannot be read is a ConfigError. */
export async function loadTls(
  certPath: string | undefined,
  keyPath: string | undefined,
): Promise<TlsFiles | undefined> {
  if (!certPath && !keyPath) return undefined;
  if (!certPath || !keyPath)
    throw new ConfigError(`TLS needs both --tls_cert and --tls_key (got only --${certPath ? 'tls_cert' : 'tls_key'})`);
  const read = async (path: string, what: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (err) {
      throw new ConfigError(`cannot read the TLS ${what} ${path}: ${(err as Error).message}`, { cause: err });
    }
  };
  return { cert: await read(certPath, 'certificate'), key: await read(keyPath, 'key') };
}
