import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../../src/core/clock.js';
import { parsePlanArgs } from '../../../../src/sim/cluster/args.js';
import { planWorkload } from '../../../../src/sim/cluster/cli.js';
import { boundOf, runPlan } from '../../../../src/sim/plan/plan.js';

/**
 * A random conversation-format trace: a Poisson stream with bursts, prompts and outputs of
 * every size the engine model treats differently (short, long decodes, prefill-heavy).
 */
function randomTrace(random: () => number, requests: number, ratePerS: number): string {
  const lines = ['TIMESTAMP,ContextTokens,GeneratedTokens'];
  let t = 0;
  for (let i = 0; i < requests; i++) {
    // A tenth of the gaps are bursts: many requests within a few milliseconds.
    t += random() < 0.1 ? random() * 0.005 : (-Math.log(1 - random()) / ratePerS) * (random() < 0.3 ? 5 : 1);
    const prompt = random() < 0.2 ? 2000 + Math.floor(random() * 6000) : 20 + Math.floor(random() * 800);
    const output = random() < 0.2 ? 200 + Math.floor(random() * 400) : 1 + Math.floor(random() * 80);
    const s = 1700000000 + t;
    const whole = Math.floor(s);
    const stamp = new Date(whole * 1000).toISOString().replace('T', ' ').slice(0, 19);
    lines.push(`${stamp}.${String(Math.floor((s - whole) * 1e7)).padStart(7, '0')},${prompt},${output}`);
  }
  return `${lines.join('\n')}\n`;
}

describe('no simulated run costs less than the bound at its own longest wait', () => {
  it('random traces, every policy cold and warm, the fixed fleets: each run that served all ≥ its bound', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bound-runs-'));
    const random = seededRandom(21);
    let tighter = 0;
    let compared = 0;
    for (let i = 0; i < 8; i++) {
      const file = join(dir, `trace-${i}.csv`);
      writeFileSync(file, randomTrace(random, 400 + Math.floor(random() * 800), 4 + random() * 12));
      const args = parsePlanArgs([
        '--trace',
        file,
        '--provision-delay',
        String(5 + Math.floor(random() * 40)),
        '--provision-delay-dist',
        'fixed',
        '--worker_capacity',
        String(4 + Math.floor(random() * 40)),
        '--policies',
        'slo,target-tracking,running-mean,flockserve-classic',
        '--max_fixed',
        '12',
        '--seed',
        String(i + 1),
        '--quiet',
        '--jobs',
        '1',
      ]);
      if (args === 'help') throw new Error('help');
      const p = await runPlan(args);
      const requests = planWorkload(args.sim).requests!;
      for (const r of [...p.fixed, ...p.policies]) {
        if (r.boundAtOwnWait === undefined) continue;
        compared++;
        const b = boundOf(requests, args.sim, r.summary.queueWaitS.max);
        expect(b.workerHours).toBe(r.boundAtOwnWait);
        expect(b.windowHours).toBeGreaterThanOrEqual(b.slotHours - 1e-12);
        if (b.windowHours > Math.max(b.slotHours, b.workHours) + 1e-9) tighter++;
        expect(r.workerHours, `trace ${i}: ${r.policy} ${r.start} ${r.initialWorkers}`).toBeGreaterThanOrEqual(
          r.boundAtOwnWait,
        );
      }
    }
    expect(compared).toBeGreaterThan(20);
    // The windows raise the bound above both of its old parts for some of these runs.
    expect(tighter).toBeGreaterThan(0);
  }, 300_000);
});
