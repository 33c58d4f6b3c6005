import { describe, expect, it } from 'vitest';
import { PROVISIONERS } from '../../../src/provisioners/registry.js';
import { StaticProvisioner } from '../../../src/provisioners/static.js';

const signal = new AbortController().signal;
const task = { path: '/t.yaml', envs: {}, ports: [], raw: {} };

describe('StaticProvisioner', () => {
  it('hands out each URL once, frees it on terminate, and lists the ones in use', async () => {
    const p = new StaticProvisioner(['http://a:1/', 'http://b:2']);
    expect(await p.launch('w-1', task, signal)).toEqual({ url: 'http://a:1' });
    expect(await p.launch('w-2', task, signal)).toEqual({ url: 'http://b:2' });
    await expect(p.launch('w-3', task, signal)).rejects.toThrow('static provisioner: all 2 URLs are in use');
    expect(await p.list('w-')).toEqual([
      { name: 'w-1', status: 'UP', endpoint: { url: 'http://a:1' } },
      { name: 'w-2', status: 'UP', endpoint: { url: 'http://b:2' } },
    ]);
    await p.terminate('w-1');
    await p.terminate('w-1'); // idempotent
    await p.terminate('never-was');
    expect(await p.launch('w-3', task, signal)).toEqual({ url: 'http://a:1' });
    expect((await p.list('x-')).length).toBe(0);
  });

  it.each([['not a url'], ['ftp://a:1']])('rejects %j', (u) => {
    expect(() => new StaticProvisioner([u])).toThrow(/static provisioner/);
  });
});

describe('PROVISIONERS', () => {
  it('static needs --workers', () => {
    expect(() => PROVISIONERS.static({ workers: [] })).toThrow(/--workers/);
    expect(PROVISIONERS.static({ workers: ['http://a:1'] }).kind).toBe('static');
  });
  it('local builds a LocalProvisioner', () => {
    expect(PROVISIONERS.local({ workers: [] }).kind).toBe('local');
  });
});
