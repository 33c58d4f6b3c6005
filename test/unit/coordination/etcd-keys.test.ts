import { describe, expect, it } from 'vitest';
import {
  parseCommandValue,
  parseFleet,
  parseLeader,
  parseLoad,
  parseReplica,
  parseResult,
} from '../../../src/coordination/etcd-keys.js';

// What is read back from etcd is checked before use: another version's key, or one written by hand, is ignored.
describe('etcd values', () => {
  const worker = { name: 'w-1', state: 'ready', url: 'http://a:1', capacity: 4, detail: {} };
  const fleet = { leader: 'gw0', term: 7, target: 1, minWorkers: 1, maxWorkers: 2, workers: [worker] };
  const adapter = { name: 'sql', loaded: true, body: '{"lora_name":"sql","lora_path":"/a"}', headers: { a: 'b' } };
  const adapterCommand = { op: 'adapter', kind: 'load', name: 'sql', body: adapter.body, headers: {} };
  const answer = { worker: 'w-1', status: 200, headers: {}, body: 'Success' };
  const bucket = {
    startMs: 10_000,
    peak: 4,
    mean: 2.5,
    peakWaiting: 0,
    meanWaiting: 0,
    ready: 2,
    arrivals: 9,
    departures: 8,
    abandoned: 1,
    firstTokens: 3,
    firstTokenMs: 412.5,
    late: 2,
  };
  /** A bucket as a replica of a version that counts no abandoned requests (nor first tokens, nor late ones) publishes it. */
  const { abandoned: _, firstTokens: _n, firstTokenMs: _ms, late: _l, ...bucketWithoutAbandoned } = bucket;

  it.each<[string, (text: string) => unknown, unknown, boolean]>([
    ['leader', parseLeader, { id: 'gw0', since: 1 }, true],
    ['leader without since', parseLeader, { id: 'gw0' }, false],
    ['replica', parseReplica, { id: 'gw0', startedAt: 1, leaving: false }, true],
    ['replica, leaving as a string', parseReplica, { id: 'gw0', startedAt: 1, leaving: 'no' }, false],
    ['load', parseLoad, { queueLength: 3, inFlight: { 'w-1': 2 } }, true],
    ['load, negative in flight', parseLoad, { queueLength: 3, inFlight: { 'w-1': -2 } }, false],
    ['load with waiting and buckets', parseLoad, { queueLength: 3, inFlight: {}, waiting: 1, buckets: [bucket] }, true],
    ['load, waiting a fraction', parseLoad, { queueLength: 3, inFlight: {}, waiting: 0.5 }, false],
    ['load, buckets not a list', parseLoad, { queueLength: 3, inFlight: {}, buckets: bucket }, false],
    [
      'load, a bucket with a negative mean',
      parseLoad,
      { queueLength: 3, inFlight: {}, buckets: [{ ...bucket, mean: -1 }] },
      false,
    ],
    [
      'load, a bucket from a replica that counts no abandoned requests',
      parseLoad,
      { queueLength: 3, inFlight: {}, buckets: [bucketWithoutAbandoned] },
      true,
    ],
    [
      'load, a bucket with first tokens but not their time',
      parseLoad,
      { queueLength: 3, inFlight: {}, buckets: [{ ...bucket, firstTokenMs: undefined }] },
      false,
    ],
    [
      'load, a bucket with a negative time to first token',
      parseLoad,
      { queueLength: 3, inFlight: {}, buckets: [{ ...bucket, firstTokenMs: -1 }] },
      false,
    ],
    [
      'load, a bucket with a fraction of a late request',
      parseLoad,
      { queueLength: 3, inFlight: {}, buckets: [{ ...bucket, late: 1.5 }] },
      false,
    ],
    [
      'load, a bucket with more abandoned than departures',
      parseLoad,
      { queueLength: 3, inFlight: {}, buckets: [{ ...bucket, abandoned: 9 }] },
      false,
    ],
    [
      'load, a bucket without arrivals',
      parseLoad,
      { queueLength: 3, inFlight: {}, buckets: [{ ...bucket, arrivals: undefined }] },
      false,
    ],
    ['fleet', parseFleet, fleet, true],
    ['fleet, a worker in an unknown state', parseFleet, { ...fleet, workers: [{ ...worker, state: 'asleep' }] }, false],
    ['fleet, capacity 0', parseFleet, { ...fleet, workers: [{ ...worker, capacity: 0 }] }, false],
    ['fleet as an array', parseFleet, [fleet], false],
    [
      'fleet with adapters',
      parseFleet,
      { ...fleet, adapters: [adapter, { name: 't', loaded: false, headers: {} }] },
      true,
    ],
    [
      'fleet, an adapter without headers',
      parseFleet,
      { ...fleet, adapters: [{ ...adapter, headers: undefined }] },
      false,
    ],
    ['fleet, adapters not a list', parseFleet, { ...fleet, adapters: adapter }, false],
    ['command add', parseCommandValue, { from: 'gw1', command: { op: 'add', name: 'w-3' } }, true],
    ['command scale', parseCommandValue, { from: 'gw1', command: { op: 'scale', max: 4 } }, true],
    ['command drain without a name', parseCommandValue, { from: 'gw1', command: { op: 'drain' } }, false],
    ['command adapter', parseCommandValue, { from: 'gw1', command: adapterCommand }, true],
    [
      'command adapter of an unknown kind',
      parseCommandValue,
      { from: 'gw1', command: { ...adapterCommand, kind: 'reload' } },
      false,
    ],
    ['command of an unknown op', parseCommandValue, { from: 'gw1', command: { op: 'reboot' } }, false],
    ['result with a worker', parseResult, { ok: true, worker }, true],
    ['result with an error', parseResult, { ok: false, code: 'at_max_workers', message: 'full' }, true],
    ['result with an answer', parseResult, { ok: true, answer }, true],
    ['result with an answer without a status', parseResult, { ok: true, answer: { ...answer, status: 'ok' } }, false],
    ['result, ok missing', parseResult, { code: 'x', message: 'y' }, false],
  ])('%s', (_, parse, value, valid) => {
    const parsed = parse(JSON.stringify(value));
    if (valid) expect(parsed).toMatchObject(value as object);
    else expect(parsed).toBeUndefined();
  });

  it('ignores what is not JSON', () => {
    for (const parse of [parseLeader, parseReplica, parseLoad, parseFleet, parseCommandValue, parseResult])
      expect(parse('{not json')).toBeUndefined();
  });
});
