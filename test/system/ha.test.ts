/**
 * Several gateways, one fleet: 3 FlockServe processes on loopback sharing a fleet through a real
 * 3-member etcd (Debian's etcd-server), their workers made by the fake `sky` (which really runs
 * the engine simulator on its own loopback address per cluster), and clients spread over the 3
 * that retry a refused connection on the next gateway, as an L4 balancer does. Each scenario
 * runs with traffic flowing, and ends with every gateway SIGTERMed.
 *
 * Across all of them: every request ends with an answer or an explicit error, none hangs; no
 * cluster is launched twice under one name; none is left when the last gateway is gone (unless
 * kept on purpose); every cluster torn down is torn down once.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseFleet } from '../../src/coordination/etcd-keys.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { ROOT } from '../helpers/gateway.js';
import { startLoad, startReplicas, type Load, type Replica, type ReplicaSet } from '../helpers/replicas.js';
import { waitFor, waitForValue } from '../helpers/wait.js';

// Long enough that a busy machine's stalls (seconds, under CI or parallel builds) do not cost a
// replica its lease where a scenario does not mean it to.
const TTL_S = 4;

let etcd: EtcdCluster;
let set: ReplicaSet | undefined;
let load: Load | undefined;

beforeAll(async () => {
  etcd = await startEtcd(3);
}, 60_000);

afterAll(async () => {
  await etcd?.close();
});

afterEach(async () => {
  await load?.stop();
  load = undefined;
  if (set) {
    for (const r of set.running()) r.signal('SIGKILL');
    await Promise.all(set.replicas.map((r) => r.exit));
    set.sky.killJobs();
  }
  set = undefined;
});

const statuses = (rs: Replica[]) => Promise.all(rs.map((r) => r.status()));

/** flockctl (the real CLI) against one replica's gRPC port. */
async function flockctl(r: Replica, ...args: string[]): Promise<string> {
  const cli = join(ROOT, 'dist/cli/flockctl.js');
  const { stdout } = await promisify(execFile)(process.execPath, [
    cli,
    '-a',
    `127.0.0.1:${r.grpcPort}`,
    '-k',
    'k',
    ...args,
  ]);
  return stdout;
}

/** The leader `among` name once it is not `old`: within the lease TTL and 2 s. */
async function newLeader(s: ReplicaSet, among: Replica[], old: Replica, what: string): Promise<Replica> {
  const next = await waitForValue(
    () => s.leader(among),
    (l) => l !== undefined && l !== old,
    what,
    (TTL_S + 2) * 1000,
  );
  return next!;
}

/** Both workers ready at every running replica. */
async function fleetUp(s: ReplicaSet, workers = 2): Promise<void> {
  await waitFor(
    async () => (await statuses(s.running())).every((x) => x?.ready_worker_count === workers),
    `${workers} ready workers at every replica`,
    30_000,
  );
}

/** The invariants of every scenario, once every gateway is gone. */
function accounted(s: ReplicaSet, opts: { kept?: boolean } = {}): void {
  const { launches, downs } = s.lifecycle();
  const story = lifecycleStory(s);
  for (const [name, l] of launches) expect([name, l.length], story).toEqual([name, 1]);
  for (const [name, d] of downs) expect([name, d.length], story).toEqual([name, 1]);
  if (opts.kept) {
    expect(
      s.sky.clusters().map((c) => c.name),
      story,
    ).toEqual([...launches.keys()].sort());
    expect(downs.size, story).toBe(0);
  } else {
    expect(s.sky.clusters(), story).toEqual([]);
    expect([...downs.keys()].sort(), story).toEqual([...launches.keys()].sort());
  }
}

/**
 * What a failed `accounted` needs to be read from CI's log alone: every launch and teardown with
 * the replica that ran it, and each replica's log lines about leadership and the fleet.
 */
function lifecycleStory(s: ReplicaSet): string {
  const t0 = s.sky.ledger()[0]?.at ?? 0;
  const at = (ms: number): string => `+${((ms - t0) / 1000).toFixed(2)} s`;
  const sky = s.sky
    .ledger()
    .filter((e) => e.argv[0] === 'launch' || e.argv[0] === 'down')
    .map((e) => `  ${at(e.at)} ${e.caller}: sky ${e.argv.join(' ')}`);
  const said = s.replicas.flatMap((r) =>
    r
      .logs()
      .filter((l) => /lead|fleet|leav|adopt|tear|retire|keep_workers|handed|stand/i.test(l.msg))
      .map((l) => `  ${typeof l.time === 'number' ? at(l.time) : ''} ${r.name}: ${l.msg}`),
  );
  return ['sky launch/down:', ...sky, 'the replicas said:', ...said].join('\n');
}

/** Every request ended with an answer or an explicit error, and none hung. */
function answered(l: Load): void {
  const { ok, 'error-answer': errors, 'failed-at-client': failed, 'refused-everywhere': refused } = l.counts;
  expect(ok + errors + failed + refused).toBe(l.sent);
  expect(ok).toBeGreaterThan(0);
  expect(l.failures.filter((f) => /timeout/i.test(f.detail))).toEqual([]);
}

/** Writes of the fleet key, as etcd saw them: who wrote it, in which term, when (wall ms). */
async function watchFleet(
  prefix: string,
): Promise<{ writes: { leader: string; term: number; at: number }[]; close(): Promise<void> }> {
  const client = new Etcd3({ hosts: etcd.endpoints });
  const writes: { leader: string; term: number; at: number }[] = [];
  const watcher = await client.watch().key(`${prefix}fleet`).create();
  watcher.on('put', (kv) => {
    const f = parseFleet(kv.value.toString());
    if (f) writes.push({ leader: f.leader, term: f.term, at: Date.now() });
  });
  return {
    writes,
    async close() {
      await watcher.cancel();
      client.close();
    },
  };
}

// Each scenario starts 3 gateways and 2 workers, and stops them all: about 15-25 s on a busy 2-core machine.
describe('several gateways, one fleet (real etcd, real processes)', { timeout: 180_000 }, () => {
  it('SIGKILL the leader: a follower leads within TTL + 2 s and adopts the fleet — no launch, no teardown', async () => {
    set = await startReplicas({ etcd: etcd.endpoints, leaseTtl: TTL_S });
    const s = set;
    await fleetUp(s);
    load = startLoad(() => s.running());
    const old = (await s.leader())!;
    const before = s.sky.ledger().length;
    const killedAt = Date.now();
    old.signal('SIGKILL');
    await old.exit;
    const survivors = s.running();
    const next = await newLeader(s, survivors, old, 'a new leader named by both survivors');
    const tookMs = Date.now() - killedAt;
    expect(tookMs).toBeLessThanOrEqual((TTL_S + 2) * 1000);
    // The new leader has taken over once it logs so; its pool then holds the same two ready workers.
    await waitFor(() => next.logs().some((l) => l.msg.startsWith('leading the fleet from gw')), 'the takeover', 10_000);
    const after = (await statuses(survivors)).map((x) => [x?.worker_count, x?.ready_worker_count, x?.worker_names]);
    expect(after).toEqual(survivors.map(() => [2, 2, [`${s.workerPrefix}-1`, `${s.workerPrefix}-2`]]));
    expect(
      s.sky
        .ledger()
        .slice(before)
        .filter((e) => e.argv[0] === 'launch' || e.argv[0] === 'down'),
    ).toEqual([]);
    // flockctl against the follower: it names the leader, and its node control reaches the leader.
    const follower = survivors.find((r) => r !== next)!;
    const said = await flockctl(follower, 'status');
    expect(said).toContain(`replica:            ${follower.name} (leader: ${next.name}, since `);
    expect(said).toMatch(/^replicas: .*\(leader\)/m);
    expect(await flockctl(follower, 'scale', '--max', '4')).toBe('scale bounds: min 2, max 4\n');
    await waitFor(async () => /min 2, max 4/.test(await flockctl(next, 'status')), 'the bounds at the leader');
    await load.stop();
    answered(load);
    // Only requests that were on the killed gateway failed, and they failed at once at the client.
    expect(load.failures.every((f) => f.gateway === old.name && f.outcome === 'failed-at-client')).toBe(true);
    await s.stopAll();
    accounted(s);
  });

  it('SIGSTOP the leader past its lease, then SIGCONT: it makes no provisioner call and no fleet write, and steps down', async () => {
    set = await startReplicas({ etcd: etcd.endpoints, leaseTtl: TTL_S });
    const s = set;
    await fleetUp(s);
    const fleet = await watchFleet(s.prefix);
    try {
      const old = (await s.leader())!;
      const others = s.running().filter((r) => r !== old);
      load = startLoad(() => others);
      old.signal('SIGSTOP');
      const next = await newLeader(s, others, old, 'a new leader among the others');
      await waitFor(
        () => next.logs().some((l) => l.msg.startsWith('leading the fleet from gw')),
        'the takeover',
        10_000,
      );
      // Something for the sleeper to act on when it wakes: a worker's engine dies meanwhile.
      const victim = s.sky.clusters().find((c) => c.name === `${s.workerPrefix}-1`)!;
      process.kill(-victim.jobs[0]!.pgid, 'SIGKILL');
      const wokeAt = Date.now();
      old.signal('SIGCONT');
      // It follows: it names the new leader, and shows the fleet the new leader writes.
      await waitFor(
        async () => (await old.status())?.coordination.leader === next.name,
        'the old leader follows',
        10_000,
      );
      // Its log says why; the line reaches the log file through this process's pipe, which may lag its status.
      await waitFor(
        () => old.logs().some((l) => /no longer leads|gave up the lease|fleet write refused|fenced/.test(l.msg)),
        'the old leader says it stepped down',
        5_000,
      );
      // The new leader replaces the dead worker; the old one did nothing of it.
      await fleetUp(s);
      expect(s.sky.ledger().filter((e) => e.caller === old.name && e.at >= wokeAt)).toEqual([]);
      expect(fleet.writes.filter((w) => w.leader === old.name && w.at >= wokeAt)).toEqual([]);
      expect(fleet.writes.at(-1)?.leader).toBe(next.name);
      await load.stop();
      answered(load);
    } finally {
      await fleet.close();
    }
    await s.stopAll();
    accounted(s);
  });

  it('SIGKILL the leader while its `sky launch` runs: the new leader awaits that launch and adopts its cluster', async () => {
    set = await startReplicas({
      etcd: etcd.endpoints,
      leaseTtl: TTL_S,
      // The third worker's launch takes 8 s more: long enough to outlive its leader and the election.
      skyFaults: (prefix) => ({ FAKE_SKY_LAUNCH_DELAY_MS: '8000', FAKE_SKY_LAUNCH_DELAY_FOR: `${prefix}-3` }),
    });
    const s = set;
    await fleetUp(s);
    load = startLoad(() => s.running());
    const old = (await s.leader())!;
    const third = `${s.workerPrefix}-3`;
    const added = await fetch(`${old.url}/add_new_node`, { headers: { node_control_key: 'k' } });
    expect(added.status).toBe(200);
    await waitFor(() => s.sky.clusters().some((c) => c.name === third), `${third} INIT, its launch running`);
    old.signal('SIGKILL');
    await old.exit;
    const survivors = s.running();
    const next = await newLeader(s, survivors, old, 'a new leader named by both survivors');
    // Its `sky launch` outlived the gateway that ran it: the new leader waits for it rather than launch the name again.
    await waitFor(
      () => next.logs().some((l) => l.msg === `fleet: awaiting ${third}, launched by the previous leader`),
      'the new leader awaiting the launch',
      10_000,
    );
    await fleetUp(s, 3);
    const { launches, downs } = s.lifecycle();
    expect(launches.get(third)?.map((e) => e.caller)).toEqual([old.name]);
    expect(downs.size).toBe(0);
    await load.stop();
    answered(load);
    await s.stopAll();
    accounted(s);
  });

  it('SIGSTOP the leader while its `sky launch` runs, then SIGCONT: it aborts the launch and says so; the new leader tears that cluster down once and launches a new name', async () => {
    set = await startReplicas({
      etcd: etcd.endpoints,
      leaseTtl: TTL_S,
      // The third worker's launch takes 30 s more: still running when the old leader wakes.
      skyFaults: (prefix) => ({ FAKE_SKY_LAUNCH_DELAY_MS: '30000', FAKE_SKY_LAUNCH_DELAY_FOR: `${prefix}-3` }),
    });
    const s = set;
    await fleetUp(s);
    const old = (await s.leader())!;
    const others = s.running().filter((r) => r !== old);
    load = startLoad(() => others);
    const [third, fourth] = [`${s.workerPrefix}-3`, `${s.workerPrefix}-4`];
    const added = await fetch(`${old.url}/add_new_node`, { headers: { node_control_key: 'k' } });
    expect(added.status).toBe(200);
    await waitFor(() => s.sky.clusters().some((c) => c.name === third), `${third} INIT, its launch running`);
    old.signal('SIGSTOP');
    const next = await newLeader(s, others, old, 'a new leader among the others');
    await waitFor(
      () => next.logs().some((l) => l.msg === `fleet: awaiting ${third}, launched by the previous leader`),
      'the new leader awaiting the launch',
      10_000,
    );
    const wokeAt = Date.now();
    old.signal('SIGCONT');
    // It stands down, kills its `sky launch`, and tells the leader, which tears the INIT cluster down and launches anew.
    await fleetUp(s, 3);
    const { launches, downs } = s.lifecycle();
    expect(launches.get(third)?.map((e) => e.caller)).toEqual([old.name]);
    expect(downs.get(third)?.map((e) => e.caller)).toEqual([next.name]);
    expect(launches.get(fourth)?.map((e) => e.caller)).toEqual([next.name]);
    expect(s.sky.ledger().filter((e) => e.caller === old.name && e.at >= wokeAt)).toEqual([]);
    // Told, not timed out: long before launch_timeout.
    expect(downs.get(third)![0]!.at - wokeAt).toBeLessThan(15_000);
    await load.stop();
    answered(load);
    await s.stopAll();
    accounted(s);
  });

  it('one etcd member killed: nothing the clients can see', async () => {
    set = await startReplicas({ etcd: etcd.endpoints, leaseTtl: TTL_S });
    const s = set;
    await fleetUp(s);
    const leader = (await s.leader())!;
    load = startLoad(() => s.running());
    await etcd.kill(0);
    try {
      // Served through it: the load keeps flowing for a few keepalive rounds, over the change of etcd's raft leader.
      const sentAt = load.sent;
      await waitFor(() => load!.sent >= sentAt + 100, '100 more requests');
      await load.stop();
      expect(load.counts).toMatchObject({ 'error-answer': 0, 'failed-at-client': 0, 'refused-everywhere': 0 });
      answered(load);
      expect((await statuses(s.running())).every((x) => x?.ready_worker_count === 2)).toBe(true);
      expect((await s.leader())?.name).toBe(leader.name);
    } finally {
      await etcd.restart(0);
    }
    await s.stopAll();
    accounted(s);
  });

  it('etcd quorum lost, then back: serving goes on with the last fleet, scaling pauses, then resumes', async () => {
    set = await startReplicas({ etcd: etcd.endpoints, leaseTtl: TTL_S });
    const s = set;
    await fleetUp(s);
    load = startLoad(() => s.running());
    await etcd.kill(1);
    await etcd.kill(2);
    try {
      await waitFor(
        async () =>
          (await statuses(s.running())).every(
            (x) => x?.coordination.store_reachable === false && x.coordination.scaling === 'paused',
          ),
        'every replica says etcd is unreachable and scaling paused',
        (TTL_S + 5) * 1000,
      );
      // Node control that would scale is refused with an explicit error, on any replica.
      const refused = await fetch(`${s.replicas[0]!.url}/add_new_node`, { headers: { node_control_key: 'k' } });
      const alsoRefused = await fetch(`${s.replicas[1]!.url}/add_new_node`, { headers: { node_control_key: 'k' } });
      expect(alsoRefused.status).toBe(503);
      expect(refused.status).toBe(503);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('no_leader');
      const sentAt = load.sent;
      await waitFor(() => load!.sent >= sentAt + 50, '50 more requests without etcd');
      expect(load.counts).toMatchObject({ 'error-answer': 0, 'failed-at-client': 0, 'refused-everywhere': 0 });
    } finally {
      await etcd.restart(1);
      await etcd.restart(2);
    }
    await waitFor(
      async () =>
        (await s.leader()) !== undefined &&
        (await statuses(s.running())).every((x) => x?.coordination.scaling === 'active'),
      'a leader again, scaling active everywhere',
      20_000,
    );
    // Scaling resumes: a third worker, asked of a follower, is launched once.
    const leader = (await s.leader())!;
    const follower = s.replicas.find((r) => r !== leader)!;
    const added = await fetch(`${follower.url}/add_new_node`, { headers: { node_control_key: 'k' } });
    expect(added.status, await added.text()).toBe(200);
    await fleetUp(s, 3);
    await load.stop();
    expect(load.counts).toMatchObject({ 'error-answer': 0, 'failed-at-client': 0, 'refused-everywhere': 0 });
    answered(load);
    await s.stopAll();
    accounted(s);
  });

  it('all gateways SIGTERM with traffic: every cluster is torn down exactly once', async () => {
    set = await startReplicas({ etcd: etcd.endpoints, leaseTtl: TTL_S });
    const s = set;
    await fleetUp(s);
    load = startLoad(() => s.running());
    await waitFor(() => load!.sent >= 30, '30 requests');
    for (const r of s.running()) r.signal('SIGTERM');
    const codes = await Promise.all(s.replicas.map((r) => r.exit));
    expect(codes).toEqual([0, 0, 0]);
    await load.stop();
    answered(load);
    // Requests cut by the shutdown end with an explicit error (a 503, or the connection closed).
    expect(load.failures.every((f) => f.outcome !== 'error-answer' || /^503 /.test(f.detail))).toBe(true);
    accounted(s);
    const tearers = s.replicas.filter((r) => r.logs().some((l) => /^tearing down \d+ workers$/.test(l.msg)));
    expect(tearers).toHaveLength(1);
  });

  it('all gateways SIGTERM with --keep_workers_on_exit: every cluster is kept, none torn down', async () => {
    set = await startReplicas({ etcd: etcd.endpoints, leaseTtl: TTL_S, extra: ['--keep_workers_on_exit'] });
    const s = set;
    await fleetUp(s);
    for (const r of s.running()) r.signal('SIGTERM');
    expect(await Promise.all(s.replicas.map((r) => r.exit))).toEqual([0, 0, 0]);
    accounted(s, { kept: true });
    expect(s.sky.clusters().map((c) => c.status)).toEqual(['UP', 'UP']);
    // The next start adopts them as they are: no launch, the same two serving.
    const launched = s.sky.ledger().filter((e) => e.argv[0] === 'launch').length;
    set = await startReplicas({ etcd: etcd.endpoints, leaseTtl: TTL_S, after: s });
    const again = set;
    await fleetUp(again);
    expect(again.sky.ledger().filter((e) => e.argv[0] === 'launch')).toHaveLength(launched);
    await again.stopAll();
    accounted(again);
  });

  it('a LoRA adapter loaded through a follower is on every worker; a new leader brings a worker that joins later to it', async () => {
    set = await startReplicas({ etcd: etcd.endpoints, leaseTtl: TTL_S, simArgs: '--enable-lora --allow-runtime-lora' });
    const s = set;
    await fleetUp(s);
    const adapter = join(mkdtempSync(join(tmpdir(), 'flockserve-lora-')), 'sql');
    mkdirSync(adapter);
    writeFileSync(join(adapter, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 8 }));
    const port = /ports: (\d+)/.exec(readFileSync(s.task, 'utf8'))![1];
    /** The model ids each worker's engine lists, asked of the engines themselves. */
    const listed = (): Promise<string[][]> =>
      Promise.all(
        s.sky.clusters().map(async (c) => {
          const body = (await (await fetch(`http://${c.ip}:${port}/v1/models`)).json()) as { data: { id: string }[] };
          return body.data.map((m) => m.id).sort();
        }),
      );
    const old = (await s.leader())!;
    const follower = s.running().find((r) => r !== old)!;
    const res = await fetch(`${follower.url}/v1/load_lora_adapter`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ lora_name: 'sql', lora_path: adapter }),
    });
    expect([res.status, await res.text()]).toEqual([200, "Success: LoRA adapter 'sql' added successfully."]);
    expect(await listed()).toEqual([
      ['sim', 'sql'],
      ['sim', 'sql'],
    ]);
    // Every replica says which adapters the fleet holds: followers as the leader shared them.
    await waitFor(
      async () => (await statuses(s.running())).every((x) => x?.lora_adapters?.join() === 'sql'),
      'the adapter in every replica status',
    );
    // The leader shares what it holds: a new leader has it, and loads it on the worker it adds.
    old.signal('SIGKILL');
    await old.exit;
    const next = await newLeader(s, s.running(), old, 'a new leader');
    await waitFor(() => next.logs().some((l) => l.msg.startsWith('leading the fleet from gw')), 'the takeover', 10_000);
    await flockctl(next, 'add');
    await fleetUp(s, 3);
    expect(await listed()).toEqual([
      ['sim', 'sql'],
      ['sim', 'sql'],
      ['sim', 'sql'],
    ]);
    await s.stopAll();
    accounted(s);
  });
});
