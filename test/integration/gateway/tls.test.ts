import { credentials, status } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlockServe } from '../../../src/index.js';
import { NodeControlServiceClient } from '../../../src/gen/flockserve/v1/node_control.js';
import { simTask, startGateway, type TestGateway } from '../../helpers/gateway.js';
import { bearer, unary, unaryError } from '../../helpers/grpc.js';

// tls_cert + tls_key: both listeners serve TLS with a self-signed certificate for localhost and
// 127.0.0.1, a test fixture committed with its key (valid to 2126), so the suite needs no openssl:
//   openssl req -x509 -newkey rsa:2048 -nodes -days 36500 -subj /CN=localhost \
//     -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout localhost-key.pem -out localhost-cert.pem

const fixtures = join(import.meta.dirname, '../../fixtures/tls');
const cert = join(fixtures, 'localhost-cert.pem');
const key = join(fixtures, 'localhost-key.pem');
const ca = readFileSync(cert);

let t: TestGateway;

beforeAll(async () => {
  t = await startGateway({ nodeControlKey: 'k', minWorkers: 1, maxWorkers: 1, tlsCert: cert, tlsKey: key });
});
afterAll(() => t?.close());

describe('TLS on both listeners', () => {
  it('HTTPS answers with the certificate; plain HTTP does not', async () => {
    const dispatcher = new Agent({ connect: { ca } });
    const https = t.url.replace('http://', 'https://');
    const res = await undiciFetch(`${https}/health`, { dispatcher });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', ready_worker_count: 1 });
    await expect(fetch(`${t.url}/health`)).rejects.toThrow();
    await dispatcher.close();
  });

  it('gRPC with TLS credentials works; a plain-text client cannot connect', async () => {
    const secure = new NodeControlServiceClient(t.grpcAddress, credentials.createSsl(ca));
    const s = await unary(secure.getStatus.bind(secure), {}, bearer('k'));
    expect(s.readyWorkerCount).toBe(1);
    secure.close();
    const plain = new NodeControlServiceClient(t.grpcAddress, credentials.createInsecure());
    const err = await unaryError(plain.getStatus.bind(plain), {}, bearer('k'));
    expect(err.code).toBe(status.UNAVAILABLE);
    plain.close();
  });

  it('one of the two files alone is a start-up error that names the missing one', async () => {
    const gw = new FlockServe({ skypilotTask: simTask(), provisioner: 'local', port: 0, tlsCert: cert });
    await expect(gw.run()).rejects.toThrow('TLS needs both --tls_cert and --tls_key (got only --tls_cert)');
    await gw.close();
  });
});
