import { describe, expect, it } from 'vitest';
import { traceAttribution } from '../../../../src/sim/cluster/report.js';

describe('traceAttribution: the citation results from a public trace carry', () => {
  it.each([
    ['../shared/traces/azure-llm-2023-conv.csv', /2023.*Splitwise/],
    ['AzureLLMInferenceTrace_code.csv', /2023.*Splitwise/],
    ['AzureLLMInferenceTrace_conv_1week.csv', /2024.*DynamoLLM/],
    ['azure-llm-2024-code.csv', /2024.*DynamoLLM/],
    ['BurstGPT_without_fails_2.csv', /BurstGPT.*2401\.17644/],
    ['mooncake-synthetic.jsonl', /Mooncake.*FAST 2025/],
  ])('%s → %s', (file, want) => {
    expect(traceAttribution(file)).toMatch(want);
  });

  it('a file of no known trace carries none', () => {
    expect(traceAttribution('mine.csv')).toBeUndefined();
    expect(traceAttribution(undefined)).toBeUndefined();
  });
});
