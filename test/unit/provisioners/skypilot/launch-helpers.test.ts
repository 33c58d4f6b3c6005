import { describe, expect, it } from 'vitest';
import { formatElapsed, nextPhase, type LaunchPhase } from '../../../../src/provisioners/skypilot/launch-progress.js';
import { LaunchSlots } from '../../../../src/provisioners/skypilot/launch-slots.js';
import { envArgs } from '../../../../src/provisioners/skypilot/skypilot.js';

describe('launch progress', () => {
  it('follows SkyPilot launch output through its phases, never backwards', () => {
    const lines = [
      'YAML to run: task.yaml',
      '⚙︎ Launching on AWS us-east-1 (us-east-1a).',
      '└── Instance is up.',
      "✓ Cluster launched: 'skypilot-worker-1'.  View logs: sky logs --provision skypilot-worker-1",
      '⚙︎ Syncing files.',
      '⚙︎ Running setup on 1 VM.',
      'Launching on something again', // a setup log line mentioning launch: no going back
      '⚙︎ Job submitted, ID: 1',
    ];
    const seen: LaunchPhase[] = [];
    let phase: LaunchPhase = 'starting';
    for (const line of lines) {
      phase = nextPhase(phase, line);
      seen.push(phase);
    }
    expect(seen).toEqual([
      'starting',
      'provisioning',
      'provisioning',
      'cluster up',
      'syncing files',
      'setup',
      'setup',
      'job submitted',
    ]);
  });

  it.each([
    [0, '0s'],
    [4_999, '4s'],
    [133_000, '2m13s'],
    [3_725_000, '1h02m05s'],
  ])('formatElapsed(%i) = %s', (ms, want) => {
    expect(formatElapsed(ms)).toBe(want);
  });
});

describe('LaunchSlots', () => {
  it('runs at most max at once, hands slots out in order, and lets an aborted waiter leave the line', async () => {
    const slots = new LaunchSlots(2);
    const order: string[] = [];
    await slots.acquire();
    await slots.acquire();
    const abort = new AbortController();
    const third = slots.acquire().then(() => order.push('third'));
    const fourth = slots.acquire(abort.signal).then(
      () => order.push('fourth'),
      (e: Error) => order.push(`fourth aborted: ${e.message}`),
    );
    const fifth = slots.acquire().then(() => order.push('fifth'));
    expect([slots.running, slots.waiting]).toEqual([2, 3]);
    abort.abort(new Error('scaled down'));
    await fourth;
    slots.release();
    slots.release();
    await Promise.all([third, fifth]);
    expect(order).toEqual(['fourth aborted: scaled down', 'third', 'fifth']);
    expect([slots.running, slots.waiting]).toEqual([2, 0]);
    expect(() => new LaunchSlots(0)).toThrow(/≥ 1/);
  });
});

describe('envArgs (worker_env)', () => {
  it('turns KEY=VALUE entries into --env pairs and refuses anything else', () => {
    expect(envArgs(['HF_TOKEN=abc', 'X=a=b', 'EMPTY='])).toEqual([
      '--env',
      'HF_TOKEN=abc',
      '--env',
      'X=a=b',
      '--env',
      'EMPTY=',
    ]);
    expect(() => envArgs(['NOEQUALS'])).toThrow(/"NOEQUALS" is not KEY=VALUE/);
    expect(() => envArgs(['1BAD=x'])).toThrow(/not KEY=VALUE/);
  });
});
