/**
 * The simulator's GET /metrics: Prometheus text with the names vLLM exports (gauges labelled
 * model_name, as vLLM's are), plus TGI's queue gauges, so scrapers built for either engine
 * read it. vLLM reports cache usage as a fraction 0..1 despite the "_perc" suffix.
 */
import type { EngineStats } from './engine-model.js';

export function renderMetrics(modelName: string, s: EngineStats): string {
  const label = `{model_name="${modelName.replace(/["\\\n]/g, '_')}"}`;
  const lines: string[] = [];
  const metric = (name: string, type: 'gauge' | 'counter', help: string, value: number, labels = label) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name}${labels} ${value}`);
  };
  metric('vllm:num_requests_running', 'gauge', 'Number of requests in model execution batches.', s.running);
  metric('vllm:num_requests_waiting', 'gauge', 'Number of requests waiting to be processed.', s.waiting);
  metric('vllm:gpu_cache_usage_perc', 'gauge', 'GPU KV-cache usage. 1 means 100 percent usage.', s.kvCacheUsage);
  metric('vllm:kv_cache_usage_perc', 'gauge', 'KV-cache usage. 1 means 100 percent usage.', s.kvCacheUsage);
  metric('vllm:prompt_tokens_total', 'counter', 'Number of prefill tokens processed.', s.promptTokens);
  metric('vllm:generation_tokens_total', 'counter', 'Number of generation tokens processed.', s.generationTokens);
  metric('vllm:request_success_total', 'counter', 'Count of successfully processed requests.', s.completed);
  // Newer vLLM counts prefix-cache queries and hits in tokens; older vLLM exported only a hit-rate gauge.
  metric(
    'vllm:prefix_cache_queries_total',
    'counter',
    'Prefix cache queries, in terms of number of queried tokens.',
    s.prefixCacheQueries,
  );
  metric(
    'vllm:prefix_cache_hits_total',
    'counter',
    'Prefix cache hits, in terms of number of cached tokens.',
    s.prefixCacheHits,
  );
  metric(
    'vllm:gpu_prefix_cache_hit_rate',
    'gauge',
    'GPU prefix cache block hit rate.',
    s.prefixCacheQueries === 0 ? 0 : s.prefixCacheHits / s.prefixCacheQueries,
  );
  metric('tgi_queue_size', 'gauge', 'Number of requests waiting in the queue.', s.waiting, '');
  metric('tgi_batch_current_size', 'gauge', 'Current batch size.', s.running, '');
  return lines.join('\n') + '\n';
}
