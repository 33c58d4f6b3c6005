/**
 * Streams a chat completion through the gateway's gRPC InferenceService and prints the
 * tokens as they arrive.
 *
 *   npm run build && npx tsc -p clients/typescript && \
 *     node clients/typescript/dist/examples/chat-stream.js [address] [prompt]
 *
 * address defaults to $FLOCKSERVE_GRPC_ADDRESS, else localhost:8081 (the quick start's gateway).
 */
import {
  ChatCompletionRequest,
  InferenceServiceClient,
  credentials,
  type ChatCompletionResponse,
  type ServiceError,
} from 'flockserve/client';

const address = process.argv[2] ?? process.env['FLOCKSERVE_GRPC_ADDRESS'] ?? 'localhost:8081';
const prompt = process.argv[3] ?? 'Tell me about flocks of birds.';

const client = new InferenceServiceClient(address, credentials.createInsecure());
const call = client.chatCompletion(
  ChatCompletionRequest.fromPartial({
    model: process.env['FLOCKSERVE_MODEL'] ?? '',
    messages: [{ role: 'user', content: { $case: 'text', value: prompt } }],
    maxTokens: 16,
    stream: true,
    // Parameters the proto does not name travel in `extra` and reach the engine unchanged.
    extra: { top_k: 20 },
  }),
);

let finish = '';
call.on('data', (chunk: ChatCompletionResponse) => {
  const choice = chunk.choices[0];
  const content = choice?.delta?.content;
  if (content?.$case === 'text') process.stdout.write(content.value);
  if (choice?.finishReason) finish = choice.finishReason;
});
call.on('error', (err: ServiceError) => {
  console.error(`\nchat completion failed: ${err.details || err.message}`);
  client.close();
  process.exitCode = 1;
});
call.on('end', () => {
  process.stdout.write(`\n[finish_reason: ${finish || 'none'}]\n`);
  client.close();
});
