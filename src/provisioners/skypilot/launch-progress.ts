/**
 * Where a `sky launch` is, read from its output, so the console can say
 * `skypilot-worker-1 provisioning 2m13s`. The markers are SkyPilot's own progress lines:
 *
 *   ⚙︎ Launching on AWS us-east-1 (us-east-1a).     → provisioning
 *   ✓ Cluster launched: 'skypilot-worker-1'.        → cluster up
 *   ⚙︎ Syncing files.                               → syncing files
 *   ⚙︎ Running setup on 1 VM.                       → setup
 *   ⚙︎ Job submitted, ID: 1                         → job submitted
 *
 * Phases only move forward: a later marker never goes back to an earlier phase.
 */
export const LAUNCH_PHASES = [
  'starting',
  'provisioning',
  'cluster up',
  'syncing files',
  'setup',
  'job submitted',
] as const;
export type LaunchPhase = (typeof LAUNCH_PHASES)[number];

const MARKERS: ReadonlyArray<readonly [RegExp, LaunchPhase]> = [
  [/Launching (on|a new cluster)|Provisioning|Instance is up|Head VM is up/i, 'provisioning'],
  [/Cluster launched|Preparing SkyPilot runtime/i, 'cluster up'],
  [/Syncing (files|workdir)|file mounts/i, 'syncing files'],
  [/Running setup|setup on \d+ (VM|node)/i, 'setup'],
  [/Job submitted|Job ID:/i, 'job submitted'],
];

/** The phase after reading `line`, given the phase before it. */
export function nextPhase(current: LaunchPhase, line: string): LaunchPhase {
  let phase = current;
  for (const [re, p] of MARKERS) {
    if (re.test(line) && LAUNCH_PHASES.indexOf(p) > LAUNCH_PHASES.indexOf(phase)) phase = p;
  }
  return phase;
}

/** 133_000 ms → "2m13s"; 3_725_000 → "1h02m05s"; 4_000 → "4s". */
export function formatElapsed(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m${String(s).padStart(2, '0')}s`;
  if (m > 0) return `${m}m${String(s).padStart(2, '0')}s`;
  return `${s}s`;
}
