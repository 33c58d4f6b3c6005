import { describe, expect, it } from 'vitest';
import { resolveArgs } from '../../../src/config/resolve.js';

const base = ['--skypilot_task', 'task.yaml'];

describe('balancer options at start-up', () => {
  /** [flags, error that names what is valid] */
  const bad: [string[], RegExp][] = [
    [
      ['--load_balancer', 'round-robbin'],
      /one of least-connection, round-robin, random, power-of-two, session-affinity, prefix-cache, prefix-hash, engine-load/,
    ],
    [['--cache_threshold', '1.5'], /--cache_threshold: expected a value <= 1/],
    [['--cache_threshold', '-0.1'], /--cache_threshold: expected a value >= 0/],
    [['--balance_rel_threshold', '0.5'], /--balance_rel_threshold: expected a value >= 1/],
    [['--balance_abs_threshold', '2.5'], /--balance_abs_threshold: expected an integer/],
    [['--session_load_factor', '0.9'], /--session_load_factor: expected a value >= 1/],
    [['--engine_metrics_interval', '0'], /--engine_metrics_interval: expected a value >= 0.05/],
    [['--prefix_tree_max_chars', '10'], /--prefix_tree_max_chars: expected a value >= 64/],
    [['--prefix_hash_chars', '0'], /--prefix_hash_chars: expected a value >= 1/],
    [['--prefix_hash_load_factor', '0.9'], /--prefix_hash_load_factor: expected a value >= 1/],
    [['--cache_min_chars', '-1'], /--cache_min_chars: expected a value >= 0/],
  ];
  it.each(bad)('%j is refused', (flags, message) => {
    expect(() => resolveArgs([...base, ...flags])).toThrow(message);
  });

  it('defaults come from the policies (SGLang cache_threshold 0.3, balance_rel_threshold 1.5)', () => {
    const c = resolveArgs(base);
    expect(c).toMatchObject({
      loadBalancer: 'least-connection',
      cacheThreshold: 0.3,
      balanceAbsThreshold: 4,
      balanceRelThreshold: 1.5,
      sessionLoadFactor: 1.25,
      prefixHashChars: 4096,
      prefixHashLoadFactor: 1,
      cacheMinChars: 1024,
      engineMetricsInterval: 1,
    });
  });
});
