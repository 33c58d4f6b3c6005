import { describe, expect, it } from 'vitest';
import { parseEngineMetrics } from '../../../src/upstream/engine-metrics.js';
import { renderMetrics } from '../../../src/sim/prometheus.js';

describe('parseEngineMetrics', () => {
  const table: [string, string, ReturnType<typeof parseEngineMetrics>][] = [
    [
      'the engine simulator (vLLM names, both KV gauges)',
      renderMetrics('m', {
        running: 5,
        waiting: 3,
        kvCacheUsage: 0.25,
        received: 0,
        completed: 0,
        aborted: 0,
        rejected: 0,
        promptTokens: 0,
        generationTokens: 0,
        prefixCacheQueries: 0,
        prefixCacheHits: 0,
        offloadCacheHits: 0,
        prefillMs: 0,
      }),
      { waiting: 3, running: 5, kvCacheUsage: 0.25 },
    ],
    [
      'older vLLM: gpu_cache_usage_perc only; two models are summed',
      [
        '# TYPE vllm:num_requests_waiting gauge',
        'vllm:num_requests_waiting{model_name="a"} 1.0',
        'vllm:num_requests_waiting{model_name="b"} 2.0',
        'vllm:num_requests_running{model_name="a"} 4.0',
        'vllm:gpu_cache_usage_perc{model_name="a"} 0.5',
      ].join('\n'),
      { waiting: 3, running: 4, kvCacheUsage: 0.5 },
    ],
    [
      'TGI: queue size, no KV gauge',
      'tgi_queue_size 7\ntgi_batch_current_size 2\n',
      { waiting: 7, running: 2, kvCacheUsage: undefined },
    ],
    [
      'labels with spaces and braces in values',
      'vllm:num_requests_running{model_name="a b}"} 2 1700000000\n',
      { waiting: 0, running: 2, kvCacheUsage: undefined },
    ],
    ['an engine without the known gauges is unknown', 'process_cpu_seconds_total 12\n', undefined],
    ['garbage is unknown', 'not prometheus at all', undefined],
  ];
  it.each(table)('%s', (_label, text, want) => {
    expect(parseEngineMetrics(text)).toEqual(want);
  });
});
