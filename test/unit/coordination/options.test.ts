import { describe, expect, it } from 'vitest';
import { resolveOptions } from '../../../src/config/resolve.js';
import { checkCoordinationOptions, createCoordinator, etcdPrefix } from '../../../src/coordination/index.js';

const config = (over: Record<string, unknown> = {}) =>
  resolveOptions({ skypilotTask: 't.yaml', etcdEndpoints: ['http://10.0.0.1:2379'], ...over });

describe('etcd options', () => {
  it.each<[string, Record<string, unknown>, RegExp | undefined]>([
    ['plain http endpoints', {}, undefined],
    ['no endpoints: in-process, nothing to check', { etcdEndpoints: [], provisioner: 'local' }, undefined],
    ['not a URL', { etcdEndpoints: ['10.0.0.1:2379'] }, /is not a URL/],
    ['another scheme', { etcdEndpoints: ['unix:///run/etcd.sock'] }, /must be http:\/\/ or https:\/\//],
    ['mixed schemes', { etcdEndpoints: ['http://a:2379', 'https://b:2379'] }, /all http:\/\/ or all https:\/\//],
    ['https without a CA', { etcdEndpoints: ['https://a:2379'] }, /give --etcd_ca/],
    ['https with a CA', { etcdEndpoints: ['https://a:2379'], etcdCa: 'ca.pem' }, undefined],
    ['a CA for http', { etcdCa: 'ca.pem' }, /are for https:\/\/ endpoints/],
    ['cert without key', { etcdEndpoints: ['https://a:2379'], etcdCa: 'ca.pem', etcdCert: 'c.pem' }, /go together/],
    ['user without password', { etcdUser: 'flock' }, /--etcd_user and --etcd_password go together/],
    ['local workers', { provisioner: 'local' }, /no other replica could take them over/],
  ])('%s', (_, over, error) => {
    const check = (): void => checkCoordinationOptions(config(over));
    if (error) expect(check).toThrow(error);
    else expect(check).not.toThrow();
  });

  it('keys live under /flockserve/<worker_name_prefix>/ unless etcd_prefix says otherwise', () => {
    expect(etcdPrefix(config())).toBe('/flockserve/skypilot-worker/');
    expect(etcdPrefix(config({ workerNamePrefix: 'llama' }))).toBe('/flockserve/llama/');
    expect(etcdPrefix(config({ etcdPrefix: '/team-a/chat' }))).toBe('/team-a/chat/');
  });

  it('without endpoints the coordinator is in-process, named by replica_name', async () => {
    const c = await createCoordinator(config({ etcdEndpoints: [], replicaName: 'gw-7' }));
    expect([c.kind, c.replica, c.replicated]).toEqual(['in-process', 'gw-7', false]);
  });
});
