#!/usr/bin/env node
// The least any online schedule spends on the bursty workload if it meets every burst with
// `--burst-workers` ready: it may know the law of the gaps between bursts (uniform in
// [0.5, 1.5] × the mean spacing) and the launch delay exactly, but not when the next burst comes.
// The burst after one at s can start at any moment from s + minGap, so the burst's extra workers
// must be ready from then until it comes: launched at s + minGap − launch (or kept from the last
// burst, when that is sooner than `--drain` after it), billed until the burst has been served
// (`--drain` seconds after its start). One worker carries the base load throughout.
// The bursts are the simulator's own (`simulate --workload bursty`, its defaults and seed), so the
// figure sits beside `flockserve plan`'s clairvoyant bound for the same seed and launch delay.
//
//   npm run build && node bench/bursty-online-floor.mjs [--seeds 1,2,3] [--delays 60,300]
//       [--burst-workers 4,5] [--drain 15] [--burst-every 300] [--duration 3600]
import { parseArgs } from 'node:util';
import { BURSTY_DEFAULTS, burstyArrivals } from '../dist/sim/workloads/bursty.js';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1,2,3' },
    delays: { type: 'string', default: '60,300' },
    'burst-workers': { type: 'string', default: '4,5' },
    drain: { type: 'string', default: '15' },
    'burst-every': { type: 'string', default: String(BURSTY_DEFAULTS.burstEveryS) },
    duration: { type: 'string', default: String(BURSTY_DEFAULTS.durationS) },
  },
});
const list = (s) => s.split(',').map(Number);
const drainS = Number(values.drain);
const bursty = { ...BURSTY_DEFAULTS, burstEveryS: Number(values['burst-every']), durationS: Number(values.duration) };
const minGapS = 0.5 * bursty.burstEveryS;

function burstStarts(seed) {
  const starts = [];
  for (const a of burstyArrivals({ ...bursty, seed }))
    if (a.burst !== undefined && a.burst === starts.length) starts.push(a.atMs / 1000);
  return starts;
}

/** Worker-hours of the base worker plus `extra` workers billed as the header says. */
function onlineFloor(starts, launchS, extra) {
  let billedS = 0;
  let previous = 0; // the trace's start: the first gap follows the same law
  for (const s of starts) {
    const readyFrom = previous + minGapS - launchS;
    const shedAt = previous === 0 ? 0 : previous + drainS;
    // Shed after the last burst and relaunched, or kept when the relaunch would come before the shed.
    billedS += s + drainS - Math.max(0, readyFrom, shedAt);
    previous = s;
  }
  return (bursty.durationS + extra * billedS) / 3600;
}

console.log(
  `| seed | bursts | launch delay | ${list(values['burst-workers'])
    .map((k) => `${k} ready at each burst`)
    .join(' | ')} |`,
);
console.log(
  `| ---: | ---: | ---: | ${list(values['burst-workers'])
    .map(() => '---:')
    .join(' | ')} |`,
);
for (const seed of list(values.seeds)) {
  const starts = burstStarts(seed);
  for (const launchS of list(values.delays)) {
    const cells = list(values['burst-workers']).map((k) => onlineFloor(starts, launchS, k - 1).toFixed(2));
    console.log(`| ${seed} | ${starts.length} | ${launchS} s | ${cells.join(' | ')} |`);
  }
}
