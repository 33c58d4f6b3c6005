#!/usr/bin/env node
// Slow clients against the gateway while normal clients use it. 4 simulator workers, a gateway
// (`flockserve --provisioner static`, its defaults unless --gateway-args says otherwise), and:
//
//   before  (after an uncounted warm-up run) normal clients alone: a closed loop of --normal connections sending non-streamed chat
//           completions, for --seconds (after a warm-up);
//   attack  the same, while --slow-header connections send a request head one byte every
//           --trickle seconds, and --slow-body connections send a whole head, then a body: half
//           of them one byte every --trickle seconds (never silent for long, so only
//           client_request_timeout ends them), half 10 bytes and then nothing (client_body_timeout
//           ends them); a slow connection the gateway closes is opened again, for --attack seconds;
//   after   normal clients alone again (the machine's speed drifts: before and after bracket it).
//
// The slow clients run in a child process, so their bursts of reconnections load the gateway,
// not the normal clients' own event loop. Normal clients' p50/p99 in each phase, their errors; the gateway's RSS and open files each
// second; what the slow clients got (a 408, or a close without an answer); the gateway's own
// counters from /metrics. Writes bench/results/hostile.md.
//
//   npm run build && node bench/hostile.mjs [--slow-header 2000] [--slow-body 2000] [--attack 60]
//        [--seconds 20] [--normal 16] [--trickle 5] [--workers 4] [--gateway-args='--client_body_timeout 10']
//        [--gateway-node-args='--cpu-prof --cpu-prof-dir DIR']
//        [--out bench/results/hostile.md] [--section defaults]   (the section of --out this run replaces)
//
// The bench holds one socket per slow client and the gateway one per client plus its workers':
// the open-file limit is raised to 65536 if the hard limit allows (re-running itself under
// `ulimit -n`), and the counts are capped to fit it otherwise.
import { fork } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { startFleet } from './lib/fleet.mjs';
import { closedLoop, cpuSeconds } from './lib/load.mjs';
import { openFileLimit, withOpenFileLimit } from './lib/nofile.mjs';
import { ROOT } from './lib/procs.mjs';
import { writeSection } from './lib/sections.mjs';
import { gatewayCounters, slowClients } from './lib/slow-clients.mjs';

const NOFILE = 65536;
const TITLE = '# Slow clients: normal clients and gateway memory while thousands of connections trickle';
await withOpenFileLimit(NOFILE, main);

async function main() {
  const { values } = parseArgs({
    options: {
      'slow-header': { type: 'string', default: '2000' },
      'slow-body': { type: 'string', default: '2000' },
      attack: { type: 'string', default: '60' },
      seconds: { type: 'string', default: '20' },
      normal: { type: 'string', default: '16' },
      trickle: { type: 'string', default: '5' },
      workers: { type: 'string', default: '4' },
      'gateway-args': { type: 'string', default: '' },
      // node flags for the gateway beside its bin's (e.g. --cpu-prof --cpu-prof-dir DIR).
      'gateway-node-args': { type: 'string', default: '' },
      out: { type: 'string', default: join(ROOT, 'bench/results/hostile.md') },
      // The section of --out this run replaces (one per configuration: defaults, short timeouts ...).
      section: { type: 'string', default: 'defaults' },
      // Internal: the slow clients run in a child process of their own (--role attackers --port P),
      // so their bursts of reconnections do not delay the normal clients' event loop.
      role: { type: 'string', default: 'bench' },
      port: { type: 'string', default: '0' },
    },
  });
  const limit = openFileLimit();
  // Each slow client holds a socket here and one in the gateway (a process of its own).
  const room = Math.max(0, limit - 1024);
  let slowHeader = Number(values['slow-header']);
  let slowBody = Number(values['slow-body']);
  if (slowHeader + slowBody > room) {
    const scale = room / (slowHeader + slowBody);
    slowHeader = Math.floor(slowHeader * scale);
    slowBody = Math.floor(slowBody * scale);
    log(`open-file limit ${limit}: ${slowHeader} slow-header and ${slowBody} slow-body clients instead`);
  }
  if (values.role === 'attackers') {
    await attackers({ port: values.port, slowHeader, slowBody, trickleS: Number(values.trickle) });
    return;
  }
  const attackS = Number(values.attack);
  const seconds = Number(values.seconds);
  const normal = Number(values.normal);
  const trickleS = Number(values.trickle);
  const gatewayArgs = values['gateway-args'].split(' ').filter(Boolean);

  log(`starting ${values.workers} workers and the gateway`);
  const { sims, gw } = await startFleet({
    workers: Number(values.workers),
    simArgs: ['--token-interval', '1', '--max-num-seqs', '512'],
    capacity: 256,
    args: gatewayArgs,
    nodeArgs: values['gateway-node-args'].split(' ').filter(Boolean),
  });
  const body = JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'hello' }], max_tokens: 16 });
  const load = () =>
    closedLoop({
      url: gw.url,
      path: '/v1/chat/completions',
      body,
      connections: normal,
      durationMs: seconds * 1000,
      warmupMs: 2000,
    });

  const samples = [];
  const sampler = setInterval(
    () => samples.push({ t: performance.now(), rss: gw.rssMiB(), fds: gw.fds(), load: loadavg()[0] }),
    1000,
  );
  // The gateway's CPU seconds over a phase: unlike latency, its cost per request or per slow
  // connection cut hardly depends on how busy the machine is.
  const phase = (name) => ({ name, from: performance.now(), cpuFrom: cpuSeconds(gw.pid) });
  const end = (p) => Object.assign(p, { to: performance.now(), cpu: cpuSeconds(gw.pid) - p.cpuFrom });

  log(`warm-up: ${normal} normal clients for ${seconds} s (not counted)`);
  await load();
  log(`before: ${normal} normal clients for ${seconds} s`);
  const before = { ...phase('before'), result: await load() };
  end(before);
  log(`before: p50 ${before.result.p50.toFixed(1)} ms, p99 ${before.result.p99.toFixed(1)} ms`);

  log(`attack: ${slowHeader} slow-header and ${slowBody} slow-body clients for ${attackS} s`);
  const attack = phase('attack');
  const slow = spawnAttackers({ port: new URL(gw.url).port, slowHeader, slowBody, trickleS });
  log(`attack: ${await slow.opened} slow connections open; normal clients start`);
  const loaded = [];
  // The attack lasts --attack seconds from when every slow client is open (opening thousands
  // takes a while on a busy machine).
  const attackEnd = performance.now() + attackS * 1000;
  while (performance.now() + seconds * 1000 + 2000 <= attackEnd) loaded.push(await load());
  while (performance.now() < attackEnd) await sleep(200);
  const metricsDuring = await gatewayCounters(gw.url);
  const slowTally = slow.stop();
  end(attack);
  attack.result = merge(loaded);
  log(
    `attack: p50 ${attack.result.p50.toFixed(1)} ms, p99 ${attack.result.p99.toFixed(1)} ms over ${loaded.length} runs`,
  );
  const tallyOfSlow = await slowTally;

  log(`after: ${normal} normal clients for ${seconds} s`);
  const after = { ...phase('after'), result: await load() };
  end(after);
  clearInterval(sampler);
  const metricsAfter = await gatewayCounters(gw.url);
  log(`after: p50 ${after.result.p50.toFixed(1)} ms, p99 ${after.result.p99.toFixed(1)} ms`);
  await gw.stop();
  await Promise.all(sims.map((s) => s.stop()));

  const md = render({
    values,
    slowHeader,
    slowBody,
    limit,
    phases: [before, attack, after],
    samples,
    slow: tallyOfSlow,
    metricsDuring,
    metricsAfter,
    gatewayArgs,
  });
  if (!existsSync(values.out)) writeFileSync(values.out, `${TITLE}\n`);
  writeSection(values.out, `hostile-${values.section}`, md);
  console.log(md);
  process.exit(0);
}

/** Latencies of several closed-loop runs as one (their percentiles over all requests). */
function merge(runs) {
  const all = runs.flatMap((r) => r.latencies);
  all.sort((a, b) => a - b);
  const pct = (p) => all[Math.min(all.length - 1, Math.floor((p / 100) * all.length))] ?? NaN;
  return {
    requests: all.length,
    p50: pct(50),
    p99: pct(99),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    statuses: runs.reduce((s, r) => {
      for (const [k, v] of Object.entries(r.statuses)) s[k] = (s[k] ?? 0) + v;
      return s;
    }, {}),
  };
}

/** The slow clients in a child process: resolves `opened` with how many are open; stop() with their tally. */
function spawnAttackers({ port, slowHeader, slowBody, trickleS }) {
  const child = fork(
    process.argv[1],
    [
      '--role',
      'attackers',
      '--port',
      String(port),
      '--slow-header',
      String(slowHeader),
      '--slow-body',
      String(slowBody),
      '--trickle',
      String(trickleS),
    ],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  const next = (type) => new Promise((resolve) => child.on('message', (m) => m.type === type && resolve(m.value)));
  return {
    opened: next('opened'),
    stop() {
      const tally = next('tally');
      child.send('stop');
      return tally;
    },
  };
}

/** The child's side: opens the slow clients, reports, and on 'stop' closes them and sends their tally. */
async function attackers({ port, slowHeader, slowBody, trickleS }) {
  process.once('disconnect', () => process.exit(0)); // the bench is gone
  const slow = slowClients({ port, slowHeader, slowBody, trickleS });
  await slow.opened;
  process.send({ type: 'opened', value: slow.open() });
  await new Promise((resolve) => process.once('message', resolve));
  slow.stop();
  await slow.closed;
  process.send({ type: 'tally', value: slow.tally });
  process.disconnect();
  process.exit(0);
}

function render({
  values,
  slowHeader,
  slowBody,
  limit,
  phases,
  samples,
  slow,
  metricsDuring,
  metricsAfter,
  gatewayArgs,
}) {
  const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '—');
  const inPhase = (p) => samples.filter((s) => s.t >= p.from && s.t <= p.to);
  const max = (xs) => (xs.length ? Math.max(...xs) : NaN);
  const [before, attack, after] = phases;
  const unloadedP99 = (before.result.p99 + after.result.p99) / 2;
  const perRequestUs = ((before.cpu + after.cpu) * 1e6) / (before.result.requests + after.result.requests);
  const extraUs = attack.cpu * 1e6 - attack.result.requests * perRequestUs;
  const cut = Object.values(slow).reduce((n, t) => n + t.answered408, 0);
  const L = [
    `## ${gatewayArgs.length ? `With \`${gatewayArgs.join(' ')}\`` : 'With the default client limits'}`,
    '',
    'Command (after `npm run build`):',
    '',
    '```',
    `node bench/hostile.mjs --slow-header ${slowHeader} --slow-body ${slowBody} --attack ${values.attack} --seconds ${values.seconds} --normal ${values.normal} --trickle ${values.trickle} --workers ${values.workers}${gatewayArgs.length ? ` --gateway-args='${gatewayArgs.join(' ')}'` : ''} --section ${values.section}`,
    '```',
    '',
    `Run ${new Date().toISOString()}, Node ${process.version}, open-file limit ${limit}. ${values.workers} simulator workers`,
    `(16-token answers, 1 ms per token); the gateway with ${gatewayArgs.length ? `\`${gatewayArgs.join(' ')}\`` : 'its default client limits'}.`,
    `Normal clients: a closed loop of ${values.normal} connections sending non-streamed chat completions, ${values.seconds} s per run.`,
    `Slow clients: ${slowHeader} sending a head one byte every ${values.trickle} s; ${slowBody} sending a body, half one byte every`,
    `${values.trickle} s, half 10 bytes then nothing; each reopened when the gateway closes it.`,
    '',
    'The machine is shared: the load average (1 min) beside each phase says how busy it was.',
    '',
    '| phase | normal requests | p50 (ms) | p99 (ms) | errors | gateway CPU (% of a core) | gateway RSS max (MiB) | open files max | load average |',
    '| --- | --: | --: | --: | --: | --: | --: | --: | --- |',
  ];
  for (const p of phases) {
    const s = inPhase(p);
    L.push(
      `| ${p.name} | ${p.result.requests} | ${f(p.result.p50)} | ${f(p.result.p99)} | ${p.result.errors} | ${f((100 * p.cpu * 1000) / (p.to - p.from), 0)} | ${f(max(s.map((x) => x.rss)))} | ${max(s.map((x) => x.fds))} | ${f(Math.min(...s.map((x) => x.load)))}–${f(max(s.map((x) => x.load)))} |`,
    );
  }
  L.push(
    '',
    `p99 under attack / unloaded (mean of before and after): **${f(attack.result.p99 / unloadedP99, 2)}** (target ≤ 1.5).`,
    `Gateway CPU: ${f(perRequestUs)} µs per normal request (before and after); the attack phase's CPU beyond its normal requests' (opening, holding and cutting the slow connections) is`,
    `${f(extraUs / 1e6, 2)} s, **${f(extraUs / cut, 0)} µs per slow connection answered 408** (${cut} of them) and opened again.`,
    '',
    '| slow client | opened | answered 408 | answered otherwise | closed without an answer | open at the end | connect failed (tried again) |',
    '| --- | --: | --: | --: | --: | --: | --: |',
  );
  for (const [kind, t] of Object.entries(slow)) {
    L.push(
      `| ${kind} | ${t.opened} | ${t.answered408} | ${t.answeredOther} | ${t.closedSilently} | ${t.openAtEnd} | ${t.connectFailed} |`,
    );
  }
  L.push('', "The gateway's counters (/metrics) at the end of the attack and after:", '', '```');
  for (const [k, v] of Object.entries(metricsDuring)) L.push(`${k} ${v} → ${metricsAfter[k] ?? '—'}`);
  L.push('```', '');
  return L.join('\n');
}

function log(...a) {
  console.log(new Date().toISOString().slice(11, 19), ...a);
}
